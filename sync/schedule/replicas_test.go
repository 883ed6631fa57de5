package schedule

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/clocktest"

	"github.com/go-co-op/gocron/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
	"github.com/tributary/tributary/sync/poll"
)

// countingApp holds every listing at a gate and records how many listings of
// each connection are in progress at once.
type countingApp struct {
	mu        sync.Mutex
	active    map[string]int
	maxActive map[string]int
	runs      map[string]int
	gate      chan struct{}
	entered   chan string
}

func (a *countingApp) Info() connectors.Info {
	return connectors.Info{Name: "fake", DisplayName: "Fake", Objects: []string{"contacts"}}
}

func (a *countingApp) ListChanges(ctx context.Context, c *connectors.Conn, req connectors.ListRequest, fn func(connectors.Page) error) error {
	a.mu.Lock()
	a.active[c.ID]++
	a.runs[c.ID]++
	a.maxActive[c.ID] = max(a.maxActive[c.ID], a.active[c.ID])
	gate := a.gate
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.active[c.ID]--
		a.mu.Unlock()
	}()
	a.entered <- c.ID
	select {
	case <-gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	at := time.Unix(int64(a.runs[c.ID]), 0).UTC()
	return fn(connectors.Page{Cursor: at.Format(time.RFC3339Nano), Records: []models.Record{{Object: "contacts", RemoteID: "r1",
		RemoteUpdatedAt: at, Data: &models.Contact{Common: models.Common{RemoteID: "r1"}, Email: fmt.Sprint(at.Unix())}}}})
}

type oneApp struct{ app connectors.Connector }

func (o oneApp) Get(string) (connectors.Connector, bool) { return o.app, true }

type nopOpener struct{}

func (nopOpener) Open(_ context.Context, c *models.Connection) (*connectors.Conn, error) {
	return &connectors.Conn{ID: c.ID}, nil
}
func (nopOpener) MarkNeedsReauth(context.Context, string, string) error { return nil }

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, *gorm.DB, string, ...*models.Envelope) error { return nil }

// TestTwoReplicasNeverPollOneConnectionAtOnce runs two Schedulers, each with
// its own pool on the same database, ticking at the same time: every round
// holds all listings at a gate until both replicas have claimed all they
// could, so a connection claimed twice would be seen listing twice at once.
func TestTwoReplicasNeverPollOneConnectionAtOnce(t *testing.T) {
	const conns, perReplica, rounds = 12, 3, 4
	for _, dialect := range storagetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			opts := storagetest.Options(t, dialect)
			var dbs [2]*gorm.DB
			for i := range dbs {
				db, err := storage.Open(context.Background(), opts)
				require.NoError(t, err)
				t.Cleanup(func() { _ = storage.Close(db) })
				dbs[i] = db
			}
			_, err := storage.Migrate(context.Background(), dbs[0])
			require.NoError(t, err)

			clk := clocktest.New(t0)
			app := &countingApp{active: map[string]int{}, maxActive: map[string]int{}, runs: map[string]int{},
				entered: make(chan string, 2*conns)}
			var scheds [2]*Scheduler
			for i, db := range dbs {
				r := &poll.Runner{DB: db, Apps: oneApp{app}, Opener: nopOpener{}, Publisher: nopPublisher{}, Now: clk.Now}
				scheds[i], err = New(Config{DB: db, Runner: r, Now: clk.Now, Concurrency: perReplica})
				require.NoError(t, err)
			}
			for i := range conns {
				require.NoError(t, dbs[0].Create(&models.Connection{ID: fmt.Sprintf("con_%02d", i), AccountID: "acc_1", App: "fake",
					UserID: "u", Status: models.ConnectionActive, NextSyncAt: t0, Metadata: "{}", Cursors: "{}"}).Error)
			}

			for round := range rounds {
				app.mu.Lock()
				app.gate = make(chan struct{})
				app.mu.Unlock()
				var wg sync.WaitGroup
				claimed := make([]int, 2)
				for i, s := range scheds {
					wg.Go(func() {
						n, err := s.Tick(context.Background())
						assert.NoError(t, err)
						claimed[i] = n
					})
				}
				timeout := time.After(20 * time.Second)
				for range 2 * perReplica {
					select {
					case <-app.entered:
					case <-timeout:
						t.Fatalf("round %d: replicas did not claim %d connections", round, 2*perReplica)
					}
				}
				close(app.gate)
				wg.Wait()
				assert.Equal(t, []int{perReplica, perReplica}, claimed, "round %d", round)
				clk.Add(13 * time.Hour)
			}

			app.mu.Lock()
			defer app.mu.Unlock()
			total := 0
			for id, n := range app.maxActive {
				assert.Equal(t, 1, n, "connection %s listed by two runs at once", id)
			}
			for _, n := range app.runs {
				total += n
			}
			assert.Equal(t, rounds*2*perReplica, total)
			var completed int64
			require.NoError(t, dbs[1].Model(&models.SyncRun{}).Where("status = ?", poll.RunCompleted).Count(&completed).Error)
			assert.EqualValues(t, total, completed)
		})
	}
}

func TestLockerExcludesSecondHolder(t *testing.T) {
	for _, dialect := range storagetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			opts := storagetest.Options(t, dialect)
			db1, err := storage.Open(context.Background(), opts)
			require.NoError(t, err)
			t.Cleanup(func() { _ = storage.Close(db1) })
			db2 := db1
			if dialect == storage.Postgres {
				db2, err = storage.Open(context.Background(), opts) // a second replica
				require.NoError(t, err)
				t.Cleanup(func() { _ = storage.Close(db2) })
			}
			l1, l2 := NewLocker(db1), NewLocker(db2)
			if dialect == storage.SQLite {
				l2 = l1 // the SQLite locker is per process
			}
			ctx := context.Background()

			lock, err := l1.Lock(ctx, "maintenance")
			require.NoError(t, err)
			_, err = l2.Lock(ctx, "maintenance")
			require.ErrorIs(t, err, ErrLockHeld)
			_, err = l1.Lock(ctx, "maintenance")
			require.ErrorIs(t, err, ErrLockHeld, "not re-entrant within one process either")
			other, err := l2.Lock(ctx, "other-job")
			require.NoError(t, err, "locks are per key")
			require.NoError(t, other.Unlock(ctx))

			require.NoError(t, lock.Unlock(ctx))
			require.NoError(t, lock.Unlock(ctx), "unlock is idempotent")
			lock2, err := l2.Lock(ctx, "maintenance")
			require.NoError(t, err)
			require.NoError(t, lock2.Unlock(ctx))
		})
	}
}

func TestMaintain(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		var tasks []time.Time
		b := setup(t, db, func(c *Config) {
			c.RunRetention = 30 * 24 * time.Hour
			c.Maintenance = append(c.Maintenance, func(_ context.Context, now time.Time) error {
				tasks = append(tasks, now)
				return nil
			})
		})
		now := t0
		ptr := func(t time.Time) *time.Time { return &t }
		inbox := []struct {
			id        string
			processed *time.Time
			kept      bool
		}{
			{"inb_old", ptr(now.Add(-8 * 24 * time.Hour)), false},
			{"inb_recent", ptr(now.Add(-6 * 24 * time.Hour)), true},
			{"inb_unprocessed", nil, true},
		}
		for _, it := range inbox {
			require.NoError(t, db.Create(&models.InboxItem{ID: it.id, App: "fake", DedupKey: it.id, Method: "POST", URL: "/",
				Header: "{}", Body: []byte("{}"), ReceivedAt: now.Add(-30 * 24 * time.Hour), ProcessedAt: it.processed,
				NextAttemptAt: now}).Error)
		}
		sessions := []struct {
			id      string
			expires time.Time
			used    *time.Time
			kept    bool
		}{
			{"cs_abandoned", now.Add(-25 * time.Hour), nil, false},
			{"cs_used", now.Add(-25 * time.Hour), ptr(now.Add(-26 * time.Hour)), true},
			{"cs_recent", now.Add(-time.Hour), nil, true},
		}
		for _, s := range sessions {
			require.NoError(t, db.Create(&models.ConnectSession{ID: s.id, AccountID: b.accID, App: "fake", UserID: "u",
				RedirectURL: "https://x.test/", State: s.id, VerifierEnc: []byte("x"), Params: "{}", ExpiresAt: s.expires, UsedAt: s.used}).Error)
		}
		runs := map[string]time.Duration{"run_old": 31 * 24 * time.Hour, "run_recent": 29 * 24 * time.Hour}
		for id, age := range runs {
			require.NoError(t, db.Create(&models.SyncRun{ID: id, AccountID: b.accID, ConnectionID: "con_x", StartedAt: now.Add(-age), Status: "completed"}).Error)
		}
		swept, err := b.sched.Maintain(context.Background())
		require.NoError(t, err)
		assert.Equal(t, Swept{InboxItems: 1, ConnectSessions: 1, SyncRuns: 1}, swept)
		var kept []string
		require.NoError(t, db.Model(&models.SyncRun{}).Pluck("id", &kept).Error)
		assert.Equal(t, []string{"run_recent"}, kept, "sync runs are pruned with the delivery history")
		assert.Equal(t, []time.Time{t0}, tasks, "further retention tasks run with the scheduler's clock")
		for _, it := range inbox {
			var n int64
			require.NoError(t, db.Model(&models.InboxItem{}).Where("id = ?", it.id).Count(&n).Error)
			assert.Equal(t, it.kept, n == 1, it.id)
		}
		for _, s := range sessions {
			var n int64
			require.NoError(t, db.Model(&models.ConnectSession{}).Where("id = ?", s.id).Count(&n).Error)
			assert.Equal(t, s.kept, n == 1, s.id)
		}
	})
}

func TestStartRunsTickAndLockedMaintenance(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		locked := make(chan string, 16)
		polled := make(chan string, 16)
		var b *bundle
		b = setup(t, db, func(c *Config) {
			c.Tick = 20 * time.Millisecond
			c.Locker = &spyLocker{inner: NewLocker(db), locked: locked}
			c.MaintenanceEvery = 20 * time.Millisecond
		})
		b.runner.during = func(c *models.Connection) { polled <- c.ID }
		id := b.conn(t, models.ConnectionActive, t0, nil)
		require.NoError(t, b.sched.Start(context.Background()))
		require.Error(t, b.sched.Start(context.Background()), "twice")
		wait := func(ch chan string) string {
			select {
			case v := <-ch:
				return v
			case <-time.After(10 * time.Second):
				t.Fatal("timed out")
				return ""
			}
		}
		assert.Equal(t, id, wait(polled))
		assert.Equal(t, "tributary-maintenance", wait(locked))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, b.sched.Stop(ctx))
		for len(locked) > 0 {
			assert.Equal(t, "tributary-maintenance", <-locked, "the poll tick is not behind the lock")
		}
	})
}

// spyLocker reports each key it locks.
type spyLocker struct {
	inner  gocron.Locker
	locked chan string
}

func (l *spyLocker) Lock(ctx context.Context, key string) (gocron.Lock, error) {
	lock, err := l.inner.Lock(ctx, key)
	if err == nil {
		select {
		case l.locked <- key:
		default:
		}
	}
	return lock, err
}
