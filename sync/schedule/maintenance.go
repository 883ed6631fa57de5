package schedule

import (
	"context"
	"fmt"
)

// maintenanceBatch bounds each retention DELETE, keeping transactions short.
const maintenanceBatch = 1000

// Swept counts what one maintenance pass deleted.
type Swept struct {
	InboxItems      int64
	ConnectSessions int64
}

// Maintain deletes inbox items processed more than InboxRetention ago and
// connect sessions never used and expired more than SessionRetention ago.
// Start runs it every MaintenanceEvery under the distributed Locker.
func (s *Scheduler) Maintain(ctx context.Context) (Swept, error) {
	now := s.now()
	var out Swept
	var err error
	out.InboxItems, err = s.sweep(ctx, `DELETE FROM inbox_items WHERE id IN (SELECT id FROM inbox_items WHERE processed_at IS NOT NULL AND processed_at < ? LIMIT ?)`,
		now.Add(-s.cfg.InboxRetention))
	if err != nil {
		return out, fmt.Errorf("schedule: sweep inbox: %w", err)
	}
	out.ConnectSessions, err = s.sweep(ctx, `DELETE FROM connect_sessions WHERE id IN (SELECT id FROM connect_sessions WHERE used_at IS NULL AND expires_at < ? LIMIT ?)`,
		now.Add(-s.cfg.SessionRetention))
	if err != nil {
		return out, fmt.Errorf("schedule: sweep connect sessions: %w", err)
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
