package forwarding_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
)

// publishedIDs publishes n contact events and returns their ids.
func publishN(t *testing.T, b *bundle, account string, n int) map[string]bool {
	ids := map[string]bool{}
	for i := 0; i < n; i += 50 {
		var evs []*models.Envelope
		for j := i; j < min(i+50, n); j++ {
			evs = append(evs, contactEvent(strconv.Itoa(j)))
		}
		b.publish(t, account, evs...)
		for _, e := range evs {
			ids[e.ID] = true
		}
	}
	return ids
}

func TestTwoDispatchersNeverDoubleSend(t *testing.T) {
	t.Parallel()
	for _, dialect := range storagetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			opts := storagetest.Options(t, dialect)
			open := func() *gorm.DB {
				db, err := storage.Open(context.Background(), opts)
				require.NoError(t, err)
				t.Cleanup(func() { storage.Close(db) })
				return db
			}
			db1 := open()
			_, err := storage.Migrate(context.Background(), db1)
			require.NoError(t, err)
			b1 := setup(t, db1)
			b2 := setup(t, open())
			rc := newReceiver(t)
			b1.subscribe(t, "acc_a", rc.URL, []string{"*"})
			ids := publishN(t, b1, "acc_a", 300)

			var wg sync.WaitGroup
			for _, b := range []*bundle{b1, b2} {
				wg.Go(func() {
					for {
						n, err := b.disp.DispatchDue(context.Background())
						require.NoError(t, err)
						if n == 0 {
							return
						}
					}
				})
			}
			wg.Wait()
			seen := map[string]int{}
			for _, r := range rc.requests() {
				seen[r.Header.Get("X-Tributary-Event-Id")]++
			}
			require.Len(t, seen, len(ids))
			for id, n := range seen {
				require.True(t, ids[id])
				require.Equal(t, 1, n, "event %s sent %d times", id, n)
			}
		})
	}
}

// TestDispatcherCrashLosesNothing stops a running dispatcher abruptly — its
// context cancelled and its database handle closed while requests are in
// flight — then starts a new one on a fresh handle: every event arrives,
// each under its original id.
func TestGracefulStopSendsNothingTwice(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		rc := newReceiver(t)
		var hits atomic.Int64
		slow := make(chan struct{})
		rc.setRespond(func(n int, w http.ResponseWriter, r *http.Request) {
			if hits.Add(1) > 10 {
				<-slow // in flight when the stop comes
			}
			w.WriteHeader(200)
		})
		b.subscribe(t, "acc_a", rc.URL, []string{"*"})
		ids := publishN(t, b, "acc_a", 40)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = b.disp.Run(ctx); close(done) }()
		require.Eventually(t, func() bool { return hits.Load() > 12 }, 10*time.Second, 5*time.Millisecond)
		cancel()
		close(slow) // the requests in flight finish within the grace period
		<-done
		// Restart long after every lease: whatever was answered is recorded.
		b2 := setup(t, db)
		b2.clock.Add(forwarding.DefaultLease() + time.Second)
		b2.drain(t)
		seen := map[string]int{}
		for _, r := range rc.requests() {
			seen[r.Header.Get("X-Tributary-Event-Id")]++
		}
		require.Len(t, seen, len(ids))
		for id, n := range seen {
			require.Equal(t, 1, n, "event %s sent %d times across a graceful stop", id, n)
		}
	})
}

func TestDispatcherCrashLosesNothing(t *testing.T) {
	t.Parallel()
	for _, dialect := range storagetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			opts := storagetest.Options(t, dialect)
			db1, err := storage.Open(context.Background(), opts)
			require.NoError(t, err)
			_, err = storage.Migrate(context.Background(), db1)
			require.NoError(t, err)
			b1 := setup(t, db1, func(c *forwarding.Config) { c.Dispatcher.Workers = 8; c.Dispatcher.BatchSize = 8 })
			rc := newReceiver(t)
			var hits atomic.Int64
			release := make(chan struct{})
			rc.setRespond(func(n int, w http.ResponseWriter, r *http.Request) {
				if hits.Add(1) > 20 { // after 20 answers, hang until the crash
					select {
					case <-release:
					case <-r.Context().Done():
					}
				}
				w.WriteHeader(200)
			})
			b1.subscribe(t, "acc_a", rc.URL, []string{"*"})
			ids := publishN(t, b1, "acc_a", 120)

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			b1.disp.Grace = 0 // a crash, not a graceful stop: nothing in flight is waited for
			go func() { _ = b1.disp.Run(ctx); close(done) }()
			require.Eventually(t, func() bool { return hits.Load() > 24 }, 10*time.Second, 5*time.Millisecond)
			cancel()                               // the process dies...
			require.NoError(t, storage.Close(db1)) // ...and its connections drop
			<-done
			close(release)

			// A new process on a fresh connection, after the leases expired.
			db2, err := storage.Open(context.Background(), opts)
			require.NoError(t, err)
			t.Cleanup(func() { storage.Close(db2) })
			b2 := setup(t, db2)
			b2.clock.Add(forwarding.DefaultLease() + time.Second)
			b2.drain(t)

			seen := map[string]int{}
			for _, r := range rc.requests() {
				seen[r.Header.Get("X-Tributary-Event-Id")]++
			}
			for id := range ids {
				require.GreaterOrEqual(t, seen[id], 1, "event %s lost", id)
			}
			for id := range seen {
				require.True(t, ids[id], "unknown event id %s: ids must be stable", id)
			}
			var pending int64
			require.NoError(t, db2.Model(&models.Delivery{}).Where("status <> ?", models.DeliverySucceeded).Count(&pending).Error)
			require.Zero(t, pending)
			var events int64
			require.NoError(t, db2.Model(&models.Event{}).Count(&events).Error)
			require.EqualValues(t, len(ids), events, "no event duplicated")
		})
	}
}
