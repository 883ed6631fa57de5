package chaos

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage/storagetest"
)

// TestBugDispatcherLeaseLeakOnLoadError is the regression test of a bug
// found by TestCrashMidPoll on PostgreSQL and fixed in 60e2ead (claim now
// leases and loads in one transaction). Dispatcher.claim committed the lease (next_attempt_at = now +
// max_timeout + 30 s, a lease token) and only then loads the events and
// subscriptions; when that load failed — serve's context cancelled at
// shutdown, or a dropped database connection — claim returned no jobs and
// the leased deliveries were neither attempted nor released: they waited out
// the whole lease (90 s with the defaults) with attempts = 0. The fault is
// injected deterministically here: the load of events fails once.
func TestBugDispatcherLeaseLeakOnLoadError(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		var got atomic.Int64
		rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got.Add(1) }))
		t.Cleanup(rc.Close)
		box, err := secrets.New(make([]byte, 32))
		require.NoError(t, err)
		svc := forwarding.New(forwarding.Config{DB: db, Box: box, AllowHTTP: true, AllowPrivate: true})
		addr, topics := rc.URL, []string{"*"}
		_, err = svc.CreateSubscription(context.Background(), "acc_bug", forwarding.SubscriptionInput{Address: &addr, Topic: &topics})
		require.NoError(t, err)
		require.NoError(t, svc.PublishNow(context.Background(), "acc_bug", &models.Envelope{Topic: "crm/contacts",
			UpdateType: models.UpdateCreated, ConnectionID: "con_bug", Source: models.SourcePoll,
			DataPayload: []byte(`{"remoteId":"r1"}`)}))

		// The next SELECT on events fails once, as a dropped connection does.
		var fail atomic.Bool
		fail.Store(true)
		require.NoError(t, db.Callback().Query().Before("gorm:query").Register("chaos:fail-events-once", func(tx *gorm.DB) {
			if tx.Statement.Table == "events" && fail.CompareAndSwap(true, false) {
				_ = tx.AddError(errors.New("chaos: connection dropped"))
			}
		}))
		d := svc.NewDispatcher(nil)
		_, err = d.DispatchDue(context.Background())
		require.Error(t, err, "the injected load failure surfaces")
		require.False(t, fail.Load(), "the fault fired")

		// The database is fine again: the delivery must be due (released),
		// not parked until its lease expires.
		n, err := d.DispatchDue(context.Background())
		require.NoError(t, err)
		var dl models.Delivery
		require.NoError(t, db.Take(&dl).Error)
		require.Equal(t, 1, n, "BUG: after a failed load the claimed delivery stays leased until %s (attempts %d, lease %q) instead of being released",
			dl.NextAttemptAt.Format(time.RFC3339), dl.Attempts, dl.LeaseToken)
		require.EqualValues(t, 1, got.Load())
	})
}
