// Package ratebudget paces the requests connections send to their provider
// within the budgets the app declares (connectors.Budgeted). Each budget of
// each provider account is one token bucket stored in the database
// (rate_buckets), so every connection to that provider account — on any
// replica — draws from the same bucket. A request reserves a token in one
// short transaction (the row locked on PostgreSQL; SQLite serializes
// writers) and waits for its slot before it is sent; a slot further away
// than MaxWait is not taken and the request fails with a
// connectors.RateLimitedError, which defers the poll with its position kept.
//
// It owns the rate_buckets table and never decides what is polled.
package ratebudget

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
)

// DefaultMaxWait bounds how long one request waits for its slot.
const DefaultMaxWait = time.Minute

// Pacer reserves request slots in the shared buckets. DB is required.
type Pacer struct {
	DB *gorm.DB
	// Now is the clock (time.Now).
	Now func() time.Time
	// Sleep waits d or until ctx ends (a real timer by default; tests pass
	// one that advances an injected clock).
	Sleep func(ctx context.Context, d time.Duration) error
	// MaxWait bounds one request's wait (DefaultMaxWait).
	MaxWait time.Duration
}

func (p *Pacer) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC()
	}
	return time.Now().UTC()
}

func (p *Pacer) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	if p.Sleep != nil {
		return p.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errTooFar is a slot further than MaxWait: the reservation is rolled back.
var errTooFar = errors.New("slot too far")

// Reserve takes one token of bucket key (refilled at rate per second, at
// most burst) and returns how long to wait before using it. A wait longer
// than MaxWait takes nothing and returns a *connectors.RateLimitedError.
func (p *Pacer) Reserve(ctx context.Context, key string, rate, burst float64) (time.Duration, error) {
	if rate <= 0 || burst < 1 {
		return 0, fmt.Errorf("ratebudget %s: rate %v and burst %v must be positive", key, rate, burst)
	}
	maxWait := cmp.Or(p.MaxWait, DefaultMaxWait)
	var wait time.Duration
	err := p.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := p.now()
		err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&models.RateBucket{Key: key, Tokens: burst, UpdatedAt: now}).Error
		if err != nil {
			return fmt.Errorf("create bucket: %w", err)
		}
		var b models.RateBucket
		if err := storage.ForUpdate(tx.Where("key = ?", key)).Take(&b).Error; err != nil {
			return fmt.Errorf("read bucket: %w", err)
		}
		tokens := b.Tokens
		if elapsed := now.Sub(b.UpdatedAt).Seconds(); elapsed > 0 {
			tokens = min(burst, tokens+rate*elapsed)
		}
		tokens--
		if tokens < 0 {
			wait = time.Duration(-tokens / rate * float64(time.Second))
			if wait > maxWait {
				return errTooFar
			}
		}
		updated := now
		if b.UpdatedAt.After(now) {
			updated = b.UpdatedAt
		}
		return tx.Model(&models.RateBucket{}).Where("key = ?", key).
			Updates(map[string]any{"tokens": tokens, "updated_at": updated}).Error
	})
	if errors.Is(err, errTooFar) {
		return wait, &connectors.RateLimitedError{RetryAfter: wait, Reason: "paced: budget " + key + " is spent"}
	}
	if err != nil {
		return 0, fmt.Errorf("ratebudget %s: %w", key, err)
	}
	return wait, nil
}

// Wait reserves a slot in every named budget of app for the provider account
// and waits for the latest of them.
func (p *Pacer) Wait(ctx context.Context, app connectors.Budgeted, appName, externalID string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	budgets := map[string]connectors.RateBudget{}
	for _, b := range app.RateBudgets() {
		budgets[b.Name] = b
	}
	var wait time.Duration
	for _, name := range names {
		b, ok := budgets[name]
		if !ok {
			continue
		}
		w, err := p.Reserve(ctx, Key(appName, externalID, name), b.Rate, b.Burst)
		if err != nil {
			return err
		}
		wait = max(wait, w)
	}
	return p.sleep(ctx, wait)
}

// Key is the bucket of one budget of one provider account.
func Key(appName, externalID, budget string) string {
	return appName + "|" + externalID + "|" + budget
}

// Wrap returns a RoundTripper that paces every request within app's budgets
// for the provider account externalID before base sends it.
func (p *Pacer) Wrap(app connectors.Budgeted, appName, externalID string, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{p: p, app: app, name: appName, ext: externalID, base: base}
}

type transport struct {
	p         *Pacer
	app       connectors.Budgeted
	name, ext string
	base      http.RoundTripper
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := t.p.Wait(r.Context(), t.app, t.name, t.ext, t.app.BudgetsOf(r)); err != nil {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, err
	}
	return t.base.RoundTrip(r)
}
