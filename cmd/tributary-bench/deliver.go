package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
)

// sink is a local receiver that counts deliveries and records, per event,
// the delay from the event's timestamp to its arrival.
type sink struct {
	srv      *http.Server
	url      string
	n        atomic.Int64
	mu       sync.Mutex
	lat      []time.Duration
	first    sync.Map
	trackLat bool
}

func newSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{url: "http://" + ln.Addr().String() + "/hook"}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if s.trackLat {
			var ev struct {
				ID             string    `json:"id"`
				EventTimestamp time.Time `json:"eventTimestamp"`
			}
			if json.Unmarshal(body, &ev) == nil {
				if _, dup := s.first.LoadOrStore(ev.ID+r.URL.RawQuery, true); !dup {
					d := time.Since(ev.EventTimestamp)
					s.mu.Lock()
					s.lat = append(s.lat, d)
					s.mu.Unlock()
				}
			}
		}
		s.n.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *sink) close() { _ = s.srv.Close() }

func (s *sink) percentiles() (p50, p99 time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lat) == 0 {
		return 0, 0
	}
	l := slices.Clone(s.lat)
	slices.Sort(l)
	return l[len(l)/2], l[min(len(l)-1, len(l)*99/100)]
}

type deliverResult struct {
	deliveries int
	elapsed    time.Duration
	perSec     float64
	p50, p99   time.Duration
}

func newForwarding(db *gorm.DB) (*forwarding.Service, error) {
	box, err := secrets.New(make([]byte, 32))
	if err != nil {
		return nil, err
	}
	d := config.Default().Dispatcher
	return forwarding.New(forwarding.Config{DB: db, Box: box, Dispatcher: d, AllowHTTP: true, AllowPrivate: true}), nil
}

// subscribeN creates an account's n subscriptions to the sink with scheme.
func subscribeN(ctx context.Context, svc *forwarding.Service, account, url, scheme string, n int) error {
	for i := range n {
		addr := url + "?s=" + strconv.Itoa(i)
		topics := []string{"*"}
		in := forwarding.SubscriptionInput{Address: &addr, Topic: &topics, Signing: &forwarding.SigningInput{Scheme: scheme}}
		if _, err := svc.CreateSubscription(ctx, account, in); err != nil {
			return err
		}
	}
	return nil
}

func benchEvent(i int) *models.Envelope {
	return &models.Envelope{Topic: "crm/contacts", UpdateType: models.UpdateUpdated, ConnectionID: "con_bench",
		UserID: "u1", Name: "Bench", Source: models.SourcePoll, ChangedFields: []string{"email"},
		DataPayload: json.RawMessage(fmt.Sprintf(`{"remoteId":"%d","firstName":"Ada","lastName":"Lovelace","email":"ada%d@example.com","phone":"+44 20 7946 0000","title":"Engineer"}`, i, i))}
}

// throughput queues events×subs deliveries, then measures how fast one
// dispatcher process drains them.
func throughput(ctx context.Context, db *gorm.DB, scheme string, subs, events int) (deliverResult, error) {
	vacuum(ctx, db)
	svc, err := newForwarding(db)
	if err != nil {
		return deliverResult{}, err
	}
	s, err := newSink()
	if err != nil {
		return deliverResult{}, err
	}
	defer s.close()
	account := models.NewID(models.PrefixAccount)
	if err := subscribeN(ctx, svc, account, s.url, scheme, subs); err != nil {
		return deliverResult{}, err
	}
	for i := 0; i < events; i += 200 {
		batch := make([]*models.Envelope, 0, 200)
		for j := i; j < min(events, i+200); j++ {
			batch = append(batch, benchEvent(j))
		}
		if err := svc.PublishNow(ctx, account, batch...); err != nil {
			return deliverResult{}, err
		}
	}
	want := int64(events * subs)
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	go svc.NewDispatcher(nil).Run(dctx)
	if err := waitFor(ctx, func() bool { return s.n.Load() >= want }, 5*time.Minute); err != nil {
		return deliverResult{}, fmt.Errorf("throughput %s×%d: %w (%d of %d)", scheme, subs, err, s.n.Load(), want)
	}
	el := time.Since(start)
	return deliverResult{deliveries: int(want), elapsed: el, perSec: float64(want) / el.Seconds()}, nil
}

// steady publishes rate events/s for dur with a running dispatcher and
// measures each event's publish→receiver latency (the outbox insert to the arrival; no capture).
func steady(ctx context.Context, db *gorm.DB, scheme string, rate int, dur time.Duration) (deliverResult, error) {
	vacuum(ctx, db)
	svc, err := newForwarding(db)
	if err != nil {
		return deliverResult{}, err
	}
	s, err := newSink()
	if err != nil {
		return deliverResult{}, err
	}
	s.trackLat = true
	defer s.close()
	account := models.NewID(models.PrefixAccount)
	if err := subscribeN(ctx, svc, account, s.url, scheme, 1); err != nil {
		return deliverResult{}, err
	}
	if err := svc.PublishNow(ctx, account, benchEvent(-1)); err != nil { // warm: creates the key
		return deliverResult{}, err
	}
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go svc.NewDispatcher(nil).Run(dctx)
	const tick = 10 * time.Millisecond
	perTick := max(1, rate*int(tick)/int(time.Second))
	t := time.NewTicker(tick)
	defer t.Stop()
	sent := 0
	deadline := time.Now().Add(dur)
	for time.Now().Before(deadline) {
		<-t.C
		batch := make([]*models.Envelope, perTick)
		for i := range batch {
			batch[i] = benchEvent(sent + i)
		}
		if err := svc.PublishNow(ctx, account, batch...); err != nil {
			return deliverResult{}, err
		}
		sent += perTick
	}
	if err := waitFor(ctx, func() bool { return s.n.Load() >= int64(sent+1) }, time.Minute); err != nil {
		return deliverResult{}, fmt.Errorf("steady %d/s: %w", rate, err)
	}
	p50, p99 := s.percentiles()
	return deliverResult{deliveries: sent, elapsed: dur, perSec: float64(sent) / dur.Seconds(), p50: p50, p99: p99}, nil
}

func waitFor(ctx context.Context, cond func() bool, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

func subscriptionInput(addr string, topics []string) forwarding.SubscriptionInput {
	return forwarding.SubscriptionInput{Address: &addr, Topic: &topics}
}

// vacuum stands in for autovacuum between scenarios (the test server runs
// without it): statistics and dead rows of one scenario must not slow the next.
func vacuum(ctx context.Context, db *gorm.DB) {
	for _, t := range []string{"deliveries", "events", "attempts", "subscriptions", "snapshots", "connections"} {
		_ = db.WithContext(ctx).Exec("VACUUM ANALYZE " + t).Error
	}
}
