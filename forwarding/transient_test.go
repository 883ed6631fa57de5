package forwarding_test

// Regression test of the change lost in chaos TestPostgresConnectionsDropped:
// a result whose recording failed because PostgreSQL terminated the
// connection was taken for a row the database refuses and its delivery was
// ended dead — the receiver never got the change.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// failDeliveryUpdates makes the next n UPDATEs that record a delivery's
// result (they release its lease) fail with err, as a terminated connection
// or an aborted transaction would.
func failDeliveryUpdates(t *testing.T, db *gorm.DB, n int64, err error) {
	var left atomic.Int64
	left.Store(n)
	require.NoError(t, db.Callback().Update().Before("gorm:update").Register("test:transient", func(tx *gorm.DB) {
		upd, _ := tx.Statement.Dest.(map[string]any)
		if tx.Statement.Table == "deliveries" && upd["lease_token"] == "" && left.Add(-1) >= 0 {
			_ = tx.AddError(err)
		}
	}))
}

func TestTransientRecordingErrorsNeverEndADelivery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"connection terminated 57P01", &pgconn.PgError{Severity: "FATAL", Code: "57P01",
			Message: "terminating connection due to administrator command"}},
		{"connection failure 08006", &pgconn.PgError{Severity: "FATAL", Code: "08006", Message: "connection failure"}},
		{"serialization 40001", &pgconn.PgError{Severity: "ERROR", Code: "40001", Message: "could not serialize access"}},
		{"deadlock 40P01", &pgconn.PgError{Severity: "ERROR", Code: "40P01", Message: "deadlock detected"}},
		{"unexpected EOF", fmt.Errorf("read: %w", io.ErrUnexpectedEOF)},
		{"statement deadline", fmt.Errorf("update: %w", context.DeadlineExceeded)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
				b := setup(t, db)
				rc := newReceiver(t)
				rc.setRespond(func(n int, w http.ResponseWriter, _ *http.Request) {
					if n == 1 {
						w.Header().Set("Retry-After", "1")
						w.WriteHeader(http.StatusTooManyRequests)
						return
					}
					w.WriteHeader(http.StatusOK)
				})
				sub := b.subscribe(t, "acc_a", rc.URL, []string{"*"})
				b.publish(t, "acc_a", contactEvent("1"))
				// The batch and the row written alone both fail; the
				// database is back for whatever the dispatcher does next.
				failDeliveryUpdates(t, db, 2, tc.err)

				n, err := b.disp.DispatchDue(context.Background())
				require.Equal(t, 1, n)
				require.Error(t, err, "the result was not recorded")
				d := b.deliveries(t, "subscription_id = ?", sub.ID)[0]
				require.NotEqual(t, models.DeliveryDead, d.Status, "a transient error never ends a delivery: %s", d.LastError)
				require.Zero(t, d.Attempts)

				// Its lease expires and it is attempted again, under the same event id.
				b.clock.Advance(time.Hour)
				b.drain(t)
				d = b.deliveries(t, "subscription_id = ?", sub.ID)[0]
				require.Equal(t, models.DeliverySucceeded, d.Status, d.LastError)
				got := rc.requests()
				require.Len(t, got, 2)
				require.JSONEq(t, string(got[0].Body), string(got[1].Body), "the same event")
			})
		})
	}
}
