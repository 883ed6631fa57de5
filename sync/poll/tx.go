package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/internal/dbtext"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/sync/reconcile"
)

// lockConn re-reads the run's connection inside tx, locking the row on
// PostgreSQL, and fails with errLost when it vanished or its lease changed.
func lockConn(tx *gorm.DB, st *run) (*models.Connection, error) {
	var rows []models.Connection
	err := storage.ForUpdate(tx.Where("id = ? AND lease_token = ?", st.conn.ID, st.conn.LeaseToken)).Limit(1).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("read connection: %w", err)
	}
	if len(rows) == 0 {
		return nil, errLost
	}
	return &rows[0], nil
}

// cursorDelete as a value in writeCursors' set removes the key.
const cursorDelete = "\x00delete"

// writeCursors merges set into the stored cursors (empty values keep the old
// one, cursorDelete removes it) inside tx.
func writeCursors(tx *gorm.DB, c *models.Connection, set map[string]string) error {
	if len(set) == 0 {
		return nil
	}
	cur, err := decodeCursors(c.Cursors)
	if err != nil {
		return err
	}
	changed := false
	for k, v := range set {
		_, had := cur[k]
		switch {
		case v == cursorDelete:
			if had {
				delete(cur, k)
				changed = true
			}
		case v != "" && cur[k] != v:
			cur[k] = v
			changed = true
		}
	}
	if !changed {
		return nil
	}
	b, err := json.Marshal(cur)
	if err != nil {
		return err
	}
	if err := tx.Exec(`UPDATE connections SET cursors = ? WHERE id = ?`, string(b), c.ID).Error; err != nil {
		return fmt.Errorf("store cursor: %w", err)
	}
	return nil
}

// applyPage reconciles recs, publishes their changes (unless silent) and
// stores the cursors in set, all in one transaction. gen > 0 stamps the
// records as seen by that full scan.
func (r *Runner) applyPage(ctx context.Context, st *run, object string, recs []models.Record, gen int64, silent baseline, set map[string]string) error {
	var counts Counts
	err := r.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		counts = Counts{}
		c, err := lockConn(tx, st)
		if err != nil {
			return err
		}
		changes, err := r.reconciler().ApplyPage(tx, st.conn.ID, recs, gen)
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		if st.conn.IncludeRaw {
			withRaw(changes, recs)
		}
		if err := r.publishChanges(ctx, tx, st, changes, silent, &counts); err != nil {
			return err
		}
		return writeCursors(tx, c, set)
	})
	if err != nil {
		return err
	}
	if set != nil { // a listing page, not a deletion chunk
		counts.Scanned = len(recs)
	}
	st.counts.add(counts)
	return nil
}

// publishChanges counts changes and publishes, inside tx, those the
// baseline emits.
func (r *Runner) publishChanges(ctx context.Context, tx *gorm.DB, st *run, changes []reconcile.Change, silent baseline, counts *Counts) error {
	detected := r.now()
	envs := make([]*models.Envelope, 0, len(changes))
	for _, ch := range changes {
		switch ch.Kind {
		case reconcile.Created:
			counts.Created++
		case reconcile.Updated:
			counts.Updated++
		case reconcile.Deleted:
			counts.Deleted++
		default:
			continue
		}
		topic := models.TopicFor(ch.Object)
		if topic == "" {
			return fmt.Errorf("unknown object %q", ch.Object)
		}
		if !silent.emits(ch) {
			continue
		}
		env := st.envelope(topic, ch.Kind, models.SourcePoll, ch.Payload)
		env.ChangedFields, env.Previous = ch.ChangedFields, ch.Previous
		// The provider's change time when it gives one; detected by this poll.
		env.EventTimestamp, env.DetectedAt = ch.RemoteUpdatedAt, detected
		envs = append(envs, env)
	}
	if len(envs) == 0 {
		return nil
	}
	if err := r.Publisher.Publish(ctx, tx, st.conn.AccountID, envs...); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// withRaw adds each record's raw provider JSON to its change's payload as
// remoteData (connections created with includeRaw).
func withRaw(changes []reconcile.Change, recs []models.Record) {
	raw := make(map[[2]string]json.RawMessage, len(recs))
	for _, r := range recs {
		if len(r.Raw) > 0 {
			raw[[2]string{r.Object, r.RemoteID}] = r.Raw
		}
	}
	for i, ch := range changes {
		if r, ok := raw[[2]string{ch.Object, ch.RemoteID}]; ok {
			changes[i].Payload = models.WithRemoteData(ch.Payload, r)
		}
	}
}

// envelope fills the fields every event of this run shares.
func (st *run) envelope(topic, updateType, source string, payload json.RawMessage) *models.Envelope {
	return &models.Envelope{Topic: topic, UpdateType: updateType, ConnectionID: st.conn.ID, UserID: st.conn.UserID,
		UserName: st.conn.UserName, Category: models.CategoryOf(topic), Name: st.info.DisplayName, Source: source, DataPayload: payload}
}

// nextGeneration starts a full scan: it bumps and returns the connection's
// generation (committed at once, so that webhooks reconciled during the scan
// stamp their records with it too).
func (r *Runner) nextGeneration(ctx context.Context, st *run) (int64, error) {
	var gen int64
	err := r.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		c, err := lockConn(tx, st)
		if err != nil {
			return err
		}
		gen = c.Generation + 1
		return tx.Exec(`UPDATE connections SET generation = ? WHERE id = ?`, gen, c.ID).Error
	})
	if err != nil {
		return 0, fmt.Errorf("start full scan: %w", err)
	}
	return gen, nil
}

// endPass closes a completed pass over object: a full scan marks what it did
// not see deleted, and the deletion window moves to deletedUntil (passStart,
// or earlier where the provider covered less).
func (r *Runner) endPass(ctx context.Context, st *run, object string, gen int64, silent baseline, passStart, deletedUntil time.Time,
	cursors map[string]string, deletionsSeen bool) error {
	val := passStart.Format(time.RFC3339Nano)
	set := map[string]string{}
	if deletionsSeen {
		set[deletedKey(object)] = deletedUntil.Format(time.RFC3339Nano)
	}
	if gen > 0 {
		set[scannedKey(object)] = val
		set[scanKey(object)], set[scanGenKey(object)] = cursorDelete, cursorDelete
	}
	// A full scan's deletions are marked and published in batches, one
	// transaction each (bounded however many records vanished); the last
	// batch also moves the cursors, so a pass stopped part-way is redone.
	after := ""
	for {
		var counts Counts
		var next string
		err := r.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			counts, next = Counts{}, ""
			c, err := lockConn(tx, st)
			if err != nil {
				return err
			}
			if gen > 0 {
				var changes []reconcile.Change
				changes, next, err = r.reconciler().MarkUnseenDeletedBatch(tx, st.conn.ID, object, gen, after, unseenBatch)
				if err != nil {
					return err
				}
				if err := r.publishChanges(ctx, tx, st, changes, silent, &counts); err != nil {
					return err
				}
			}
			if next != "" {
				return nil
			}
			return writeCursors(tx, c, set)
		})
		if err != nil {
			return fmt.Errorf("end pass: %w", err)
		}
		st.counts.add(counts)
		if next == "" {
			break
		}
		after = next
	}
	for k, v := range set {
		if v == cursorDelete {
			delete(cursors, k)
		} else {
			cursors[k] = v
		}
	}
	return nil
}

// unseenBatch bounds the deletions one transaction of endPass marks.
var unseenBatch = reconcile.UnseenBatch

// runPayload is the DataPayload of sync/completed and sync/failed.
type runPayload struct {
	RunID string `json:"runId"`
	Counts
	Initial bool     `json:"initial"`
	Objects []string `json:"objects"`
	Error   string   `json:"error,omitempty"`
}

func (st *run) systemEvent(topic, errMsg string) *models.Envelope {
	objects := st.objects
	if objects == nil {
		objects = []string{}
	}
	b, _ := json.Marshal(runPayload{RunID: st.row.ID, Counts: st.counts, Initial: st.row.Initial, Objects: objects, Error: errMsg})
	return st.envelope(topic, models.UpdateCreated, models.SourceSystem, b)
}

// complete ends a successful run: first sync done, last sync time,
// sync/completed and the run row, in one transaction.
func (r *Runner) complete(ctx context.Context, st *run) error {
	now := r.now()
	err := r.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		c, err := lockConn(tx, st)
		if err != nil {
			return err
		}
		// The round is complete: the next run starts a new one.
		if err := writeCursors(tx, c, map[string]string{roundKey: cursorDelete, turnKey: cursorDelete}); err != nil {
			return err
		}
		if err := tx.Exec(`UPDATE connections SET initial_sync_done = ?, last_sync_at = ? WHERE id = ?`, true, now, st.conn.ID).Error; err != nil {
			return fmt.Errorf("update connection: %w", err)
		}
		if err := r.Publisher.Publish(ctx, tx, st.conn.AccountID, st.systemEvent(models.TopicSyncCompleted, "")); err != nil {
			return fmt.Errorf("publish sync/completed: %w", err)
		}
		return finishRow(tx, st, RunCompleted, "", now)
	})
	if err != nil {
		return fmt.Errorf("poll %s: complete: %w", st.conn.ID, err)
	}
	st.conn.InitialSyncDone, st.conn.LastSyncAt = true, &now
	return nil
}

func finishRow(tx *gorm.DB, st *run, status, errMsg string, now time.Time) error {
	err := tx.Model(&models.SyncRun{}).Where("id = ?", st.row.ID).Updates(map[string]any{
		"status": status, "finished_at": now, "error": dbtext.CleanString(errMsg, 1000),
		"created": st.counts.Created, "updated": st.counts.Updated, "deleted": st.counts.Deleted, "scanned": st.counts.Scanned,
	}).Error
	if err != nil {
		return fmt.Errorf("finish run: %w", err)
	}
	return nil
}

// settle classifies a run's error into deferred, aborted or failed and
// records it. Its writes outlive a cancelled ctx.
func (r *Runner) settle(ctx context.Context, st *run, res Result, runErr error) (Result, error) {
	wctx := context.WithoutCancel(ctx)
	res.Error = runErr.Error()
	var (
		rl *connectors.RateLimitedError
		pe *connectors.ProviderError
	)
	switch {
	case errors.Is(runErr, errLost):
		res.Status = RunAborted
		_ = finishRow(r.DB.WithContext(wctx), st, RunFailed, runErr.Error(), r.now())
		return res, nil
	case ctx.Err() != nil:
		res.Status, res.RetryAfter = RunDeferred, 0
	case errors.As(runErr, &rl):
		res.Status, res.RetryAfter = RunDeferred, rl.RetryAfter
		if res.RetryAfter <= 0 {
			res.RetryAfter = r.backoff()
		}
	case errors.As(runErr, &pe) && pe.Temporary:
		res.Status, res.RetryAfter = RunDeferred, r.backoff()
	}
	if res.Status == RunDeferred {
		if err := finishRow(r.DB.WithContext(wctx), st, RunDeferred, runErr.Error(), r.now()); err != nil {
			r.logger().Error("poll: record deferred run", "connection", st.conn.ID, "err", err)
		}
		return res, nil
	}
	if errors.Is(runErr, connectors.ErrUnauthorized) {
		res.NeedsReauth = true
		if err := r.Opener.MarkNeedsReauth(wctx, st.conn.ID, runErr.Error()); err != nil {
			r.logger().Error("poll: mark needs reauth", "connection", st.conn.ID, "err", err)
		}
	}
	return r.fail(wctx, st, res, runErr)
}

// fail records a failed run and publishes sync/failed.
func (r *Runner) fail(ctx context.Context, st *run, res Result, runErr error) (Result, error) {
	res.Status, res.Error = RunFailed, runErr.Error()
	err := r.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := lockConn(tx, st); err != nil {
			return err
		}
		if err := r.Publisher.Publish(ctx, tx, st.conn.AccountID, st.systemEvent(models.TopicSyncFailed, dbtext.CleanString(runErr.Error(), 1000))); err != nil {
			return fmt.Errorf("publish sync/failed: %w", err)
		}
		return finishRow(tx, st, RunFailed, runErr.Error(), r.now())
	})
	if err != nil {
		// Still record the failure on the run row.
		_ = finishRow(r.DB.WithContext(ctx), st, RunFailed, runErr.Error(), r.now())
		if !errors.Is(err, errLost) {
			r.logger().Error("poll: record failed run", "connection", st.conn.ID, "err", err)
		}
	}
	return res, runErr
}

func (r *Runner) backoff() time.Duration {
	if r.Backoff > 0 {
		return r.Backoff
	}
	return DefaultBackoff
}

// saveCursors stores set (writeCursors) in its own transaction.
func (r *Runner) saveCursors(ctx context.Context, st *run, set map[string]string) error {
	return r.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		c, err := lockConn(tx, st)
		if err != nil {
			return err
		}
		return writeCursors(tx, c, set)
	})
}
