package inbound

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"gorm.io/gorm"

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
	DefaultBatch       = 200
	DefaultWorkers     = 4
	DefaultLease       = 2 * time.Minute
	DefaultMaxAttempts = 10
	// backoffBase is the first retry delay; each retry doubles it up to backoffCap.
	backoffBase = 30 * time.Second
	backoffCap  = time.Hour
)

// Processor processes stored inbox items asynchronously, in batches. Any
// number of processors (workers, replicas) may run: a claim leases items
// (NextAttemptAt pushed by Lease, a fresh LeaseToken) and the finishing
// transaction is fenced by that token, so an abandoned claim is retried after
// the lease and a late finisher changes nothing.
//
// A batch is committed in one transaction: every item's records are
// reconciled (one ApplyPage per connection, items in received order), every
// resulting event and delivery is published and every item is marked
// processed. A batch whose transaction fails is split in halves down to
// single items, so one bad item is retried or given up on its own while the
// others commit. A claim never takes an item whose record (OrderKey) has an
// item leased by another worker, so a record's changes apply in order.
type Processor struct {
	DB         *gorm.DB
	Apps       Apps
	Opener     Opener
	Publisher  Publisher
	Reconciler *reconcile.Reconciler
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Batch is how many due items one claim takes (default 200).
	Batch int
	// Workers is how many batches Run processes at once (default 4).
	Workers int
	// Lease is how long a claim holds its items (default 2 minutes); it must
	// exceed the time to fetch and commit one batch.
	Lease time.Duration
	// MaxAttempts bounds retries of a failing item (default 10); it is then
	// marked processed with its last error (given up).
	MaxAttempts int
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Committed, when set, is called after a batch that published events
	// committed (wire the dispatcher's wake-up).
	Committed func()
	// Metrics, when set, records batch sizes, outcomes and durations.
	Metrics *Metrics

	wakeOnce sync.Once
	wake     chan struct{}
	claimMu  sync.Mutex
}

func (p *Processor) wakeCh() chan struct{} {
	p.wakeOnce.Do(func() { p.wake = make(chan struct{}, 1) })
	return p.wake
}

// Wake makes Run look for due items now instead of at its next tick (wire it
// as Receiver.Notify so a stored webhook is processed at once in-process,
// and to a LISTEN on PostgreSQL so other replicas' items are too).
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

func (p *Processor) batch() int { return cmp.Or(p.Batch, DefaultBatch) }

// Run processes due items with Workers concurrent workers until ctx ends.
// A worker drains what is due batch by batch (waking another worker while
// batches come back full) until a claim finds nothing, then sleeps until
// Wake or the next tick. Tests
// call ProcessDue directly.
func (p *Processor) Run(ctx context.Context, every time.Duration) {
	var wg sync.WaitGroup
	for range max(1, cmp.Or(p.Workers, DefaultWorkers)) {
		wg.Go(func() { p.work(ctx, every) })
	}
	wg.Wait()
}

func (p *Processor) work(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for ctx.Err() == nil {
			n, err := p.ProcessDue(ctx)
			if err != nil && ctx.Err() == nil {
				p.log().ErrorContext(ctx, "inbound processing", "err", err)
			}
			if err != nil || n == 0 {
				break
			}
			if n == p.batch() {
				p.Wake() // more is due: let another worker claim beside this one
			}
			// Claim again even after a short batch: items another claim
			// skipped while this batch held their record are due now.
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.wakeCh():
		}
	}
}

// ProcessDue claims one batch of due unprocessed items (oldest received
// first) and processes it. n is the number claimed. An item's failure is
// recorded on the item (retry or give up), not returned; err reports a claim
// that failed or a failure that could not be recorded.
func (p *Processor) ProcessDue(ctx context.Context) (n int, err error) {
	if p.DB == nil || p.Publisher == nil {
		return 0, errors.New("inbound processor: DB and Publisher are required")
	}
	items, err := p.claim(ctx)
	if err != nil {
		return 0, err
	}
	if len(items) == 0 {
		return 0, nil
	}
	start := time.Now()
	err = p.processBatch(ctx, items)
	p.Metrics.batchDone(len(items), time.Since(start))
	return len(items), err
}

// work is one claimed item ready to commit.
type work struct {
	item    *models.InboxItem
	info    connectors.Info
	targets []*target
}

// processBatch prepares each item (parse, route, fetch thin notices) and
// commits the prepared ones together. An item that fails to prepare is
// recorded on its own.
func (p *Processor) processBatch(ctx context.Context, items []models.InboxItem) error {
	// Items not prepared while most of the lease is left are left to the
	// next claim (theirs, or another replica's) rather than raced for.
	stopAt := p.now().Add(cmp.Or(p.Lease, DefaultLease) * 3 / 4)
	var errs []error
	var ready []*work
	var routes routeCache
	for i := range items {
		if ctx.Err() != nil {
			// Unfinished claims become due again when their lease ends.
			return errors.Join(append(errs, ctx.Err())...)
		}
		if p.now().After(stopAt) {
			p.log().WarnContext(ctx, "inbound batch outlived its lease; rest left for the next claim", "left", len(items)-i)
			break
		}
		item := &items[i]
		info, targets, err := p.prepare(ctx, item, &routes)
		if err != nil {
			if err := p.settle(ctx, item, err); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		ready = append(ready, &work{item: item, info: info, targets: targets})
	}
	if err := p.commitSplit(ctx, ready); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// commitSplit commits ws in one transaction; when that fails it commits each
// half on its own, down to single items, whose failure is recorded.
func (p *Processor) commitSplit(ctx context.Context, ws []*work) error {
	if len(ws) == 0 {
		return nil
	}
	err := p.commit(ctx, ws)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return nil // shutting down: the leases expire and the items are retried
	case len(ws) == 1:
		return p.settle(ctx, ws[0].item, err)
	}
	p.Metrics.split()
	p.log().WarnContext(ctx, "inbound batch failed; committing its halves apart", "items", len(ws), "err", err)
	half := len(ws) / 2
	return errors.Join(p.commitSplit(ctx, ws[:half]), p.commitSplit(ctx, ws[half:]))
}

// settle records the failure of one item (or nothing, for a lost lease or a
// shutdown).
func (p *Processor) settle(ctx context.Context, item *models.InboxItem, err error) error {
	switch {
	case errors.Is(err, errLeaseLost):
		p.log().WarnContext(ctx, "inbound item lease lost; another processor owns it", "inbox", item.ID)
		return nil
	case ctx.Err() != nil:
		return nil // shutting down: the lease expires and the item is retried
	}
	return p.fail(ctx, item, err)
}

// claim leases up to Batch due items whose record has no item leased by
// another claim, oldest received first: FOR UPDATE SKIP LOCKED on
// PostgreSQL, then NextAttemptAt = now + Lease and a fresh LeaseToken.
// Claims are serialized (a mutex in-process, a transaction-scoped advisory
// lock across replicas; SQLite's write transactions are exclusive), so two
// claims never take items of one record at once. A claim is two short
// statements; the lock is held for nothing else.
func (p *Processor) claim(ctx context.Context) ([]models.InboxItem, error) {
	p.claimMu.Lock()
	defer p.claimMu.Unlock()
	now := p.now()
	token := models.NewID("lease")
	var items []models.InboxItem
	err := p.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		q := claimQuery
		if storage.IsPostgres(tx) {
			// One round trip: the claim lock, and a plan that walks
			// idx_inbox_pending in order and stops after Batch items.
			// Without statistics PostgreSQL takes 0.5% of rows to be
			// pending and would read and sort every pending item instead,
			// so a claim would cost as much as the backlog is long.
			if err := tx.Exec(`SELECT pg_advisory_xact_lock(?), set_config('enable_sort', 'off', true),
  set_config('enable_bitmapscan', 'off', true)`, storage.LockKey("inbound.claim")).Error; err != nil {
				return err
			}
			q += " FOR UPDATE SKIP LOCKED"
		}
		if err := tx.Raw(q, now, now, p.batch()).Scan(&items).Error; err != nil {
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

// claimQuery picks due items in received order (index idx_inbox_pending),
// skipping those whose record has an item in flight under another lease
// (index idx_inbox_inflight: only leased items have a token — committing
// or failing an item clears it, so the subquery needs no "processed_at IS
// NULL", which would lead the planner to the index of every pending item). Items of one record within one claim are
// fine: they commit in order in one transaction.
const claimQuery = `SELECT * FROM inbox_items i
WHERE i.processed_at IS NULL AND i.next_attempt_at <= ?
  AND (i.order_key = '' OR NOT EXISTS (
    SELECT 1 FROM inbox_items o
    WHERE o.lease_token <> '' AND o.order_key = i.order_key AND o.next_attempt_at > ?))
ORDER BY i.received_at, i.id LIMIT ?`

// errLeaseLost: another processor re-claimed the item after our lease ended.
var errLeaseLost = errors.New("inbound: lease lost")

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
	if storage.IsTransient(cause) && !errors.As(cause, &perm) {
		// The database failed, not the item: it was not really tried, so it
		// keeps its attempts and can never be given up because of an outage.
		delay := Backoff(max(item.Attempts, 1))
		updates["attempts"] = item.Attempts
		updates["next_attempt_at"] = now.Add(delay)
		p.Metrics.failed("database")
		p.log().WarnContext(ctx, "inbound item not processed: database unavailable; will retry", "inbox", item.ID,
			"app", item.App, "retryIn", delay, "err", cause)
	} else if errors.As(cause, &perm) || attempts >= cmp.Or(p.MaxAttempts, DefaultMaxAttempts) {
		updates["processed_at"] = now
		p.Metrics.failed("given_up")
		p.log().ErrorContext(ctx, "inbound item given up", "inbox", item.ID, "app", item.App, "attempts", attempts, "err", cause)
	} else {
		delay := Backoff(attempts)
		var rl *connectors.RateLimitedError
		if errors.As(cause, &rl) && rl.RetryAfter > delay {
			delay = rl.RetryAfter
		}
		updates["next_attempt_at"] = now.Add(delay)
		p.Metrics.failed("retry")
		p.log().WarnContext(ctx, "inbound item failed; will retry", "inbox", item.ID, "app", item.App,
			"attempts", attempts, "retryIn", delay, "err", cause)
	}
	err := p.DB.WithContext(ctx).Model(&models.InboxItem{}).
		Where("id = ? AND lease_token = ?", item.ID, item.LeaseToken).
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
//
// It deletes pruneChunk items per statement, oldest first (index
// idx_inbox_processed, whatever the planner's statistics), so no statement
// holds many rows locked.
func (p *Processor) Prune(ctx context.Context, retention time.Duration) (int64, error) {
	before := p.now().Add(-cmp.Or(retention, DefaultRetention))
	var total int64
	for {
		res := p.DB.WithContext(ctx).Exec(`DELETE FROM inbox_items WHERE id IN (
  SELECT id FROM inbox_items WHERE processed_at IS NOT NULL AND processed_at < ? ORDER BY processed_at LIMIT ?)`, before, pruneChunk)
		if res.Error != nil {
			return total, fmt.Errorf("inbound: prune: %w", res.Error)
		}
		total += res.RowsAffected
		if res.RowsAffected < pruneChunk {
			return total, nil
		}
	}
}

// pruneChunk is how many processed items one prune statement deletes.
const pruneChunk = 1000
