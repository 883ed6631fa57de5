package schedule

import (
	"context"
	"fmt"

	"github.com/tributary/tributary/storage"
)

// maintenanceBatch bounds each retention DELETE, keeping transactions short.
const maintenanceBatch = 1000

// Swept counts what one maintenance pass deleted.
type Swept struct {
	InboxItems      int64
	ConnectSessions int64
	SyncRuns        int64
}

// Maintenance sweeps: each selects one batch by an index in time order and
// deletes it by primary key (storage.BatchDeleteSQL).
const (
	sweepInboxSel    = `SELECT id FROM inbox_items WHERE processed_at IS NOT NULL AND processed_at < ? ORDER BY processed_at LIMIT ?`
	sweepSessionsSel = `SELECT id FROM connect_sessions WHERE used_at IS NULL AND expires_at < ? LIMIT ?`
	sweepRunsSel     = `SELECT id FROM sync_runs WHERE started_at < ? ORDER BY started_at LIMIT ?`
)

// Maintain deletes inbox items processed more than InboxRetention ago,
// connect sessions never used and expired more than SessionRetention ago,
// and sync runs started more than RunRetention ago (the delivery-history
// retention; 0 keeps them).
// Start runs it every MaintenanceEvery under the distributed Locker.
func (s *Scheduler) Maintain(ctx context.Context) (Swept, error) {
	now := s.now()
	var out Swept
	var err error
	db := s.cfg.DB
	out.InboxItems, err = s.sweep(ctx, storage.BatchDeleteSQL(db, "inbox_items", sweepInboxSel), now.Add(-s.cfg.InboxRetention))
	if err != nil {
		return out, fmt.Errorf("schedule: sweep inbox: %w", err)
	}
	out.ConnectSessions, err = s.sweep(ctx, storage.BatchDeleteSQL(db, "connect_sessions", sweepSessionsSel), now.Add(-s.cfg.SessionRetention))
	if err != nil {
		return out, fmt.Errorf("schedule: sweep connect sessions: %w", err)
	}
	if s.cfg.RunRetention > 0 {
		out.SyncRuns, err = s.sweep(ctx, storage.BatchDeleteSQL(db, "sync_runs", sweepRunsSel), now.Add(-s.cfg.RunRetention))
		if err != nil {
			return out, fmt.Errorf("schedule: sweep sync runs: %w", err)
		}
	}
	for _, task := range s.cfg.Maintenance {
		if err := task(ctx, now); err != nil {
			return out, fmt.Errorf("schedule: maintenance: %w", err)
		}
	}
	return out, nil
}

// sweep repeats a batched DELETE until it deletes less than a batch.
func (s *Scheduler) sweep(ctx context.Context, q string, cutoff any) (int64, error) {
	var total int64
	for {
		res := s.cfg.DB.WithContext(ctx).Exec(q, cutoff, maintenanceBatch)
		if res.Error != nil {
			return total, res.Error
		}
		total += res.RowsAffected
		if res.RowsAffected < maintenanceBatch {
			return total, nil
		}
	}
}
