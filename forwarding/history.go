package forwarding

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
)

// AttemptView is one logged attempt.
type AttemptView struct {
	AttemptedAt    time.Time `json:"attemptedAt"`
	StatusCode     int       `json:"statusCode"`
	ResponseTimeMs int64     `json:"responseTimeMs"`
	ResponseBody   string    `json:"responseBody,omitempty"`
	Error          string    `json:"error,omitempty"`
}

// DeliveryView is a delivery with its attempts.
type DeliveryView struct {
	ID            string        `json:"id"`
	WebhookID     string        `json:"webhookId"`
	EventID       string        `json:"eventId"`
	Topic         string        `json:"topic"`
	Status        string        `json:"status"`
	AttemptCount  int           `json:"attemptCount"`
	NextAttemptAt *time.Time    `json:"nextAttemptAt,omitempty"`
	LastError     string        `json:"lastError,omitempty"`
	CreatedAt     time.Time     `json:"createdAt"`
	Attempts      []AttemptView `json:"attempts"`
}

// DeliveryFilter selects deliveries; empty fields select all.
type DeliveryFilter struct {
	WebhookID string
	Status    string
	// EventID, Topic (exact) and ConnectionID select by the delivered event.
	EventID      string
	Topic        string
	ConnectionID string
	// Since (inclusive) and Until (exclusive) bound the delivery's creation.
	Since, Until time.Time
}

// ListDeliveries pages the account's deliveries, newest first, with attempts.
func (s *Service) ListDeliveries(ctx context.Context, accountID string, f DeliveryFilter, limit int, cursor string) ([]DeliveryView, string, error) {
	db := s.db.WithContext(ctx)
	if f.WebhookID != "" {
		if _, err := s.loadSubscription(db, accountID, f.WebhookID); err != nil {
			return nil, "", err
		}
	}
	switch f.Status {
	case "", models.DeliveryPending, models.DeliveryFailed, models.DeliverySucceeded, models.DeliveryDead, models.DeliveryHeld:
	default:
		return nil, "", models.FieldError("status", "status must be one of succeeded, failed, pending, dead, held")
	}
	q := db.Where("account_id = ?", accountID)
	if f.WebhookID != "" {
		q = q.Where("subscription_id = ?", f.WebhookID)
	}
	if f.Status != "" {
		q = q.Where("status = ?", f.Status)
	}
	if f.EventID != "" {
		q = q.Where("event_id = ?", f.EventID)
	}
	if f.Topic != "" || f.ConnectionID != "" {
		ev := db.Model(&models.Event{}).Select("id").Where("account_id = ?", accountID)
		if f.Topic != "" {
			ev = ev.Where("topic = ?", f.Topic)
		}
		if f.ConnectionID != "" {
			ev = ev.Where("connection_id = ?", f.ConnectionID)
		}
		q = q.Where("event_id IN (?)", ev)
	}
	if !f.Since.IsZero() {
		q = q.Where("created_at >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		q = q.Where("created_at < ?", f.Until.UTC())
	}
	if cursor != "" {
		q = q.Where("id < ?", cursor)
	}
	var rows []models.Delivery
	if err := q.Order("id DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows, next = rows[:limit], rows[limit-1].ID
	}
	views, err := s.deliveryViews(db, rows)
	return views, next, err
}

func (s *Service) deliveryViews(db *gorm.DB, rows []models.Delivery) ([]DeliveryView, error) {
	out := make([]DeliveryView, 0, len(rows))
	if len(rows) == 0 {
		return out, nil
	}
	ids := make([]string, len(rows))
	evIDs := make([]string, len(rows))
	for i, r := range rows {
		ids[i], evIDs[i] = r.ID, r.EventID
	}
	var atts []models.Attempt
	if err := db.Where("delivery_id IN ?", ids).Order("number").Find(&atts).Error; err != nil {
		return nil, fmt.Errorf("load attempts: %w", err)
	}
	byDel := map[string][]AttemptView{}
	for _, a := range atts {
		byDel[a.DeliveryID] = append(byDel[a.DeliveryID], AttemptView{AttemptedAt: a.AttemptedAt.UTC(), StatusCode: a.StatusCode,
			ResponseTimeMs: a.ResponseTimeMs, ResponseBody: a.ResponseBody, Error: tenantError(a.Error)})
	}
	var evs []models.Event
	if err := db.Select("id", "topic").Where("id IN ?", evIDs).Find(&evs).Error; err != nil {
		return nil, fmt.Errorf("load event topics: %w", err)
	}
	topic := map[string]string{}
	for _, e := range evs {
		topic[e.ID] = e.Topic
	}
	now := s.Now()
	for _, r := range rows {
		v := DeliveryView{ID: r.ID, WebhookID: r.SubscriptionID, EventID: r.EventID, Topic: topic[r.EventID], Status: r.Status,
			AttemptCount: r.Attempts, LastError: tenantError(r.LastError), CreatedAt: r.CreatedAt.UTC(), Attempts: byDel[r.ID]}
		if v.Attempts == nil {
			v.Attempts = []AttemptView{}
		}
		if r.Status == models.DeliveryPending || r.Status == models.DeliveryFailed {
			t := r.NextAttemptAt.UTC()
			if t.Before(now) {
				t = now
			}
			v.NextAttemptAt = &t
		}
		out = append(out, v)
	}
	return out, nil
}

// Stats are a subscription's delivery counters.
type Stats struct {
	TotalDeliveries      int64 `json:"totalDeliveries"`
	SuccessfulDeliveries int64 `json:"successfulDeliveries"`
	FailedDeliveries     int64 `json:"failedDeliveries"`
	PendingDeliveries    int64 `json:"pendingDeliveries"`
	// HeldDeliveries are held while the webhook is paused with pauseMode
	// "queue".
	HeldDeliveries     int64      `json:"heldDeliveries"`
	DeadDeliveries     int64      `json:"deadDeliveries"`
	LastDeliveryAt     *time.Time `json:"lastDeliveryAt"`
	LastDeliveryStatus *string    `json:"lastDeliveryStatus"`
	LastStatusCode     *int       `json:"lastStatusCode"`
}

// Stats queries: the counts read only idx_deliveries_sub_status (no table
// rows on PostgreSQL once vacuumed), over the deliveries retention keeps; the
// last attempt is one backward probe of idx_attempts_sub_time.
const (
	statsCountsSQL      = `SELECT status, count(*) AS n FROM deliveries WHERE subscription_id = ? GROUP BY status`
	statsLastAttemptSQL = `SELECT * FROM attempts WHERE subscription_id = ? ORDER BY attempted_at DESC, id DESC LIMIT 1`
)

// SubscriptionStats counts a subscription's deliveries by state; failed
// counts deliveries waiting for a retry and dead letters.
func (s *Service) SubscriptionStats(ctx context.Context, accountID, id string) (*Stats, error) {
	db := s.db.WithContext(ctx)
	if _, err := s.loadSubscription(db, accountID, id); err != nil {
		return nil, err
	}
	var counts []struct {
		Status string
		N      int64
	}
	if err := db.Raw(statsCountsSQL, id).Scan(&counts).Error; err != nil {
		return nil, fmt.Errorf("count deliveries: %w", err)
	}
	st := &Stats{}
	for _, c := range counts {
		st.TotalDeliveries += c.N
		switch c.Status {
		case models.DeliverySucceeded:
			st.SuccessfulDeliveries = c.N
		case models.DeliveryFailed:
			st.FailedDeliveries += c.N
		case models.DeliveryDead:
			st.FailedDeliveries += c.N
			st.DeadDeliveries = c.N
		case models.DeliveryPending:
			st.PendingDeliveries = c.N
		case models.DeliveryHeld:
			st.HeldDeliveries = c.N
		}
	}
	var last models.Attempt
	err := db.Raw(statsLastAttemptSQL, id).Take(&last).Error
	if err == nil {
		t := last.AttemptedAt.UTC()
		status := "failed"
		if last.Error == "" && last.StatusCode >= 200 && last.StatusCode < 300 {
			status = "succeeded"
		}
		st.LastDeliveryAt, st.LastDeliveryStatus, st.LastStatusCode = &t, &status, &last.StatusCode
	} else if !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("last attempt: %w", err)
	}
	return st, nil
}

// Resend queues the delivery's event again to its subscription, as a new
// delivery, and returns it.
func (s *Service) Resend(ctx context.Context, accountID, deliveryID string) (*DeliveryView, error) {
	var nd models.Delivery
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var d models.Delivery
		err := tx.Where("id = ? AND account_id = ?", deliveryID, accountID).Take(&d).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return models.Errorf(models.ErrCodeNotFound, "delivery %s not found", deliveryID)
		}
		if err != nil {
			return fmt.Errorf("load delivery %s: %w", deliveryID, err)
		}
		if _, err := s.loadSubscription(tx, accountID, d.SubscriptionID); err != nil {
			return models.Errorf(models.ErrCodeConflict, "webhook %s of delivery %s no longer exists", d.SubscriptionID, deliveryID)
		}
		now := s.Now()
		nd = models.Delivery{ID: models.NewID(models.PrefixDelivery), AccountID: accountID, EventID: d.EventID,
			SubscriptionID: d.SubscriptionID, Status: models.DeliveryPending, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}
		return tx.Create(&nd).Error
	})
	if err != nil {
		return nil, err
	}
	s.wakeAll(ctx)
	views, err := s.deliveryViews(s.db.WithContext(ctx), []models.Delivery{nd})
	if err != nil {
		return nil, err
	}
	return &views[0], nil
}

// DeadLetters pages the account's dead deliveries, newest first.
func (s *Service) DeadLetters(ctx context.Context, accountID, webhookID string, limit int, cursor string) ([]DeliveryView, string, error) {
	return s.ListDeliveries(ctx, accountID, DeliveryFilter{WebhookID: webhookID, Status: models.DeliveryDead}, limit, cursor)
}

// Replay puts one dead delivery back in the queue with a fresh retry budget.
func (s *Service) Replay(ctx context.Context, accountID, deliveryID string) error {
	res := s.db.WithContext(ctx).Model(&models.Delivery{}).
		Where("id = ? AND account_id = ? AND status = ?", deliveryID, accountID, models.DeliveryDead).
		Updates(map[string]any{"status": models.DeliveryPending, "retries": 0, "next_attempt_at": s.Now(), "lease_token": "", "updated_at": s.Now()})
	if res.Error != nil {
		return fmt.Errorf("replay %s: %w", deliveryID, res.Error)
	}
	if res.RowsAffected == 0 {
		return models.Errorf(models.ErrCodeNotFound, "dead letter %s not found", deliveryID)
	}
	s.wakeAll(ctx)
	return nil
}

// ReplayAll replays every dead delivery of the account (of one webhook when
// webhookID is set) and returns how many.
func (s *Service) ReplayAll(ctx context.Context, accountID, webhookID string) (int64, error) {
	db := s.db.WithContext(ctx)
	q := db.Model(&models.Delivery{}).Where("account_id = ? AND status = ?", accountID, models.DeliveryDead)
	if webhookID != "" {
		if _, err := s.loadSubscription(db, accountID, webhookID); err != nil {
			return 0, err
		}
		q = q.Where("subscription_id = ?", webhookID)
	}
	res := q.Updates(map[string]any{"status": models.DeliveryPending, "retries": 0, "next_attempt_at": s.Now(), "lease_token": "", "updated_at": s.Now()})
	if res.Error != nil {
		return 0, fmt.Errorf("replay all: %w", res.Error)
	}
	s.wakeAll(ctx)
	return res.RowsAffected, nil
}

// ListEvents pages the account's events in commit order after cursor (a
// sequence number from an earlier answer; "latest" answers no events and the
// current cursor), optionally filtered by a topic or pattern. The next cursor
// is the last event's, so a puller can always resume.
func (s *Service) ListEvents(ctx context.Context, accountID, after, topic string, limit int) ([]json.RawMessage, string, error) {
	return s.Events(ctx, accountID, EventFilter{After: after, Topic: topic}, limit)
}

// EventFilter selects the events GET /v1/events pages through.
type EventFilter struct {
	// After is the previous page's cursor, "latest", or an RFC 3339 time
	// (events recorded at or after it).
	After string
	// Topic is a topic or a "category/*" pattern.
	Topic string
	// ConnectionID keeps one connection's events.
	ConnectionID string
}

// Events pages the account's events in order, as ListEvents, with the
// connection and time filters of EventFilter.
func (s *Service) Events(ctx context.Context, accountID string, f EventFilter, limit int) ([]json.RawMessage, string, error) {
	after, topic := f.After, f.Topic
	var since time.Time
	if t, err := time.Parse(time.RFC3339, after); err == nil {
		since, after = t, ""
	}
	var seq int64
	if after == "latest" { // where a new puller starts: nothing old, the current cursor
		var last int64
		if err := s.db.WithContext(ctx).Model(&models.Event{}).Where("account_id = ?", accountID).
			Select("COALESCE(MAX(seq), 0)").Scan(&last).Error; err != nil {
			return nil, "", fmt.Errorf("latest event: %w", err)
		}
		return []json.RawMessage{}, strconv.FormatInt(last, 10), nil
	}
	if after != "" {
		n, err := strconv.ParseInt(after, 10, 64)
		if err != nil || n < 0 {
			return nil, "", models.FieldError("after", "after must be a cursor from an earlier answer or an RFC 3339 time")
		}
		seq = n
	}
	q := s.db.WithContext(ctx).Select("seq", "body").Where("account_id = ? AND seq > ?", accountID, seq)
	if !since.IsZero() {
		q = q.Where("created_at >= ?", since.UTC())
	}
	if f.ConnectionID != "" {
		q = q.Where("connection_id = ?", f.ConnectionID)
	}
	switch {
	case topic == "" || topic == "*":
	case !models.ValidTopicPattern(topic):
		return nil, "", models.FieldError("topic", "unknown topic %q", topic)
	case strings.HasSuffix(topic, "/*"):
		q = q.Where("topic LIKE ?", strings.TrimSuffix(topic, "*")+"%")
	default:
		q = q.Where("topic = ?", topic)
	}
	var rows []models.Event
	if err := q.Order("seq").Limit(limit).Find(&rows).Error; err != nil {
		return nil, "", fmt.Errorf("list events: %w", err)
	}
	out := make([]json.RawMessage, len(rows))
	next := ""
	for i, r := range rows {
		out[i] = r.Body
		next = strconv.FormatInt(r.Seq, 10)
	}
	return out, next, nil
}

// SendTest publishes a sample event of topic to one subscription only and
// attempts it at once, answering that attempt.
func (s *Service) SendTest(ctx context.Context, accountID, webhookID, topic string) (*AttemptView, string, error) {
	d := s.direct
	if topic == "" {
		topic = "crm/contacts"
	}
	if !models.IsKnownTopic(topic) {
		return nil, "", models.FieldError("topic", "unknown topic %q", topic)
	}
	if _, err := s.loadSubscription(s.db.WithContext(ctx), accountID, webhookID); err != nil {
		return nil, "", err
	}
	env := SampleEvent(topic)
	var dels []models.Delivery
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var e error
		dels, e = s.publish(ctx, tx, accountID, webhookID, []*models.Envelope{env})
		if e != nil || len(dels) == 0 {
			return e
		}
		// The test delivery is sent by this request: it is stored already
		// held for a lease, so a dispatcher woken by the commit does not
		// claim and send it too. Should this process die before sending, it
		// becomes due when the hold ends and is delivered in the background.
		return tx.Model(&models.Delivery{}).Where("id = ?", dels[0].ID).
			Update("next_attempt_at", s.Now().Add(s.cfg.MaxTimeout+leaseMargin)).Error
	})
	if err != nil {
		return nil, "", err
	}
	if s.afterTestPublish != nil {
		s.afterTestPublish()
	}
	jobs, err := d.claim(ctx, 1, []string{dels[0].ID})
	if err != nil {
		return nil, "", fmt.Errorf("claim test delivery: %w", err)
	}
	if len(jobs) == 0 {
		return nil, "", fmt.Errorf("claim test delivery %s: not claimable", dels[0].ID)
	}
	jobs[0].force = true
	r := d.attempt(ctx, jobs[0])
	if err := d.flush(ctx, []*result{r}); err != nil {
		return nil, "", err
	}
	return &AttemptView{AttemptedAt: r.at, StatusCode: r.status, ResponseTimeMs: r.elapsed.Milliseconds(),
		ResponseBody: r.body, Error: tenantError(r.errText())}, env.ID, nil
}
