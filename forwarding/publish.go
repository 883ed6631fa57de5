package forwarding

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
)

// Publish is the one way events enter forwarding. Inside tx (the caller's
// transaction, so snapshot, cursor, event and deliveries commit together) it
// assigns each event its id, timestamp and sequence number, stores the exact
// bytes receivers will get, and queues one delivery per subscription of the
// account whose patterns match the topic. Subscriptions the engine disabled
// (410, failing too long) get their deliveries as dead letters so they can be
// replayed once the endpoint is fixed; subscriptions an ISV paused get none,
// or held ones with pauseMode "queue". Connection, user and dataPayload
// scopes of a subscription narrow what it gets.
func (s *Service) Publish(ctx context.Context, tx *gorm.DB, accountID string, events ...*models.Envelope) error {
	_, err := s.publish(ctx, tx, accountID, "", events)
	return err
}

// PublishNow publishes in a transaction of its own and wakes the local
// dispatcher once it committed.
func (s *Service) PublishNow(ctx context.Context, accountID string, events ...*models.Envelope) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return s.Publish(ctx, tx, accountID, events...)
	})
	if err == nil {
		s.wake()
	}
	return err
}

// publish stores events and their deliveries; only, when set, restricts
// fan-out to that one subscription (test sends). It returns the deliveries.
func (s *Service) publish(ctx context.Context, tx *gorm.DB, accountID, only string, events []*models.Envelope) ([]models.Delivery, error) {
	if len(events) == 0 {
		return nil, nil
	}
	tx = tx.WithContext(ctx)
	now := s.Now()
	for _, e := range events {
		if !models.IsKnownTopic(e.Topic) {
			return nil, fmt.Errorf("publish: unknown topic %q", e.Topic)
		}
	}
	subs, err := s.fanoutTargets(tx, accountID, only)
	if err != nil {
		return nil, err
	}
	first, err := s.reserveSeq(tx, accountID, len(events))
	if err != nil {
		return nil, err
	}
	rows := make([]models.Event, 0, len(events))
	var dels []models.Delivery
	for i, e := range events {
		pl := &payload{}
		if e.ID == "" {
			e.ID = models.NewID(models.PrefixEvent)
		}
		e.AccountID = accountID
		if e.DetectedAt.IsZero() {
			e.DetectedAt = now
		}
		if e.EventTimestamp.IsZero() {
			e.EventTimestamp = e.DetectedAt
		}
		e.EventTimestamp = e.EventTimestamp.UTC().Truncate(time.Millisecond)
		e.DetectedAt = e.DetectedAt.UTC().Truncate(time.Millisecond)
		if e.Category == "" {
			e.Category = models.CategoryOf(e.Topic)
		}
		if len(e.DataPayload) == 0 {
			e.DataPayload = json.RawMessage("{}")
		}
		pl.raw = e.DataPayload
		body, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("publish %s: marshal: %w", e.Topic, err)
		}
		rows = append(rows, models.Event{ID: e.ID, AccountID: accountID, Seq: first + int64(i), Topic: e.Topic,
			UpdateType: e.UpdateType, ConnectionID: e.ConnectionID, Body: body, CreatedAt: now})
		for _, sub := range subs {
			if !sub.accepts(e, pl) {
				continue
			}
			if e.Topic == models.TopicWebhookDisabled && !sub.row.Active {
				continue // a disabled endpoint is not told about itself
			}
			d := models.Delivery{ID: models.NewID(models.PrefixDelivery), AccountID: accountID, EventID: e.ID,
				SubscriptionID: sub.row.ID, Status: models.DeliveryPending, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}
			if sub.row.Ordering == models.OrderingRecord {
				d.OrderKey, d.OrderSeq = recordKey(e), first+int64(i)
			}
			if sub.row.CircuitOpenUntil != nil && sub.row.CircuitOpenUntil.After(now) {
				d.NextAttemptAt = sub.row.CircuitOpenUntil.UTC()
			}
			switch {
			case sub.row.Active || only != "":
			case sub.row.DisabledReason != "":
				d.Status, d.LastError = models.DeliveryDead, "subscription disabled: "+sub.row.DisabledReason
			default: // paused with pauseMode "queue"
				d.Status = models.DeliveryHeld
			}
			dels = append(dels, d)
		}
	}
	if err := tx.CreateInBatches(rows, 500).Error; err != nil {
		return nil, fmt.Errorf("publish: store events: %w", err)
	}
	if len(dels) > 0 {
		if err := tx.CreateInBatches(dels, 500).Error; err != nil {
			return nil, fmt.Errorf("publish: queue deliveries: %w", err)
		}
		// Other replicas' dispatchers hear of them when tx commits.
		if err := notifyQueued(tx); err != nil {
			return nil, err
		}
	}
	return dels, nil
}

type target struct {
	row      models.Subscription
	patterns []string
	scope    scope
}

// newTarget prepares row for matching; all (a test send) takes every topic.
func newTarget(row models.Subscription, all bool) (target, error) {
	t := target{row: row}
	if all {
		t.patterns = []string{"*"}
		return t, nil
	}
	if err := json.Unmarshal([]byte(row.Topics), &t.patterns); err != nil {
		return t, fmt.Errorf("publish: topics of %s: %w", row.ID, err)
	}
	var err error
	if t.scope, err = decodeScope(row); err != nil {
		return t, fmt.Errorf("publish: %w", err)
	}
	return t, nil
}

// accepts reports whether the subscription receives e (its payload pl):
// topic, connections, users and field filters.
func (t target) accepts(e *models.Envelope, pl *payload) bool {
	return t.matches(e.Topic) && t.scope.accepts(e.ConnectionID, e.UserID, pl)
}

func (t target) matches(topic string) bool {
	for _, p := range t.patterns {
		if models.TopicMatches(p, topic) {
			return true
		}
	}
	return false
}

// fanoutTargets loads the subscriptions that may receive the account's
// events: active ones, engine-disabled ones (for replayable dead letters)
// and ones paused with pauseMode "queue" (held deliveries).
func (s *Service) fanoutTargets(tx *gorm.DB, accountID, only string) ([]target, error) {
	var rows []models.Subscription
	q := tx.Select("id", "topics", "active", "disabled_reason", "circuit_open_until", "ordering",
		"connection_ids", "user_ids", "filters", "pause_mode").Where("account_id = ?", accountID)
	if only != "" {
		q = q.Where("id = ?", only)
	} else {
		q = q.Where("active = ? OR disabled_reason <> '' OR pause_mode = ?", true, models.PauseQueue)
	}
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("publish: load subscriptions: %w", err)
	}
	out := make([]target, 0, len(rows))
	for _, r := range rows {
		t, err := newTarget(r, only != "")
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// reserveSeq takes n sequence numbers from the account's counter. The row
// lock it holds until commit makes sequence order equal commit order, so a
// puller reading "after N" never skips an event committed later.
func (s *Service) reserveSeq(tx *gorm.DB, accountID string, n int) (int64, error) {
	var last int64
	err := tx.Raw(`INSERT INTO event_counters (account_id, seq) VALUES (?, ?)
ON CONFLICT (account_id) DO UPDATE SET seq = event_counters.seq + excluded.seq RETURNING seq`, accountID, n).
		Scan(&last).Error
	if err != nil {
		return 0, fmt.Errorf("publish: reserve sequence: %w", err)
	}
	return last - int64(n) + 1, nil
}

// recordKey names the record an event is about, for per-record ordering:
// connection, topic and remote id ("" for events about no record, which are
// not ordered).
func recordKey(e *models.Envelope) string {
	if e.ConnectionID == "" {
		return ""
	}
	switch models.CategoryOf(e.Topic) {
	case models.CategorySync, models.CategoryConnection:
		return ""
	}
	var rec struct {
		RemoteID string `json:"remoteId"`
	}
	if json.Unmarshal(e.DataPayload, &rec) != nil || rec.RemoteID == "" {
		return ""
	}
	return e.ConnectionID + "|" + e.Topic + "|" + rec.RemoteID
}

// orderedReady is the claim condition of per-record ordering: an unordered
// delivery, or one with no earlier delivery of its record to its
// subscription still pending or failed (in flight counts: its lease keeps it
// pending). Dead and succeeded ones release the queue.
const orderedReady = `(order_key = '' OR NOT EXISTS (SELECT 1 FROM deliveries e
  WHERE e.subscription_id = deliveries.subscription_id AND e.order_key = deliveries.order_key
    AND e.order_seq < deliveries.order_seq AND e.status IN ('pending', 'failed')))`
