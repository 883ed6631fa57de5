package forwarding_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestTwoDispatchersRecordingFailuresNeverDeadlock runs two dispatchers, each
// on its own database handle, against many failing endpoints of one account
// on PostgreSQL. Each flush updates the failure streak of many subscription
// rows; taken in map order, two flushes deadlock (40P01). Taken in id order,
// none does, and every failure is recorded.
func TestTwoDispatchersRecordingFailuresNeverDeadlock(t *testing.T) {
	t.Parallel()
	opts := storagetest.Options(t, storage.Postgres)
	var logs syncBuffer
	open := func() *gorm.DB {
		db, err := storage.Open(context.Background(), opts)
		require.NoError(t, err)
		t.Cleanup(func() { storage.Close(db) })
		return db
	}
	db1 := open()
	_, err := storage.Migrate(context.Background(), db1)
	require.NoError(t, err)
	tune := func(c *forwarding.Config) {
		c.Dispatcher.CircuitThreshold = 1 << 20
		c.Dispatcher.BatchSize = 60
		c.Dispatcher.MaxPerEndpoint = 1 << 10 // one origin serves every endpoint here
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	}
	b1 := setup(t, db1, tune)
	b2 := setup(t, open(), func(c *forwarding.Config) { tune(c); c.Now = b1.clock.Now })
	rc := newReceiver(t)
	rc.setRespond(func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
	const subs, events = 24, 25
	for i := range subs {
		b1.subscribe(t, "acc_a", rc.URL+"/"+strconv.Itoa(i), []string{"*"}, func(in *forwarding.SubscriptionInput) {
			in.Retry = &forwarding.RetryInput{MaxRetries: ptr(0)}
		})
	}
	publishN(t, b1, "acc_a", events)

	var wg sync.WaitGroup
	for _, b := range []*bundle{b1, b2, b1, b2} {
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
	require.NotContains(t, logs.String(), "40P01", "no deadlock")
	require.NotContains(t, logs.String(), "deadlock detected")
	require.Len(t, b1.deliveries(t, "status = ?", models.DeliveryDead), subs*events, "every failure recorded")
	var failures int64
	require.NoError(t, db1.Model(&models.Subscription{}).Select("COALESCE(SUM(consecutive_failures), 0)").Scan(&failures).Error)
	require.EqualValues(t, subs*events, failures)
}
