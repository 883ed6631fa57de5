package chaos

// Hostile audits of the dispatcher (issue 11): webhooks deleted at random
// while their deliveries fail or hang, endpoints answering huge or invalid
// bodies, one account with many hanging endpoints beside a healthy one, and
// two replicas recording failures at once. They run the forwarding service
// in process on the real clock; each prints its counts.

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
)

// logSink keeps what the service logs, to count deadlocks and refusals.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.buf.String(), s)
}

func newForwarding(t *testing.T, db *gorm.DB, logs *logSink, tune func(*forwarding.Config)) *forwarding.Service {
	box, err := secrets.New(make([]byte, 32))
	require.NoError(t, err)
	c := forwarding.Config{DB: db, Box: box, AllowHTTP: true, AllowPrivate: true,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if tune != nil {
		tune(&c)
	}
	return forwarding.New(c)
}

func envelope(remoteID string) *models.Envelope {
	return &models.Envelope{Topic: "crm/contacts", UpdateType: models.UpdateCreated, ConnectionID: "con_chaos",
		Source: models.SourcePoll, DataPayload: []byte(`{"remoteId":"` + remoteID + `"}`)}
}

func webhook(t *testing.T, svc *forwarding.Service, account, addr string, timeout int, retries []string) string {
	topics := []string{"*"}
	in := forwarding.SubscriptionInput{Address: &addr, Topic: &topics, TimeoutSeconds: &timeout}
	if retries != nil {
		in.Retry = &forwarding.RetryInput{Schedule: retries, MaxRetries: ptrTo(len(retries))}
	}
	sub, err := svc.CreateSubscription(context.Background(), account, in)
	require.NoError(t, err)
	return sub.ID
}

func ptrTo[T any](v T) *T { return &v }

// runDispatcher runs d until the test ends.
func runDispatcher(t *testing.T, d *forwarding.Dispatcher) {
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	d.Grace = 0
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
}

// waitQueueEmpty waits until nothing is queued, or fails after max.
func waitQueueEmpty(t *testing.T, svc *forwarding.Service, max time.Duration) {
	deadline := time.Now().Add(max)
	for {
		st, err := svc.QueueStats(context.Background())
		require.NoError(t, err)
		if st.Depth == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not empty after %s: %+v", max, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// arrivals records the first arrival time of each event id.
type arrivals struct {
	mu    sync.Mutex
	first map[string]time.Time
	n     int
}

func newArrivals() *arrivals { return &arrivals{first: map[string]time.Time{}} }

func (a *arrivals) handler(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Tributary-Event-Id")
	a.mu.Lock()
	a.n++
	if _, ok := a.first[id]; !ok {
		a.first[id] = time.Now()
	}
	a.mu.Unlock()
}

func (a *arrivals) get(id string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.first[id]
	return t, ok
}

func (a *arrivals) distinct() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.first)
}

// hostileServer answers by path: /ok 200, /10k and /1m 500 with that much
// body, /utf8 500 with invalid UTF-8 and NUL bytes, /hang never answers
// before the request is cancelled.
func hostileServer(t *testing.T) *httptest.Server {
	big10k := bytes.Repeat([]byte("é"), 5*1024) // 10 KiB of two-byte runes
	big1m := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	invalid := bytes.Repeat([]byte("ok\xff\xfe\x00\xc3"), 2000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/ok"):
		case strings.HasSuffix(r.URL.Path, "/10k"):
			w.WriteHeader(500)
			_, _ = w.Write(big10k)
		case strings.HasSuffix(r.URL.Path, "/1m"):
			w.WriteHeader(500)
			_, _ = w.Write(big1m)
		case strings.HasSuffix(r.URL.Path, "/utf8"):
			w.WriteHeader(500)
			_, _ = w.Write(invalid)
		default:
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestWebhooksDeletedWhileDeliveriesFailAndHostileBodies runs a dispatcher
// while webhooks answering 10 KB, 1 MB and invalid-UTF-8 bodies, or hanging,
// are deleted and replaced at random; a control account's deliveries must all
// arrive, every hostile delivery must end (succeeded, dead, or deleted with
// its webhook), and every stored body must fit its column as valid UTF-8.
func TestWebhooksDeletedWhileDeliveriesFailAndHostileBodies(t *testing.T) {
	t.Parallel()
	rounds, hooks := 6, 10
	if long() {
		rounds, hooks = 40, 40
	}
	for _, dialect := range storagetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			s := seed(20261130)
			rng := rand.New(rand.NewPCG(s, 11))
			db := storagetest.New(t, dialect)
			var logs logSink
			svc := newForwarding(t, db, &logs, func(c *forwarding.Config) {
				c.Dispatcher.MaxResponseBytes = 2 << 20
				c.Dispatcher.Tick = 20 * time.Millisecond
				c.Dispatcher.CircuitCooldown = 300 * time.Millisecond
			})
			hostile := hostileServer(t)
			ctrl := newArrivals()
			ctrlSrv := httptest.NewServer(http.HandlerFunc(ctrl.handler))
			t.Cleanup(ctrlSrv.Close)
			runDispatcher(t, svc.NewDispatcher(nil)) // stopped before the servers close
			webhook(t, svc, "acc_ctrl", ctrlSrv.URL, 5, nil)

			kinds := []string{"ok", "10k", "1m", "utf8", "hang"}
			live := map[string]string{}
			add := func() {
				k := kinds[rng.IntN(len(kinds))]
				live[webhook(t, svc, "acc_hostile", hostile.URL+"/"+k, 1, []string{"1s", "1s"})] = k
			}
			for range hooks {
				add()
			}
			ctx := context.Background()
			var ctrlIDs []string
			deleted := 0
			for r := range rounds {
				var evs []*models.Envelope
				for i := range 5 {
					evs = append(evs, envelope(fmt.Sprintf("h%d-%d", r, i)))
				}
				require.NoError(t, svc.PublishNow(ctx, "acc_hostile", evs...))
				for i := range 5 {
					e := envelope(fmt.Sprintf("c%d-%d", r, i))
					require.NoError(t, svc.PublishNow(ctx, "acc_ctrl", e))
					ctrlIDs = append(ctrlIDs, e.ID)
				}
				time.Sleep(time.Duration(50+rng.IntN(300)) * time.Millisecond) // deliveries in flight
				ids := slices.Sorted(func(yield func(string) bool) {
					for id := range live {
						if !yield(id) {
							return
						}
					}
				})
				for range 1 + rng.IntN(3) {
					id := ids[rng.IntN(len(ids))]
					if _, ok := live[id]; !ok {
						continue
					}
					require.NoError(t, svc.DeleteSubscription(ctx, "acc_hostile", id))
					delete(live, id)
					deleted++
					add()
				}
			}
			waitQueueEmpty(t, svc, 2*time.Minute)
			require.Eventually(t, func() bool { return ctrl.distinct() == len(ctrlIDs) }, 30*time.Second, 20*time.Millisecond)

			var byStatus []struct {
				Status string
				N      int64
			}
			require.NoError(t, db.Model(&models.Delivery{}).Select("status, COUNT(*) AS n").Where("account_id = ?", "acc_hostile").
				Group("status").Scan(&byStatus).Error)
			var attempts []models.Attempt
			require.NoError(t, db.Select("response_body").Where("account_id = ?", "acc_hostile").Find(&attempts).Error)
			oversize, invalid := 0, 0
			for _, a := range attempts {
				if len(a.ResponseBody) > models.AttemptResponseBodySize {
					oversize++
				}
				if !utf8.ValidString(a.ResponseBody) || strings.ContainsRune(a.ResponseBody, 0) {
					invalid++
				}
			}
			var refused int64
			require.NoError(t, db.Model(&models.Delivery{}).Where("last_error LIKE ?", "result could not be recorded%").Count(&refused).Error)
			lost := 0
			for _, id := range ctrlIDs {
				if _, ok := ctrl.get(id); !ok {
					lost++
				}
			}
			deadlocks := logs.count("40P01") + logs.count("deadlock detected")
			t.Logf("AUDIT %s (seed %d)\n  control events sent %d, delivered %d, lost %d (must be 0)\n"+
				"  hostile webhooks %d, deleted at random %d\n  hostile deliveries left by status %v (queued: 0)\n"+
				"  attempts logged %d, bodies over %d bytes %d (must be 0), invalid UTF-8/NUL %d (must be 0)\n"+
				"  results the database refused %d, deadlocks %d (must be 0)",
				t.Name(), s, len(ctrlIDs), ctrl.distinct(), lost, hooks+deleted, deleted, byStatus,
				len(attempts), models.AttemptResponseBodySize, oversize, invalid, refused, deadlocks)
			require.Zero(t, lost)
			require.Zero(t, oversize)
			require.Zero(t, invalid)
			require.Zero(t, refused)
			require.Zero(t, deadlocks)
		})
	}
}

// TestSlowTenantKeepsOthersFast gives account B many endpoints that hang
// (each its own origin) with a steady stream of events, while account A sends
// events at a steady rate: A's publish→receiver p99 stays under a second.
func TestSlowTenantKeepsOthersFast(t *testing.T) {
	t.Parallel()
	hangers, events, bound := 40, 60, 2*time.Second // -race on a shared machine: a looser bound
	if long() {
		hangers, events, bound = 130, 500, time.Second
	}
	for _, dialect := range storagetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			db := storagetest.New(t, dialect)
			var logs logSink
			svc := newForwarding(t, db, &logs, func(c *forwarding.Config) {
				c.Dispatcher.Tick = 50 * time.Millisecond
				c.Dispatcher.MaxWebhooksPerAccount = 1000
			})
			var mu sync.Mutex
			hangs := 0
			release := make(chan struct{})
			for i := range hangers {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					mu.Lock()
					hangs++
					mu.Unlock()
					select {
					case <-release:
					case <-r.Context().Done():
					}
				}))
				t.Cleanup(srv.Close)
				webhook(t, svc, "acc_b", srv.URL+"/"+strconv.Itoa(i), 30, []string{"1s"})
			}
			t.Cleanup(func() { close(release) })
			fast := newArrivals()
			fastSrv := httptest.NewServer(http.HandlerFunc(fast.handler))
			t.Cleanup(fastSrv.Close)
			webhook(t, svc, "acc_a", fastSrv.URL, 5, nil)
			ctx := context.Background()
			// Each account's RSA key exists before the clock starts (making
			// one is seconds of CPU on a loaded 2-core machine).
			for _, acc := range []string{"acc_a", "acc_b"} {
				_, err := svc.RotateSigningKey(ctx, acc)
				require.NoError(t, err)
			}
			runDispatcher(t, svc.NewDispatcher(nil))

			sent := map[string]time.Time{}
			var ids []string
			for i := range events {
				if i%10 == 0 { // B keeps queuing work for its hanging endpoints
					require.NoError(t, svc.PublishNow(ctx, "acc_b", envelope("b"+strconv.Itoa(i))))
				}
				e := envelope("a" + strconv.Itoa(i))
				require.NoError(t, svc.PublishNow(ctx, "acc_a", e))
				sent[e.ID] = time.Now()
				ids = append(ids, e.ID)
				time.Sleep(20 * time.Millisecond)
			}
			require.Eventually(t, func() bool { return fast.distinct() == events }, 30*time.Second, 10*time.Millisecond)
			var lat []time.Duration
			for _, id := range ids {
				at, _ := fast.get(id)
				lat = append(lat, at.Sub(sent[id]))
			}
			for i, l := range lat {
				if l > 500*time.Millisecond {
					t.Logf("slow: event %d took %s", i, l)
				}
			}
			slices.Sort(lat)
			p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
			mu.Lock()
			h := hangs
			mu.Unlock()
			t.Logf("AUDIT %s\n  account B: %d hanging endpoints, %d requests hanging\n"+
				"  account A: %d events sent, %d delivered, lost %d (must be 0)\n  A publish→receiver p50 %s p99 %s max %s (p99 must be < %s)",
				t.Name(), hangers, h, events, fast.distinct(), events-fast.distinct(), p(0.5), p(0.99), lat[len(lat)-1], bound)
			require.Less(t, p(0.99), bound)
		})
	}
}

// TestTwoReplicasRecordingFailures runs two dispatchers, each on its own
// database handle, against many failing endpoints of one account: every
// failure is recorded, every delivery ends dead, no deadlock.
func TestTwoReplicasRecordingFailures(t *testing.T) {
	t.Parallel()
	subs, events := 10, 5
	if long() {
		subs, events = 60, 40
	}
	for _, dialect := range storagetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			opts := storagetest.Options(t, dialect)
			open := func() *gorm.DB {
				db, err := storage.Open(context.Background(), opts)
				require.NoError(t, err)
				t.Cleanup(func() { _ = storage.Close(db) })
				return db
			}
			db1 := open()
			_, err := storage.Migrate(context.Background(), db1)
			require.NoError(t, err)
			var logs logSink
			tune := func(c *forwarding.Config) {
				c.Dispatcher.Tick = 20 * time.Millisecond
				c.Dispatcher.CircuitThreshold = 5
				c.Dispatcher.CircuitCooldown = 300 * time.Millisecond
				c.Dispatcher.MaxPerEndpoint = 1 << 10
			}
			r1 := newForwarding(t, db1, &logs, tune)
			r2 := newForwarding(t, open(), &logs, tune)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
			t.Cleanup(srv.Close)
			for i := range subs {
				webhook(t, r1, "acc_f", srv.URL+"/"+strconv.Itoa(i), 2, []string{"1s"})
			}
			runDispatcher(t, r1.NewDispatcher(nil))
			runDispatcher(t, r2.NewDispatcher(nil))
			for i := 0; i < events; i += 5 {
				var evs []*models.Envelope
				for j := i; j < min(events, i+5); j++ {
					evs = append(evs, envelope(strconv.Itoa(j)))
				}
				require.NoError(t, r1.PublishNow(context.Background(), "acc_f", evs...))
			}
			waitQueueEmpty(t, r1, 2*time.Minute)
			var dead, attempts int64
			require.NoError(t, db1.Model(&models.Delivery{}).Where("status = ?", models.DeliveryDead).Count(&dead).Error)
			require.NoError(t, db1.Model(&models.Attempt{}).Count(&attempts).Error)
			deadlocks := logs.count("40P01") + logs.count("deadlock detected")
			refused := logs.count("result refused by the database")
			t.Logf("AUDIT %s\n  deliveries %d, dead after their retries %d, attempts recorded %d (2 per delivery)\n"+
				"  deadlocks %d (must be 0), results refused %d (must be 0)", t.Name(), subs*events, dead, attempts, deadlocks, refused)
			require.EqualValues(t, subs*events, dead)
			require.EqualValues(t, 2*subs*events, attempts)
			require.Zero(t, deadlocks)
			require.Zero(t, refused)
		})
	}
}
