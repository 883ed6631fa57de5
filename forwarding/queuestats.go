package forwarding

import (
	"context"
	"fmt"
	"time"

	"github.com/tributary/tributary/models"
)

// queueSampleEvery is how often a running dispatcher samples the queue gauges.
const queueSampleEvery = 5 * time.Second

// QueueStats is a sample of the delivery queue.
type QueueStats struct {
	// Depth counts queued deliveries: pending, or failed awaiting a retry.
	Depth int64
	// Due counts those due now and not claimed.
	Due int64
	// OldestDue is how long the most overdue of them has been due (0 when none is).
	OldestDue time.Duration
}

// QueueStats samples the delivery queue with queries the partial index
// idx_deliveries_queued answers (migration 5).
func (s *Service) QueueStats(ctx context.Context) (QueueStats, error) {
	now := s.Now()
	db := s.db.WithContext(ctx)
	var st QueueStats
	var row struct {
		Depth int64
		Due   int64
	}
	err := db.Model(&models.Delivery{}).
		Select("COUNT(*) AS depth, COALESCE(SUM(CASE WHEN next_attempt_at <= ? THEN 1 ELSE 0 END), 0) AS due", now).
		Where("status IN ('pending', 'failed')").Scan(&row).Error
	if err != nil {
		return st, fmt.Errorf("queue depth: %w", err)
	}
	st.Depth, st.Due = row.Depth, row.Due
	var oldest []models.Delivery
	err = db.Select("next_attempt_at").Where("status IN ('pending', 'failed') AND next_attempt_at <= ?", now).
		Order("next_attempt_at").Limit(1).Find(&oldest).Error
	if err != nil {
		return st, fmt.Errorf("oldest due delivery: %w", err)
	}
	if len(oldest) == 1 {
		st.OldestDue = max(0, now.Sub(oldest[0].NextAttemptAt))
	}
	return st, nil
}

// sampleQueue sets the queue gauges now and every queueSampleEvery until ctx ends.
func (d *Dispatcher) sampleQueue(ctx context.Context) {
	t := time.NewTicker(queueSampleEvery)
	defer t.Stop()
	for {
		st, err := d.s.QueueStats(ctx)
		if err == nil {
			d.m.depth.Set(float64(st.Depth))
			d.m.due.Set(float64(st.Due))
			d.m.oldest.Set(st.OldestDue.Seconds())
		} else if ctx.Err() == nil {
			d.s.log.Warn("dispatcher: sampling the queue failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
