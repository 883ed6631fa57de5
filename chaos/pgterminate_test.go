package chaos

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
)

// terminator drops the engine's PostgreSQL connections, from a separate
// admin connection, at random moments until stopped.
type terminator struct {
	stop    func()
	wg      sync.WaitGroup
	dropped atomic.Int64
	rounds  atomic.Int64
}

func startTerminator(t *testing.T, e *Engine, s uint64, maxGap time.Duration) *terminator {
	t.Helper()
	admin, err := storage.Open(context.Background(), storage.Options{URL: e.Opts.URL, MaxOpenConns: 1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = storage.Close(admin) })
	ctx, cancel := context.WithCancel(context.Background())
	tm := &terminator{stop: cancel}
	rnd := rand.New(rand.NewPCG(s, 5))
	tm.wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Duration(100+rnd.IntN(int(maxGap/time.Millisecond))) * time.Millisecond):
			}
			var n int64
			err := admin.Raw(`SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = ?) AS t`, e.AppName).Scan(&n).Error
			if err == nil {
				tm.dropped.Add(n)
				tm.rounds.Add(1)
			}
		}
	})
	return tm
}

func (tm *terminator) Stop() { tm.stop(); tm.wg.Wait() }

// TestPostgresConnectionsDropped terminates every PostgreSQL backend of the
// running engine at random moments — mid-poll, mid-reconcile transaction,
// mid-claim, mid-flush — while it captures and delivers; the pool must
// reconnect and the audit must be clean.
func TestPostgresConnectionsDropped(t *testing.T) {
	t.Parallel()
	rounds, writes, gap := 4, 12, time.Second
	if long() {
		rounds, writes, gap = 20, 40, 700*time.Millisecond
	}
	s := seed(20261130)
	e, rc, w := setup(t, storage.Postgres, s, DefaultWeights)
	// A poll's lease left behind by a finish that failed even after its
	// retries (see TestBugScheduleFinishNotRetried) is expired after 5 s
	// instead of 5 min; the audit prints how often.
	w.StuckAfter = 5 * time.Second
	w.Unstick = func(id string) {
		require.NoError(t, e.DB.Exec("UPDATE connections SET next_sync_at = ? WHERE id = ? AND status = ?",
			time.Now().UTC(), id, models.ConnectionSyncing).Error)
	}
	tm := startTerminator(t, e, s, gap)
	for round := range rounds {
		_, err := w.Round(writes)
		require.NoError(t, err)
		if err := w.Settle(30 * time.Second); err != nil {
			var rows []models.Connection
			_ = e.DB.Find(&rows).Error
			for _, c := range rows {
				t.Logf("connection %s status %s next %s lastSync %v error %q", c.ID, c.Status, c.NextSyncAt, c.LastSyncAt, c.LastError)
			}
			t.Fatalf("round %d: %v", round, err)
		}
	}
	tm.Stop()
	finish(t, e, rc, w, true, func(r *Report) { r.Terminations, r.StuckPolls = int(tm.dropped.Load()), w.Stuck })
	require.NotZero(t, tm.dropped.Load(), "backends were terminated")
}
