package forwarding

import (
	"context"
	"fmt"
	"time"
)

// pruneBatch bounds each retention DELETE, keeping transactions short.
const pruneBatch = 1000

// Pruned counts what one retention pass deleted.
type Pruned struct {
	Attempts, Deliveries, Events int64
}

// Prune deletes delivery history older than before: attempt logs, finished
// deliveries (succeeded or dead), and events no remaining delivery refers
// to. Queued deliveries and their events are never touched, so nothing still
// to be sent is lost; pulled cursors older than before find nothing.
func (s *Service) Prune(ctx context.Context, before time.Time) (Pruned, error) {
	var p Pruned
	var err error
	if p.Attempts, err = s.sweep(ctx, `DELETE FROM attempts WHERE id IN (SELECT id FROM attempts WHERE attempted_at < ? LIMIT ?)`, before); err != nil {
		return p, fmt.Errorf("prune attempts: %w", err)
	}
	if p.Deliveries, err = s.sweep(ctx, `DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries
WHERE created_at < ? AND status IN ('succeeded', 'dead') LIMIT ?)`, before); err != nil {
		return p, fmt.Errorf("prune deliveries: %w", err)
	}
	if p.Events, err = s.sweep(ctx, `DELETE FROM events WHERE id IN (SELECT e.id FROM events e
WHERE e.created_at < ? AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) LIMIT ?)`, before); err != nil {
		return p, fmt.Errorf("prune events: %w", err)
	}
	return p, nil
}

func (s *Service) sweep(ctx context.Context, q string, before time.Time) (int64, error) {
	var total int64
	for {
		res := s.db.WithContext(ctx).Exec(q, before.UTC(), pruneBatch)
		if res.Error != nil {
			return total, res.Error
		}
		total += res.RowsAffected
		if res.RowsAffected < pruneBatch {
			return total, nil
		}
	}
}
