package forwarding

import (
	"context"
	"fmt"
	"time"

	"github.com/tributary/tributary/storage"
)

// pruneBatch bounds each retention DELETE, keeping transactions short.
var pruneBatch = 1000

// Pruned counts what one retention pass deleted.
type Pruned struct {
	Attempts, Deliveries, Events int64
}

// Retention queries. Each walks an index in time order (migration 3:
// idx_attempts_attempted_at, idx_deliveries_finished, idx_events_created),
// so a batch reads what it deletes and never rescans rows it keeps; the
// batch is deleted by primary key (storage.BatchDeleteSQL).
const (
	pruneAttemptsSel   = `SELECT id FROM attempts WHERE attempted_at < ? ORDER BY attempted_at LIMIT ?`
	pruneDeliveriesSel = `SELECT id FROM deliveries WHERE created_at < ? AND status IN ('succeeded', 'dead') ORDER BY created_at LIMIT ?`
	// Events are walked with a cursor: an old event that a queued delivery
	// still needs is passed over once, not read again by every batch.
	pruneEventsPageSQL = `SELECT id, created_at FROM events
WHERE created_at < ? AND (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?`
	pruneEventsSQL = `DELETE FROM events WHERE id IN ?
  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)`
)

// Prune deletes delivery history older than before: attempt logs, finished
// deliveries (succeeded or dead), and events no remaining delivery refers
// to. Queued deliveries and their events are never touched, so nothing still
// to be sent is lost; pulled cursors older than before find nothing. Every
// statement deletes at most one batch in its own short transaction, and the
// work is proportional to what is deleted (plus old events still needed).
func (s *Service) Prune(ctx context.Context, before time.Time) (Pruned, error) {
	var p Pruned
	var err error
	before = before.UTC()
	if p.Attempts, err = s.sweep(ctx, storage.BatchDeleteSQL(s.db, "attempts", pruneAttemptsSel), before); err != nil {
		return p, fmt.Errorf("prune attempts: %w", err)
	}
	if p.Deliveries, err = s.sweep(ctx, storage.BatchDeleteSQL(s.db, "deliveries", pruneDeliveriesSel), before); err != nil {
		return p, fmt.Errorf("prune deliveries: %w", err)
	}
	if p.Events, err = s.pruneEvents(ctx, before); err != nil {
		return p, fmt.Errorf("prune events: %w", err)
	}
	return p, nil
}

func (s *Service) pruneEvents(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	afterAt, afterID := time.Time{}, ""
	for {
		var page []struct {
			ID        string
			CreatedAt time.Time
		}
		if err := s.db.WithContext(ctx).Raw(pruneEventsPageSQL, before, afterAt, afterID, pruneBatch).Scan(&page).Error; err != nil {
			return total, err
		}
		if len(page) == 0 {
			return total, nil
		}
		ids := make([]string, len(page))
		for i, e := range page {
			ids[i] = e.ID
		}
		res := s.db.WithContext(ctx).Exec(pruneEventsSQL, ids)
		if res.Error != nil {
			return total, res.Error
		}
		total += res.RowsAffected
		last := page[len(page)-1]
		afterAt, afterID = last.CreatedAt, last.ID
		if len(page) < pruneBatch {
			return total, nil
		}
	}
}

func (s *Service) sweep(ctx context.Context, q string, before time.Time) (int64, error) {
	var total int64
	for {
		res := s.db.WithContext(ctx).Exec(q, before, pruneBatch)
		if res.Error != nil {
			return total, res.Error
		}
		total += res.RowsAffected
		if res.RowsAffected < int64(pruneBatch) {
			return total, nil
		}
	}
}
