package chaos

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
	"github.com/tributary/tributary/sync/poll"
	"github.com/tributary/tributary/sync/schedule"
)

// completedRunner is a poll that always completes.
type completedRunner struct{}

func (completedRunner) Run(context.Context, *models.Connection) (poll.Result, error) {
	return poll.Result{Status: poll.RunCompleted}, nil
}

// TestBugScheduleFinishNotRetried is the regression test of a bug found by
// TestPostgresConnectionsDropped and fixed in 4093f88 (finish is retried):
// when the UPDATE that ends a poll's lease (Scheduler.finish) failed — a
// dropped PostgreSQL connection — run only logged "schedule: finish poll" and
// the connection stayed "syncing" with next_sync_at = claim + Lease (then 30
// min, no config key): no poll all that time, and POST
// /v1/connections/{id}/sync answered 409 "syncing now". The fault is
// injected deterministically: that UPDATE fails once.
func TestBugScheduleFinishNotRetried(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		now := time.Now().UTC()
		require.NoError(t, db.Create(&models.Connection{ID: "con_bug", AccountID: "acc_bug", App: "sandbox", UserID: "u1",
			Status: models.ConnectionActive, NextSyncAt: now.Add(-time.Second), InitialSyncDone: true}).Error)
		var fail atomic.Bool
		fail.Store(true)
		require.NoError(t, db.Callback().Raw().Before("gorm:raw").Register("chaos:fail-finish-once", func(tx *gorm.DB) {
			sql := tx.Statement.SQL.String()
			if strings.Contains(sql, "UPDATE connections") && strings.Contains(sql, "lease_token = ''") && fail.CompareAndSwap(true, false) {
				_ = tx.AddError(errors.New("chaos: connection dropped"))
			}
		}))
		s, err := schedule.New(schedule.Config{DB: db, Runner: completedRunner{}})
		require.NoError(t, err)
		n, err := s.Tick(context.Background())
		require.NoError(t, err)
		require.Equal(t, 1, n)
		require.False(t, fail.Load(), "the fault fired")
		var c models.Connection
		require.NoError(t, db.Take(&c, "id = ?", "con_bug").Error)
		require.NotEqual(t, models.ConnectionSyncing, c.Status,
			"BUG: a completed poll whose finish failed once leaves the connection syncing until %s (lease %q)",
			c.NextSyncAt.Format(time.RFC3339), c.LeaseToken)
	})
}
