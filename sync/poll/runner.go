// Package poll runs one poll of one connection: it lists the app's changes
// from the stored cursors, reconciles every page against the snapshots and
// hands the resulting change events to forwarding, page by page, each page in
// one transaction together with its cursor. It owns the run bookkeeping
// (sync_runs rows, the connection's cursors, first-sync flag, full-scan
// generation and last-sync time) and never decides when a connection is
// polled — that is package schedule — nor how events are delivered.
//
// A run is fenced by the connection's lease token: every page transaction
// first re-reads the connection row (locked on PostgreSQL) and stops the run
// when the connection vanished or another run took the lease.
package poll

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/sync/reconcile"
)

// Apps finds a registered connector by name (connectors.Registry).
type Apps interface {
	Get(name string) (connectors.Connector, bool)
}

// Opener opens a connection's credentials (sync/connections.Service).
type Opener interface {
	// Open decrypts the credentials and returns an authenticated Conn.
	Open(ctx context.Context, c *models.Connection) (*connectors.Conn, error)
	// MarkNeedsReauth sets the connection needs_reauth and notifies, once.
	MarkNeedsReauth(ctx context.Context, connectionID, reason string) error
}

// Publisher stores events and queues their deliveries (forwarding).
type Publisher interface {
	// Publish stores the events and queues one delivery per matching subscription, inside tx.
	Publish(ctx context.Context, tx *gorm.DB, accountID string, events ...*models.Envelope) error
}

// Run statuses, as stored in models.SyncRun.Status (RunAborted is never
// stored as such: an aborted run's row is marked failed).
const (
	RunRunning   = "running"
	RunCompleted = "completed"
	RunFailed    = "failed"
	RunDeferred  = "deferred"
	// RunAborted: the connection was deleted or another run holds its lease;
	// there is nothing to do and nothing to report.
	RunAborted = "aborted"
)

// Defaults of Runner.
const (
	DefaultPageSize = 100
	// DefaultBackoff is the retry delay after a provider 5xx, or a 429
	// without Retry-After.
	DefaultBackoff = 2 * time.Minute
	// DefaultDeletionLookback re-reads the end of the last deletion window.
	DefaultDeletionLookback = 5 * time.Minute
	// DefaultBaselineSkew is how much earlier than the connection's creation
	// the silent first sync stops being silent, allowing for a provider
	// clock that runs behind Tributary's.
	DefaultBaselineSkew = time.Minute
)

// Result is the outcome of one run.
type Result struct {
	RunID  string
	Status string // RunCompleted, RunFailed, RunDeferred or RunAborted
	// Initial is true for a connection's first sync (InitialSyncDone false).
	Initial bool
	Counts  Counts
	Objects []string
	// RetryAfter is when a deferred run should resume.
	RetryAfter time.Duration
	// Error is the failure or deferral reason.
	Error string
	// NeedsReauth is set when the provider rejected the credentials.
	NeedsReauth bool
}

// Counts are a run's record counts. Created/Updated/Deleted count the
// changes reconcile found, including those not emitted by a silent first sync.
type Counts struct {
	Created int `json:"created"`
	Updated int `json:"updated"`
	Deleted int `json:"deleted"`
	Scanned int `json:"scanned"`
}

func (c *Counts) add(o Counts) {
	c.Created += o.Created
	c.Updated += o.Updated
	c.Deleted += o.Deleted
	c.Scanned += o.Scanned
}

// Runner polls connections. The zero values of the optional fields get
// defaults; DB, Apps, Opener and Publisher are required.
type Runner struct {
	DB        *gorm.DB
	Apps      Apps
	Opener    Opener
	Publisher Publisher
	// Reconciler defaults to one stamping with Now.
	Reconciler *reconcile.Reconciler
	// Now is the clock (default time.Now).
	Now func() time.Time
	// PageSize is the connector page-size hint (default DefaultPageSize).
	PageSize int
	// Backoff is the retry delay for provider errors without a Retry-After
	// (default DefaultBackoff).
	Backoff time.Duration
	// DeletionLookback overlaps deletion windows (default DefaultDeletionLookback).
	DeletionLookback time.Duration
	// BaselineSkew allows for provider clock skew in the silent first sync
	// (default DefaultBaselineSkew): a record whose provider modification
	// time is at or after the connection's creation minus BaselineSkew is
	// emitted; only older ones (and ones without a provider time) are
	// recorded silently.
	BaselineSkew time.Duration
	// FullScanEvery bounds how often an object without a usable deletion
	// listing is fully scanned to find deletions (0 = every run).
	FullScanEvery time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func (r *Runner) reconciler() *reconcile.Reconciler {
	if r.Reconciler != nil {
		return r.Reconciler
	}
	return &reconcile.Reconciler{Now: r.Now}
}

func (r *Runner) logger() *slog.Logger { return cmp.Or(r.Logger, slog.Default()) }

// errLost stops a run whose connection vanished or whose lease was taken.
var errLost = errors.New("connection deleted or lease lost")

// run is the state of one Run.
type run struct {
	conn    *models.Connection
	info    connectors.Info
	row     *models.SyncRun
	counts  Counts
	objects []string
}

// Run polls conn once: for every object the app lists, deletions since the
// last pass (or, when the provider's deletion window expired, a full scan
// under a new generation), then changes since the stored cursor. conn must carry the LeaseToken the caller claimed it with
// ("" when not leased). The returned error is non-nil only for a failed run;
// Result says what happened in every case.
func (r *Runner) Run(ctx context.Context, conn *models.Connection) (Result, error) {
	st := &run{conn: conn}
	res := Result{Initial: !conn.InitialSyncDone}
	st.row = &models.SyncRun{ID: models.NewID(models.PrefixSyncRun), AccountID: conn.AccountID, ConnectionID: conn.ID,
		StartedAt: r.now(), Status: RunRunning, Initial: res.Initial}
	res.RunID = st.row.ID
	if err := r.DB.WithContext(ctx).Create(st.row).Error; err != nil {
		return r.settle(ctx, st, res, fmt.Errorf("poll %s: record run: %w", conn.ID, err))
	}
	err := r.poll(ctx, st)
	res.Counts, res.Objects = st.counts, st.objects
	if err == nil {
		err = r.complete(ctx, st)
		if err == nil {
			res.Status = RunCompleted
			return res, nil
		}
	}
	return r.settle(ctx, st, res, err)
}

// poll lists every object of the app.
func (r *Runner) poll(ctx context.Context, st *run) error {
	app, ok := r.Apps.Get(st.conn.App)
	if !ok {
		return fmt.Errorf("poll %s: app %q is not registered", st.conn.ID, st.conn.App)
	}
	st.info = app.Info()
	lister, ok := app.(connectors.ChangeLister)
	if !ok {
		return nil // webhook-only app: nothing to poll
	}
	cc, err := r.Opener.Open(ctx, st.conn)
	if err != nil {
		return fmt.Errorf("poll %s: open: %w", st.conn.ID, err)
	}
	cursors, err := decodeCursors(st.conn.Cursors)
	if err != nil {
		return fmt.Errorf("poll %s: %w", st.conn.ID, err)
	}
	deleter, _ := app.(connectors.DeletionLister)
	// A temporary provider error (5xx, timeout) on one object does not stop
	// the others: the run goes on and is deferred at the end, so an object
	// late in the list is not starved by a flaky one early in it. A rate
	// limit, an auth failure or a lost lease stops the run at once.
	var deferred error
	// A round is every object once. A run that stops part-way (a rate
	// limit, a provider error, a deadline) keeps the objects it completed
	// in "#round"; the next runs poll only the rest, starting after the
	// object the last one stopped in, until the round completes. So a
	// deferred run resumes where it stopped and no object waits behind
	// others that keep spending the provider's budget.
	done := roundDone(cursors[roundKey])
	st.objects = append(st.objects, done...)
	objects := inTurn(st.info.Objects, cursors[turnKey])
	var stopped error
	next := ""
	for i, object := range objects {
		if slices.Contains(done, object) {
			continue
		}
		st.objects = append(st.objects, object)
		err := r.pollObject(ctx, st, lister, deleter, cc, cursors, object)
		if err == nil {
			done = append(done, object)
			continue
		}
		err = fmt.Errorf("poll %s %s: %w", st.conn.ID, object, err)
		if next == "" {
			next = objects[(i+1)%len(objects)]
		}
		var pe *connectors.ProviderError
		if errors.As(err, &pe) && pe.Temporary && ctx.Err() == nil {
			r.logger().Warn("poll: object deferred", "connection", st.conn.ID, "object", object, "err", err)
			if deferred == nil {
				deferred = err
			}
			continue
		}
		stopped = err
		break
	}
	if stopped == nil {
		stopped = deferred
	}
	if stopped != nil && !errors.Is(stopped, errLost) {
		set := map[string]string{roundKey: strings.Join(done, ",")}
		if len(done) == 0 {
			set[roundKey] = cursorDelete
		}
		if len(objects) > 1 && next != "" {
			set[turnKey] = next
		}
		if err := r.saveCursors(context.WithoutCancel(ctx), st, set); err != nil {
			r.logger().Warn("poll: store round", "connection", st.conn.ID, "err", err)
		}
	}
	return stopped
}

// roundKey holds the objects the current, unfinished round completed
// (comma-separated); complete removes it.
const roundKey = "#round"

func roundDone(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// Cursor-map keys besides the object's own cursor.
func deletedKey(object string) string { return object + "#deleted" }

// scannedKey holds when the object's last completed full scan started.
func scannedKey(object string) string { return object + "#scanned" }

// scanKey holds the last stored page cursor of the object's full scan in
// progress, and scanGenKey its generation and start ("<gen>|<RFC 3339>"):
// an interrupted scan (a rate limit, a deadline, a crash) resumes there
// under the same generation instead of starting over. Both go when the scan
// completes.
func scanKey(object string) string    { return object + "#scan" }
func scanGenKey(object string) string { return object + "#scangen" }

// turnKey names the object the next run starts with: after a run stopped
// by a rate limit, the objects after the one it stopped in go first, so no
// object is starved by an earlier one that keeps exhausting the budget.
const turnKey = "#turn"

// scanResume reads the full scan in progress of object, if any.
func scanResume(cursors map[string]string, object string) (cursor string, gen int64, start time.Time, ok bool) {
	v, found := cursors[scanGenKey(object)]
	if !found {
		return "", 0, time.Time{}, false
	}
	g, t, cut := strings.Cut(v, "|")
	if !cut {
		return "", 0, time.Time{}, false
	}
	gen, err := strconv.ParseInt(g, 10, 64)
	if err != nil || gen <= 0 {
		return "", 0, time.Time{}, false
	}
	if start, err = time.Parse(time.RFC3339Nano, t); err != nil {
		return "", 0, time.Time{}, false
	}
	return cursors[scanKey(object)], gen, start, true
}

// inTurn returns objects starting with first (unchanged when first is not
// one of them).
func inTurn(objects []string, first string) []string {
	i := slices.Index(objects, first)
	if i <= 0 {
		return objects
	}
	return append(slices.Clone(objects[i:]), objects[:i]...)
}

// scanDue reports whether a full scan to find deletions may run now: always
// when FullScanEvery is 0 or no scan completed yet, else once per period.
func (r *Runner) scanDue(cursors map[string]string, object string, now time.Time) bool {
	if r.FullScanEvery <= 0 {
		return true
	}
	last, err := time.Parse(time.RFC3339Nano, cursors[scannedKey(object)])
	return err != nil || now.Sub(last) >= r.FullScanEvery
}

// baseline decides which changes of an object's first listing are emitted.
// A first listing (unless the connection asked for the backfill) records
// silently what existed before the connection: records whose provider
// modification time is before cut. Anything changed since — at or after the
// connection's creation, less the skew allowance — is emitted like any later
// change, so a record written right after connecting is never lost to the
// baseline. A record without a provider time cannot be placed and is silent.
type baseline struct {
	on  bool
	cut time.Time
}

// emits reports whether ch is published.
func (b baseline) emits(ch reconcile.Change) bool {
	return !b.on || (!ch.RemoteUpdatedAt.IsZero() && !ch.RemoteUpdatedAt.Before(b.cut))
}

// baselineFor is the baseline of an object's listing: on for a first
// listing (seen false) of a connection without EmitBackfill.
func (r *Runner) baselineFor(conn *models.Connection, seen bool) baseline {
	if seen || conn.EmitBackfill {
		return baseline{}
	}
	if conn.CreatedAt.IsZero() {
		// No creation time: nothing can be placed after it.
		return baseline{on: true, cut: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}
	}
	skew := r.BaselineSkew
	if skew == 0 {
		skew = DefaultBaselineSkew
	}
	return baseline{on: true, cut: conn.CreatedAt.UTC().Add(-max(skew, 0))}
}

// pollObject runs one object: deletions since the last pass (or a full scan
// when the deletion window expired), then changes since the cursor. The
// "<object>#deleted" key holds the time the last completed pass started; it
// is absent until the object's first listing completed, which is what makes
// that listing a baseline.
func (r *Runner) pollObject(ctx context.Context, st *run, lister connectors.ChangeLister, deleter connectors.DeletionLister,
	cc *connectors.Conn, cursors map[string]string, object string) error {
	passStart := r.now()
	last, seen := cursors[deletedKey(object)]
	silent := r.baselineFor(st.conn, seen)
	fullScan, deletionsSeen := false, true
	// deletedUntil is where the next deletion window starts.
	deletedUntil := passStart
	var gen int64
	resumeCursor, resumeGen, resumeStart, resuming := scanResume(cursors, object)
	if resuming && seen {
		// A full scan was interrupted: it goes on from its last stored page.
		fullScan, gen, passStart, deletedUntil = true, resumeGen, resumeStart, resumeStart
	} else if seen && deleter != nil {
		since, err := time.Parse(time.RFC3339Nano, last)
		if err != nil {
			return fmt.Errorf("bad deletion cursor %q: %w", last, err)
		}
		since = since.Add(-cmp.Or(r.DeletionLookback, DefaultDeletionLookback))
		var dels []connectors.Deletion
		if cl, ok := deleter.(connectors.CoveredDeletionLister); ok {
			// The provider vouches for deletions up to covered only: the
			// next window starts there (Salesforce latestDateCovered).
			var covered time.Time
			dels, covered, err = cl.ListDeletedCovered(ctx, cc, object, since, passStart, cursors[object])
			switch {
			case err != nil || covered.IsZero():
			case !covered.After(since):
				// Nothing covered (HubSpot skipped its archive): the
				// window keeps its stored start, without the lookback.
				deletionsSeen = false
			case covered.Before(deletedUntil):
				deletedUntil = covered
			}
		} else {
			dels, err = deleter.ListDeleted(ctx, cc, object, since, passStart)
		}
		switch {
		case errors.Is(err, connectors.ErrWindowExpired), errors.Is(err, connectors.ErrUnsupportedObject):
			// No deletion listing covers the window: only a completed full
			// scan can tell what was deleted — at most once per FullScanEvery
			// (until then the deletion window stays where it was).
			fullScan = r.scanDue(cursors, object, passStart)
			deletionsSeen = fullScan
		case err != nil:
			return fmt.Errorf("list deleted: %w", err)
		default:
			if err := r.applyDeletions(ctx, st, object, dels, silent); err != nil {
				return err
			}
		}
	}
	if fullScan && gen == 0 {
		var err error
		if gen, err = r.nextGeneration(ctx, st); err != nil {
			return err
		}
		resumeCursor = ""
	}
	pageSize := cmp.Or(r.PageSize, DefaultPageSize)
	req := connectors.ListRequest{Object: object, Cursor: cursors[object], FullScan: fullScan, PageSize: pageSize}
	scanState := ""
	if fullScan {
		req.Cursor = resumeCursor // "" starts the scan
		scanState = fmt.Sprintf("%d|%s", gen, passStart.Format(time.RFC3339Nano))
	}
	// Pipeline: the lister fetches and normalizes page n+1 while page n is
	// reconciled and committed. Pages are still applied one by one, in
	// order, each with its cursor, so a crash at any point resumes exactly
	// as before; an apply error stops the listing at its next page. A page
	// already handed over is still applied when ctx ends (one page of work),
	// so a stop after page n keeps page n.
	pages := make(chan connectors.Page, 1)
	applied := make(chan error, 1)
	var failed atomic.Pointer[error]
	go func() {
		var err error
		for p := range pages {
			if err != nil {
				continue // drain after a failure
			}
			if err = validatePage(object, p); err == nil {
				set := map[string]string{object: p.Cursor}
				if fullScan {
					set[scanKey(object)], set[scanGenKey(object)] = p.Cursor, scanState
				}
				err = r.applyPage(context.WithoutCancel(ctx), st, object, p.Records, gen, silent, set)
			}
			if err != nil {
				failed.Store(&err)
				continue
			}
			if p.Cursor != "" {
				cursors[object] = p.Cursor
			}
		}
		applied <- err
	}()
	listErr := lister.ListChanges(ctx, cc, req, func(p connectors.Page) error {
		if e := failed.Load(); e != nil {
			return *e
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case pages <- p:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(pages)
	applyErr := <-applied
	if applyErr != nil {
		return fmt.Errorf("list changes: %w", applyErr)
	}
	if listErr != nil {
		return fmt.Errorf("list changes: %w", listErr)
	}
	// The pass completed: a full scan may now delete what it did not see, and
	// the deletion window starts at this pass.
	return r.endPass(ctx, st, object, gen, silent, passStart, deletedUntil, cursors, deletionsSeen)
}

// validatePage refuses a page reconcile could not trust.
func validatePage(object string, p connectors.Page) error {
	for i, rec := range p.Records {
		if rec.Object != object || rec.RemoteID == "" {
			return &connectors.ProviderError{Code: "malformed_page",
				Message: fmt.Sprintf("record %d: object %q remote id %q (listing %s)", i, rec.Object, rec.RemoteID, object)}
		}
		if rec.Data == nil && !rec.Deleted {
			return &connectors.ProviderError{Code: "malformed_page", Message: fmt.Sprintf("record %d (%s): no data", i, rec.RemoteID)}
		}
	}
	return nil
}

// applyDeletions reconciles a deletion listing, one page-size chunk per
// transaction (re-reading a chunk after a crash is idempotent).
func (r *Runner) applyDeletions(ctx context.Context, st *run, object string, dels []connectors.Deletion, silent baseline) error {
	size := cmp.Or(r.PageSize, DefaultPageSize)
	for start := 0; start < len(dels); start += size {
		chunk := dels[start:min(start+size, len(dels))]
		recs := make([]models.Record, len(chunk))
		for i, d := range chunk {
			recs[i] = models.Record{Object: object, RemoteID: d.RemoteID, RemoteUpdatedAt: d.DeletedAt, Deleted: true}
		}
		if err := r.applyPage(ctx, st, object, recs, 0, silent, nil); err != nil {
			return err
		}
	}
	return nil
}

func decodeCursors(s string) (map[string]string, error) {
	m := map[string]string{}
	if s == "" {
		return m, nil
	}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("cursors are not a JSON object of strings: %w", err)
	}
	return m, nil
}
