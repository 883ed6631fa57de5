package inbound

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/internal/dbtext"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/sync/reconcile"
)

// Opener is what processing needs of sync/connections: an authenticated
// Conn for a connection (to batch-read thin notices), and marking a
// connection whose credentials the provider rejects.
type Opener interface {
	Open(ctx context.Context, c *models.Connection) (*connectors.Conn, error)
	MarkNeedsReauth(ctx context.Context, connectionID, reason string) error
}

// Publisher is forwarding's single entry point.
type Publisher interface {
	// Publish stores the events and queues one delivery per matching subscription, inside tx.
	Publish(ctx context.Context, tx *gorm.DB, accountID string, events ...*models.Envelope) error
}

// Defaults of a Processor.
const (
	DefaultBatch       = 50
	DefaultLease       = 2 * time.Minute
	DefaultMaxAttempts = 10
	// backoffBase is the first retry delay; each retry doubles it up to backoffCap.
	backoffBase = 30 * time.Second
	backoffCap  = time.Hour
)

// Processor processes stored inbox items asynchronously. Any number of
// processors (replicas) may run: a claim leases items (NextAttemptAt pushed
// by Lease, a fresh LeaseToken) and the finishing transaction is fenced by
// that token, so an abandoned claim is retried after the lease and a late
// finisher changes nothing.
type Processor struct {
	DB         *gorm.DB
	Apps       Apps
	Opener     Opener
	Publisher  Publisher
	Reconciler *reconcile.Reconciler
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Batch is how many due items one claim takes (default 50).
	Batch int
	// Lease is how long a claim holds its items (default 2 minutes); it must
	// exceed the time to fetch and commit one batch.
	Lease time.Duration
	// MaxAttempts bounds retries of a failing item (default 10); it is then
	// marked processed with its last error (given up).
	MaxAttempts int
	// Logger; nil means slog.Default().
	Logger *slog.Logger

	wakeOnce sync.Once
	wake     chan struct{}
}

func (p *Processor) wakeCh() chan struct{} {
	p.wakeOnce.Do(func() { p.wake = make(chan struct{}, 1) })
	return p.wake
}

// Wake makes Run look for due items now instead of at its next tick (wire it
// as Receiver.Notify so a stored webhook is processed at once in-process;
// other replicas find it on their tick).
func (p *Processor) Wake() {
	select {
	case p.wakeCh() <- struct{}{}:
	default:
	}
}

func (p *Processor) now() time.Time {
	if p.Now != nil {
		return p.Now().UTC()
	}
	return time.Now().UTC()
}

func (p *Processor) log() *slog.Logger { return cmp.Or(p.Logger, slog.Default()) }

func (p *Processor) reconciler() *reconcile.Reconciler {
	if p.Reconciler != nil {
		return p.Reconciler
	}
	return &reconcile.Reconciler{Now: p.Now}
}

// Run processes due items every interval until ctx ends. Each tick drains
// what is due, batch by batch. Tests call ProcessDue directly.
func (p *Processor) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for ctx.Err() == nil {
			n, err := p.ProcessDue(ctx)
			if err != nil && ctx.Err() == nil {
				p.log().ErrorContext(ctx, "inbound processing", "err", err)
			}
			if err != nil || n < cmp.Or(p.Batch, DefaultBatch) {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.wakeCh():
		}
	}
}

// ProcessDue claims the due unprocessed items (oldest received first) and
// processes each. n is the number claimed. An item's failure is recorded on
// the item (retry or give up), not returned; err reports a claim that failed
// or a failure that could not be recorded.
func (p *Processor) ProcessDue(ctx context.Context) (n int, err error) {
	if p.DB == nil || p.Publisher == nil {
		return 0, errors.New("inbound processor: DB and Publisher are required")
	}
	items, err := p.claim(ctx)
	if err != nil {
		return 0, err
	}
	// Items not started while most of the lease is left are left to the
	// next claim (theirs, or another replica's) rather than raced for.
	stopAt := p.now().Add(cmp.Or(p.Lease, DefaultLease) * 3 / 4)
	var errs []error
	for i := range items {
		if ctx.Err() != nil {
			// Unfinished claims become due again when their lease ends.
			return len(items), errors.Join(append(errs, ctx.Err())...)
		}
		if p.now().After(stopAt) {
			p.log().WarnContext(ctx, "inbound batch outlived its lease; rest left for the next claim", "left", len(items)-i)
			break
		}
		if err := p.process(ctx, &items[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return len(items), errors.Join(errs...)
}

// claim leases up to Batch due items: FOR UPDATE SKIP LOCKED on PostgreSQL
// so replicas take disjoint items, then NextAttemptAt = now + Lease and a
// fresh LeaseToken.
func (p *Processor) claim(ctx context.Context) ([]models.InboxItem, error) {
	now := p.now()
	token := models.NewID("lease")
	var items []models.InboxItem
	err := p.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		q := tx.Where("processed_at IS NULL AND next_attempt_at <= ?", now).
			Order("received_at, id").Limit(cmp.Or(p.Batch, DefaultBatch))
		if err := storage.SkipLocked(q).Find(&items).Error; err != nil {
			return err
		}
		if len(items) == 0 {
			return nil
		}
		ids := make([]string, len(items))
		for i := range items {
			ids[i] = items[i].ID
		}
		return tx.Model(&models.InboxItem{}).Where("id IN ?", ids).Updates(map[string]any{
			"next_attempt_at": now.Add(cmp.Or(p.Lease, DefaultLease)),
			"lease_token":     token,
		}).Error
	})
	if err != nil {
		return nil, fmt.Errorf("inbound: claim: %w", err)
	}
	for i := range items {
		items[i].LeaseToken = token
	}
	return items, nil
}

// process handles one claimed item and records its outcome.
func (p *Processor) process(ctx context.Context, item *models.InboxItem) error {
	info, targets, err := p.prepare(ctx, item)
	if err == nil {
		err = p.commit(ctx, item, info, targets)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errLeaseLost):
		p.log().WarnContext(ctx, "inbound item lease lost; another processor owns it", "inbox", item.ID)
		return nil
	case ctx.Err() != nil:
		return nil // shutting down: the lease expires and the item is retried
	}
	return p.fail(ctx, item, err)
}

// errLeaseLost: another processor re-claimed the item after our lease ended.
var errLeaseLost = errors.New("inbound: lease lost")

// commit reconciles every target's records, publishes their changes and marks
// the item processed, in one transaction fenced by the item's lease token.
func (p *Processor) commit(ctx context.Context, item *models.InboxItem, info connectors.Info, targets []*target) error {
	now := p.now()
	return p.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The fence goes first: on PostgreSQL it also locks the item.
		res := tx.Model(&models.InboxItem{}).
			Where("id = ? AND lease_token = ? AND processed_at IS NULL", item.ID, item.LeaseToken).
			Updates(map[string]any{"processed_at": now, "attempts": item.Attempts + 1, "last_error": ""})
		if res.Error != nil {
			return fmt.Errorf("mark processed: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return errLeaseLost
		}
		for _, t := range targets {
			if len(t.recs) == 0 {
				continue
			}
			// FOR SHARE: a full scan bumps the generation under a row lock,
			// so this read either precedes the bump (and the scan, which
			// starts after this commit, sees the record) or sees the new one.
			var conn models.Connection
			q := tx
			if storage.IsPostgres(tx) {
				q = tx.Clauses(clause.Locking{Strength: "SHARE"})
			}
			err := q.Where("id = ?", t.conn.ID).Take(&conn).Error
			if errors.Is(err, gorm.ErrRecordNotFound) {
				continue // deleted meanwhile: nothing to do
			}
			if err != nil {
				return fmt.Errorf("connection %s: %w", t.conn.ID, err)
			}
			changes, err := p.reconciler().ApplyPage(tx, conn.ID, t.recs, conn.Generation)
			if err != nil {
				return fmt.Errorf("connection %s: %w", conn.ID, err)
			}
			if len(changes) == 0 {
				continue
			}
			envs := make([]*models.Envelope, 0, len(changes))
			raw := map[[2]string]json.RawMessage{}
			if conn.IncludeRaw {
				for _, r := range t.recs {
					raw[[2]string{r.Object, r.RemoteID}] = r.Raw
				}
			}
			for _, ch := range changes {
				if r := raw[[2]string{ch.Object, ch.RemoteID}]; len(r) > 0 {
					ch.Payload = models.WithRemoteData(ch.Payload, r)
				}
				envs = append(envs, envelope(&conn, info, ch, item.ReceivedAt))
			}
			if err := p.Publisher.Publish(ctx, tx, conn.AccountID, envs...); err != nil {
				return fmt.Errorf("connection %s: publish: %w", conn.ID, err)
			}
		}
		return nil
	})
}

// envelope is the event of one webhook-captured change: it happened at the
// provider's modification time when the record carries one, and was detected
// when the webhook arrived.
func envelope(conn *models.Connection, info connectors.Info, ch reconcile.Change, received time.Time) *models.Envelope {
	topic := models.TopicFor(ch.Object)
	return &models.Envelope{
		EventTimestamp: ch.RemoteUpdatedAt,
		DetectedAt:     received,
		Topic:          topic,
		UpdateType:     ch.Kind,
		ConnectionID:   conn.ID,
		UserID:         conn.UserID,
		UserName:       conn.UserName,
		Category:       models.CategoryOf(topic),
		Name:           info.DisplayName,
		Source:         models.SourceWebhook,
		ChangedFields:  ch.ChangedFields,
		Previous:       ch.Previous,
		DataPayload:    ch.Payload,
	}
}

// permanentError is a failure retrying cannot fix (unknown app, body that
// does not parse): the item is given up at once.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(err error) error { return &permanentError{err} }

// Backoff is the delay before retry number attempt (1-based): 30s doubling
// per attempt, capped at one hour.
func Backoff(attempt int) time.Duration {
	d := backoffBase
	for i := 1; i < attempt && d < backoffCap; i++ {
		d *= 2
	}
	return min(d, backoffCap)
}

// fail records a failed attempt: retry after the backoff (or the provider's
// Retry-After, when longer), or give up after MaxAttempts or at once for a
// permanent failure. It is fenced by the lease token like commit.
func (p *Processor) fail(ctx context.Context, item *models.InboxItem, cause error) error {
	now := p.now()
	attempts := item.Attempts + 1
	updates := map[string]any{"attempts": attempts, "last_error": dbtext.CleanString(cause.Error(), 1000), "lease_token": ""}
	var perm *permanentError
	if errors.As(cause, &perm) || attempts >= cmp.Or(p.MaxAttempts, DefaultMaxAttempts) {
		updates["processed_at"] = now
		p.log().ErrorContext(ctx, "inbound item given up", "inbox", item.ID, "app", item.App, "attempts", attempts, "err", cause)
	} else {
		delay := Backoff(attempts)
		var rl *connectors.RateLimitedError
		if errors.As(cause, &rl) && rl.RetryAfter > delay {
			delay = rl.RetryAfter
		}
		updates["next_attempt_at"] = now.Add(delay)
		p.log().WarnContext(ctx, "inbound item failed; will retry", "inbox", item.ID, "app", item.App,
			"attempts", attempts, "retryIn", delay, "err", cause)
	}
	err := p.DB.WithContext(ctx).Model(&models.InboxItem{}).
		Where("id = ? AND lease_token = ? AND processed_at IS NULL", item.ID, item.LeaseToken).
		Updates(updates).Error
	if err != nil {
		return fmt.Errorf("inbound %s: record failure: %w", item.ID, err)
	}
	return nil
}

// DefaultRetention is how long processed items are kept by Prune: longer
// than providers retry a delivery (HubSpot about 3 days, Shopify 48 hours),
// so a late retry still finds its dedup key.
const DefaultRetention = 7 * 24 * time.Hour

// Prune deletes items processed more than retention ago (default
// DefaultRetention) and returns how many it deleted. Run it from a
// maintenance job on one replica.
func (p *Processor) Prune(ctx context.Context, retention time.Duration) (int64, error) {
	before := p.now().Add(-cmp.Or(retention, DefaultRetention))
	res := p.DB.WithContext(ctx).Where("processed_at IS NOT NULL AND processed_at < ?", before).Delete(&models.InboxItem{})
	if res.Error != nil {
		return 0, fmt.Errorf("inbound: prune: %w", res.Error)
	}
	return res.RowsAffected, nil
}
