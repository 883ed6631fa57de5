package forwarding

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
)

// MaxReplayEvents is the most events a webhook replay's time range may hold
// (all of the account's events recorded in it, whatever their topic); a
// larger range is refused so one request stays a bounded transaction.
const MaxReplayEvents = 10000

// replayBatch is how many events a replay reads and queues at a time.
const replayBatch = 500

// ReplayRange re-delivers to one webhook the account's events recorded from
// since (inclusive) to until (exclusive; zero = now) that the webhook would receive
// today (its topics and scopes), as new deliveries, and answers how many.
// The webhook must be active (or paused with pauseMode "queue", which holds
// them); a range holding more than MaxReplayEvents events (Config) is a 422.
func (s *Service) ReplayRange(ctx context.Context, accountID, webhookID string, since, until time.Time) (int, error) {
	if since.IsZero() {
		return 0, models.FieldError("since", "since is required: an RFC 3339 time")
	}
	now := s.Now()
	if until.IsZero() {
		until = now.Add(time.Millisecond) // everything recorded so far
	}
	since, until = since.UTC(), until.UTC()
	if !until.After(since) {
		return 0, models.FieldError("until", "until must be later than since")
	}
	total := 0
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		row, err := s.loadSubscription(storage.ForUpdate(tx), accountID, webhookID)
		if err != nil {
			return err
		}
		status, err := replayStatus(row)
		if err != nil {
			return err
		}
		var n int64
		if err := tx.Raw(replayCountSQL, accountID, since, until, s.maxReplay+1).Scan(&n).Error; err != nil {
			return fmt.Errorf("replay %s: count events: %w", webhookID, err)
		}
		if n > int64(s.maxReplay) {
			return models.FieldError("since", "the range holds more than %d events, the most one replay re-delivers; split it into smaller ranges", s.maxReplay)
		}
		t, err := newTarget(*row, false)
		if err != nil {
			return err
		}
		var last int64
		for {
			var evs []models.Event
			if err := tx.Raw(replayPageSQL, accountID, since, until, last, replayBatch).Scan(&evs).Error; err != nil {
				return fmt.Errorf("replay %s: read events: %w", webhookID, err)
			}
			if len(evs) == 0 {
				break
			}
			last = evs[len(evs)-1].Seq
			var dels []models.Delivery
			for _, ev := range evs {
				var env models.Envelope
				if err := json.Unmarshal(ev.Body, &env); err != nil {
					return fmt.Errorf("replay %s: event %s: %w", webhookID, ev.ID, err)
				}
				if !t.accepts(&env, &payload{raw: env.DataPayload}) {
					continue
				}
				d := models.Delivery{ID: models.NewID(models.PrefixDelivery), AccountID: accountID, EventID: ev.ID,
					SubscriptionID: row.ID, Status: status, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}
				if row.Ordering == models.OrderingRecord {
					d.OrderKey, d.OrderSeq = recordKey(&env), ev.Seq
				}
				if row.CircuitOpenUntil != nil && row.CircuitOpenUntil.After(now) {
					d.NextAttemptAt = row.CircuitOpenUntil.UTC()
				}
				dels = append(dels, d)
			}
			if len(dels) > 0 {
				if err := tx.CreateInBatches(dels, replayBatch).Error; err != nil {
					return fmt.Errorf("replay %s: queue deliveries: %w", webhookID, err)
				}
				total += len(dels)
			}
			if len(evs) < replayBatch {
				break
			}
		}
		if total > 0 {
			return notifyQueued(tx)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if total > 0 {
		s.wake()
	}
	return total, nil
}

// The replay's queries, both on idx_events_account_created (account_id,
// created_at, seq): the count stops at the bound, the pages walk the range.
const (
	replayCountSQL = `SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE account_id = ? AND created_at >= ? AND created_at < ? LIMIT ?) r`
	replayPageSQL  = `SELECT id, seq, body FROM events WHERE account_id = ? AND created_at >= ? AND created_at < ? AND seq > ? ORDER BY seq LIMIT ?`
)

// replayStatus is the status a replay's deliveries start in, or why the
// webhook cannot take a replay now.
func replayStatus(row *models.Subscription) (string, error) {
	switch {
	case row.Active:
		return models.DeliveryPending, nil
	case row.DisabledReason == "" && row.PauseMode == models.PauseQueue:
		return models.DeliveryHeld, nil
	case row.DisabledReason != "":
		return "", models.Errorf(models.ErrCodeConflict, "webhook %s was disabled (%s); fix the endpoint and set active to true before replaying", row.ID, row.DisabledReason)
	default:
		return "", models.Errorf(models.ErrCodeConflict, "webhook %s is paused with pauseMode \"drop\"; set active to true (or pauseMode to \"queue\") before replaying", row.ID)
	}
}
