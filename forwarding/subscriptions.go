package forwarding

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding/signing"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
)

// SubscriptionInput is the body of POST and PATCH /v1/webhooks. Nil fields
// keep their current (or default) value.
type SubscriptionInput struct {
	Address        *string       `json:"address"`
	Topic          *[]string     `json:"topic"`
	Active         *bool         `json:"active"`
	Signing        *SigningInput `json:"signing"`
	Retry          *RetryInput   `json:"retry"`
	TimeoutSeconds *int          `json:"timeoutSeconds"`
	// RateLimit caps deliveries per second (0 = none).
	RateLimit *int `json:"rateLimit"`
	// Ordering is "record" (each record's events in order) or "unordered".
	Ordering *string `json:"ordering"`
	// ConnectionIDs and UserIDs scope the subscription to those
	// connections' / users' events (empty = all).
	ConnectionIDs *[]string `json:"connectionIds"`
	UserIDs       *[]string `json:"userIds"`
	// Filters maps "dataPayload.<path>" to the string, number or boolean the
	// event's payload must hold there.
	Filters *map[string]any `json:"filters"`
	// PauseMode is "drop" (default: nothing is delivered while paused) or
	// "queue" (deliveries are held while paused and sent on resume).
	PauseMode *string `json:"pauseMode"`
}

// SigningInput chooses a subscription's signature scheme.
type SigningInput struct {
	Scheme string `json:"scheme"`
	// Secret is the standard (whsec_…) or hmac secret; generated when empty.
	Secret string `json:"secret"`
}

// RetryInput bounds a subscription's retries.
type RetryInput struct {
	MaxRetries        *int     `json:"maxRetries"`
	BackoffMultiplier *float64 `json:"backoffMultiplier"`
	Schedule          []string `json:"schedule"`
}

// Subscription is a webhook as the API shows it.
type Subscription struct {
	ID             string     `json:"id"`
	Address        string     `json:"address"`
	Topic          []string   `json:"topic"`
	Active         bool       `json:"active"`
	DisabledReason string     `json:"disabledReason,omitempty"`
	DisabledAt     *time.Time `json:"disabledAt,omitempty"`
	// CircuitOpenUntil, while in the future, is when deliveries to the
	// address resume after its circuit breaker opened.
	CircuitOpenUntil *time.Time  `json:"circuitOpenUntil,omitempty"`
	Signing          SigningView `json:"signing"`
	Retry            RetryView   `json:"retry"`
	TimeoutSeconds   int         `json:"timeoutSeconds"`
	RateLimit        int         `json:"rateLimit"`
	Ordering         string      `json:"ordering"`
	// ConnectionIDs, UserIDs and Filters scope the subscription (empty = all).
	ConnectionIDs []string       `json:"connectionIds"`
	UserIDs       []string       `json:"userIds"`
	Filters       map[string]any `json:"filters"`
	// PauseMode is "drop" or "queue".
	PauseMode string    `json:"pauseMode"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// SigningView shows the scheme and, for standard and hmac, the secret the
// receiver verifies with.
type SigningView struct {
	Scheme string `json:"scheme"`
	Secret string `json:"secret,omitempty"`
	// PreviousSecretExpiresAt, after a rotate-secret, is when deliveries stop
	// carrying a signature with the previous secret too.
	PreviousSecretExpiresAt *time.Time `json:"previousSecretExpiresAt,omitempty"`
}

// RetryView is the effective retry policy.
type RetryView struct {
	MaxRetries        int      `json:"maxRetries"`
	BackoffMultiplier float64  `json:"backoffMultiplier,omitempty"`
	Schedule          []string `json:"schedule"`
}

// CreateSubscription validates in and stores a new subscription.
func (s *Service) CreateSubscription(ctx context.Context, accountID string, in SubscriptionInput) (*Subscription, error) {
	if in.Address == nil {
		return nil, models.FieldError("address", "address is required")
	}
	if in.Topic == nil {
		return nil, models.FieldError("topic", "topic is required: a list of topics or patterns such as \"crm/*\"")
	}
	now := s.Now()
	row := &models.Subscription{ID: models.NewID(models.PrefixWebhook), AccountID: accountID, Active: true,
		Scheme: models.SchemeRSA, MaxRetries: DefaultMaxRetries, TimeoutSeconds: int(s.cfg.DefaultTimeout / time.Second),
		CreatedAt: now, UpdatedAt: now}
	if in.Signing == nil {
		in.Signing = &SigningInput{Scheme: models.SchemeRSA}
	}
	if err := s.apply(row, in); err != nil {
		return nil, err
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := applyScopes(tx, row, in); err != nil {
			return err
		}
		if limit := s.cfg.MaxWebhooksPerAccount; limit > 0 {
			// Serialize the account's creations so concurrent requests
			// cannot pass the cap together.
			if err := storage.TxLock(tx, "webhooks:"+accountID); err != nil {
				return fmt.Errorf("create subscription: %w", err)
			}
			var n int64
			if err := tx.Model(&models.Subscription{}).Where("account_id = ?", accountID).Count(&n).Error; err != nil {
				return fmt.Errorf("create subscription: count: %w", err)
			}
			if n >= int64(limit) {
				return models.Errorf(models.ErrCodeConflict,
					"this account already has %d webhooks, the most this deployment allows (dispatcher.max_webhooks_per_account); delete one first", n)
			}
		}
		if err := tx.Create(row).Error; err != nil {
			return fmt.Errorf("create subscription: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.view(row)
}

// UpdateSubscription applies a PATCH. Re-activating a subscription the
// engine disabled clears the reason and resets its endpoint health.
func (s *Service) UpdateSubscription(ctx context.Context, accountID, id string, in SubscriptionInput) (*Subscription, error) {
	var out *models.Subscription
	var released int64
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		row, err := s.loadSubscription(tx, accountID, id)
		if err != nil {
			return err
		}
		wasActive := row.Active
		if err := s.apply(row, in); err != nil {
			return err
		}
		if err := applyScopes(tx, row, in); err != nil {
			return err
		}
		now := s.Now()
		if row.Active && !wasActive {
			row.DisabledReason, row.DisabledAt = "", nil
			row.ConsecutiveFailures, row.FailingSince, row.CircuitOpenUntil = 0, nil, nil
			// What a queue-mode pause held goes out now, in its order.
			res := tx.Model(&models.Delivery{}).Where("subscription_id = ? AND status = ?", row.ID, models.DeliveryHeld).
				Updates(map[string]any{"status": models.DeliveryPending, "next_attempt_at": now, "updated_at": now})
			if res.Error != nil {
				return fmt.Errorf("release held deliveries of %s: %w", row.ID, res.Error)
			}
			released = res.RowsAffected
		}
		row.UpdatedAt = now
		out = row
		if err := tx.Save(row).Error; err != nil {
			return err
		}
		if released > 0 {
			return notifyQueued(tx)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if released > 0 {
		s.wake()
	}
	return s.view(out)
}

// GetSubscription returns one of the account's subscriptions.
func (s *Service) GetSubscription(ctx context.Context, accountID, id string) (*Subscription, error) {
	row, err := s.loadSubscription(s.db.WithContext(ctx), accountID, id)
	if err != nil {
		return nil, err
	}
	return s.view(row)
}

// ListSubscriptions pages the account's subscriptions by id.
func (s *Service) ListSubscriptions(ctx context.Context, accountID string, limit int, cursor string) ([]*Subscription, string, error) {
	var rows []*models.Subscription
	q := s.db.WithContext(ctx).Where("account_id = ?", accountID)
	if cursor != "" {
		q = q.Where("id > ?", cursor)
	}
	if err := q.Order("id").Limit(limit + 1).Find(&rows).Error; err != nil {
		return nil, "", fmt.Errorf("list subscriptions: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows, next = rows[:limit], rows[limit-1].ID
	}
	out := make([]*Subscription, 0, len(rows))
	for _, r := range rows {
		v, err := s.view(r)
		if err != nil {
			return nil, "", err
		}
		out = append(out, v)
	}
	return out, next, nil
}

// DeleteSubscription removes a subscription; its pending deliveries are
// dropped, its history stays until retention removes it.
func (s *Service) DeleteSubscription(ctx context.Context, accountID, id string) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The subscription row first, then its queued deliveries: the order
		// in which a dispatcher's flush takes them when it rests an endpoint.
		if _, err := s.loadSubscription(storage.ForUpdate(tx), accountID, id); err != nil {
			return err
		}
		// Deliveries in flight are left to their dispatcher, which finds the
		// subscription gone and drops them; waiting for their rows here
		// would deadlock with its flush.
		now := s.Now()
		if err := tx.Where("subscription_id = ? AND status IN ? AND (lease_token = '' OR next_attempt_at <= ?)",
			id, []string{models.DeliveryPending, models.DeliveryFailed, models.DeliveryHeld}, now).
			Delete(&models.Delivery{}).Error; err != nil {
			return fmt.Errorf("delete deliveries of %s: %w", id, err)
		}
		return tx.Delete(&models.Subscription{}, "id = ?", id).Error
	})
}

func (s *Service) loadSubscription(tx *gorm.DB, accountID, id string) (*models.Subscription, error) {
	var row models.Subscription
	err := tx.Where("id = ? AND account_id = ?", id, accountID).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, models.Errorf(models.ErrCodeNotFound, "webhook %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("load subscription %s: %w", id, err)
	}
	return &row, nil
}

// apply validates in and writes it onto row.
func (s *Service) apply(row *models.Subscription, in SubscriptionInput) error {
	if in.Address != nil {
		if err := s.validateAddress(*in.Address); err != nil {
			return err
		}
		row.Address = *in.Address
	}
	if in.Topic != nil {
		topics, err := validateTopics(*in.Topic)
		if err != nil {
			return err
		}
		b, _ := json.Marshal(topics)
		row.Topics = string(b)
	}
	if in.Active != nil {
		row.Active = *in.Active
	}
	if in.Signing != nil {
		if err := s.applySigning(row, *in.Signing); err != nil {
			return err
		}
	}
	if in.Retry != nil {
		if err := applyRetry(row, *in.Retry); err != nil {
			return err
		}
	}
	if in.TimeoutSeconds != nil {
		maxS := int(s.cfg.MaxTimeout / time.Second)
		if t := *in.TimeoutSeconds; t < 1 || t > maxS {
			return models.FieldError("timeoutSeconds", "timeoutSeconds must be from 1 to %d", maxS)
		}
		row.TimeoutSeconds = *in.TimeoutSeconds
	}
	if in.RateLimit != nil {
		if r := *in.RateLimit; r < 0 || r > MaxRateLimit {
			return models.FieldError("rateLimit", "rateLimit must be from 0 (no cap) to %d deliveries per second", MaxRateLimit)
		}
		row.RateLimit = *in.RateLimit
	}
	if in.Ordering != nil {
		switch *in.Ordering {
		case OrderingUnordered, "":
			row.Ordering = ""
		case models.OrderingRecord:
			row.Ordering = models.OrderingRecord
		default:
			return models.FieldError("ordering", "ordering must be \"record\" (each record's events in order) or \"unordered\"")
		}
	}
	return nil
}

// OrderingUnordered is the default subscription ordering, as the API shows it.
const OrderingUnordered = "unordered"

// MaxRateLimit bounds a subscription's rateLimit (deliveries per second).
const MaxRateLimit = 10000

func (s *Service) validateAddress(addr string) error {
	u, err := url.Parse(addr)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Hostname() == "" {
		return models.FieldError("address", "address must be an absolute URL, got %q", addr)
	}
	if len(addr) > 2048 {
		return models.FieldError("address", "address is longer than 2048 characters")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !s.http {
			return models.FieldError("address", "address must use https (this deployment does not allow plain http)")
		}
	default:
		return models.FieldError("address", "address must be an http(s) URL, got scheme %q", u.Scheme)
	}
	if u.Fragment != "" {
		return models.FieldError("address", "address must not have a #fragment")
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && metadataIP(ip) {
		return models.FieldError("address", "address %s is a link-local or cloud metadata address, which is never allowed", u.Hostname())
	}
	if ip := net.ParseIP(u.Hostname()); ip != nil && !s.priv && blockedIP(ip) {
		return models.FieldError("address", "address %s is a private, loopback or link-local address, which this deployment does not allow", u.Hostname())
	}
	return nil
}

func validateTopics(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, models.FieldError("topic", "topic must list at least one topic or pattern")
	}
	seen := map[string]bool{}
	var out []string
	for _, t := range in {
		t = strings.TrimSpace(t)
		if !models.ValidTopicPattern(t) {
			return nil, models.FieldError("topic", "unknown topic %q (known: %s, \"<category>/*\" or \"*\")", t, strings.Join(models.Topics, ", "))
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out, nil
}

func (s *Service) applySigning(row *models.Subscription, in SigningInput) error {
	scheme := in.Scheme
	if scheme == "" {
		scheme = models.SchemeRSA
	}
	secret := in.Secret
	switch scheme {
	case models.SchemeRSA:
		if secret != "" {
			return models.FieldError("signing.secret", "the rsa scheme signs with the account's key; do not send a secret")
		}
		row.Scheme, row.SecretEnc = scheme, nil
		row.PrevSecretEnc, row.PrevSecretUntil = nil, nil
		return nil
	case models.SchemeStandard:
		if secret == "" {
			var err error
			if secret, err = signing.NewStandardSecret(); err != nil {
				return err
			}
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, signing.StandardSecretPrefix))
		if !strings.HasPrefix(secret, signing.StandardSecretPrefix) || err != nil || len(raw) < 24 || len(raw) > 64 {
			return models.FieldError("signing.secret", "a standard secret is \"whsec_\" followed by base64 of 24 to 64 random bytes")
		}
	case models.SchemeHMAC:
		if secret == "" {
			b := make([]byte, 32)
			_, _ = rand.Read(b)
			secret = hex.EncodeToString(b)
		}
		if len(secret) < 16 || len(secret) > 256 {
			return models.FieldError("signing.secret", "an hmac secret must be 16 to 256 characters")
		}
	default:
		return models.FieldError("signing.scheme", "signing.scheme must be \"rsa\", \"standard\" or \"hmac\", got %q", scheme)
	}
	row.Scheme = scheme
	row.SecretEnc = s.box.SealString(secret, row.ID)
	// Setting a secret directly replaces it at once; rotate-secret keeps the
	// previous one for an overlap window.
	row.PrevSecretEnc, row.PrevSecretUntil = nil, nil
	return nil
}

func applyRetry(row *models.Subscription, in RetryInput) error {
	if in.BackoffMultiplier != nil && in.Schedule != nil {
		return models.FieldError("retry", "give either retry.backoffMultiplier or retry.schedule, not both")
	}
	if in.Schedule != nil {
		if len(in.Schedule) == 0 || len(in.Schedule) > MaxScheduleLen {
			return models.FieldError("retry.schedule", "retry.schedule must have 1 to %d entries", MaxScheduleLen)
		}
		for _, e := range in.Schedule {
			d, err := time.ParseDuration(e)
			if err != nil || d < minBackoff || d > MaxBackoff {
				return models.FieldError("retry.schedule", "retry.schedule entry %q must be a duration from 1s to 24h", e)
			}
		}
		b, _ := json.Marshal(in.Schedule)
		row.Schedule, row.BackoffMultiplier = string(b), 0
		if in.MaxRetries == nil {
			row.MaxRetries = len(in.Schedule)
		}
	}
	if in.BackoffMultiplier != nil {
		if m := *in.BackoffMultiplier; m < 1 || m > 10 {
			return models.FieldError("retry.backoffMultiplier", "retry.backoffMultiplier must be from 1 to 10")
		}
		row.BackoffMultiplier, row.Schedule = *in.BackoffMultiplier, ""
	}
	if in.MaxRetries != nil {
		if n := *in.MaxRetries; n < 0 || n > MaxRetriesLimit {
			return models.FieldError("retry.maxRetries", "retry.maxRetries must be from 0 to %d", MaxRetriesLimit)
		}
		row.MaxRetries = *in.MaxRetries
	}
	return nil
}

// view renders a row for the API.
func (s *Service) view(r *models.Subscription) (*Subscription, error) {
	v := &Subscription{ID: r.ID, Address: r.Address, Active: r.Active, DisabledReason: r.DisabledReason,
		DisabledAt: r.DisabledAt, TimeoutSeconds: r.TimeoutSeconds, RateLimit: r.RateLimit, Ordering: cmp.Or(r.Ordering, OrderingUnordered), CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		Signing: SigningView{Scheme: r.Scheme}}
	_ = json.Unmarshal([]byte(r.Topics), &v.Topic)
	scopeView(r, v)
	if len(r.SecretEnc) > 0 {
		secret, err := s.box.OpenString(r.SecretEnc, r.ID)
		if err != nil {
			return nil, fmt.Errorf("open secret of %s: %w", r.ID, err)
		}
		v.Signing.Secret = secret
	}
	if r.CircuitOpenUntil != nil && r.CircuitOpenUntil.After(s.Now()) {
		t := r.CircuitOpenUntil.UTC()
		v.CircuitOpenUntil = &t
	}
	if r.PrevSecretUntil != nil && r.PrevSecretUntil.After(s.Now()) {
		t := r.PrevSecretUntil.UTC()
		v.Signing.PreviousSecretExpiresAt = &t
	}
	p := policyOf(r)
	v.Retry = RetryView{MaxRetries: p.maxRetries, BackoffMultiplier: p.multiplier, Schedule: []string{}}
	for i := 1; i <= min(p.maxRetries, MaxScheduleLen); i++ {
		v.Retry.Schedule = append(v.Retry.Schedule, shortDuration(p.delay(i)))
	}
	return v, nil
}

// shortDuration prints 1h0m0s as "1h" and 1m30s as "1m30s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
