// Package reconcile compares normalized remote records with their stored
// snapshots and decides which of them are changes: created, updated (with the
// changed fields and their previous values) or deleted. Both capture paths —
// inbound webhooks and polls — feed the same functions, so a change seen twice
// is emitted once.
//
// The database decides: every write is a conditional statement whose affected
// row count says whether a change happened. A page first reads the stored
// versions of its records without locking (on PostgreSQL the same statement
// stamps them with the scan generation). A record whose content hash and
// deleted flag match — or whose version is older — is a no-op decided against
// that consistent read, and emits nothing whatever a concurrent writer does
// afterwards. An absent snapshot is inserted with ON CONFLICT DO NOTHING; the
// rest, and inserts that lost a race, are locked (FOR UPDATE on PostgreSQL)
// and reconciled with a conditional UPDATE. Two reconciles of the same record
// can therefore never both emit. SQLite serializes writers.
//
// On PostgreSQL the page-sized statements take arrays (unnest) and find rows
// one primary-key probe at a time (LATERAL ... LIMIT 1), a plan that stays
// right when the table has no statistics; see store.go.
//
// Semantics worth knowing:
//   - A version whose RemoteUpdatedAt is older than the stored one is ignored.
//     A zero RemoteUpdatedAt (provider gives none) is never considered older.
//   - A delete of a record never seen stores a tombstone and emits nothing.
//   - A delete with nil Data keeps the last payload, which the change carries.
//   - A record seen again after being deleted (undelete) emits "created": for
//     consumers it was gone and now exists again.
//   - Every record applied with a generation > 0 is stamped with it, even when
//     nothing changed, so MarkUnseenDeleted can find the ones a completed full
//     scan did not see.
package reconcile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
)

// Change kinds.
const (
	Created = "created"
	Updated = "updated"
	Deleted = "deleted"
)

// Change is the outcome of reconciling one record. Kind is empty when nothing
// changed.
type Change struct {
	Kind          string
	Object        string
	RemoteID      string
	ChangedFields []string
	Previous      map[string]json.RawMessage
	Payload       json.RawMessage
	// RemoteUpdatedAt is the provider's time of the version that caused the
	// change (its modification or deletion time); zero when the provider gave
	// none, e.g. a deletion found by a full scan.
	RemoteUpdatedAt time.Time
}

// Hash marshals a unified struct to JSON, drops models.VolatileFields at the
// top level and returns the sha256 (hex) of the canonical JSON (sorted keys,
// no insignificant whitespace) together with the remaining top-level fields.
func Hash(data any) (hash string, fields map[string]json.RawMessage, err error) {
	raw, err := json.Marshal(data)
	if err != nil {
		return "", nil, fmt.Errorf("reconcile: marshal: %w", err)
	}
	return hashJSON(raw)
}

// Diff returns the sorted top-level keys whose values differ between two
// field sets (added, removed or changed), and the previous values of those
// keys (absent keys are omitted from previous, meaning "was not set").
func Diff(prevFields, newFields map[string]json.RawMessage) (changed []string, previous map[string]json.RawMessage) {
	previous = map[string]json.RawMessage{}
	for k, pv := range prevFields {
		nv, ok := newFields[k]
		if !ok || !bytes.Equal(pv, nv) {
			changed = append(changed, k)
			previous[k] = pv
		}
	}
	for k := range newFields {
		if _, ok := prevFields[k]; !ok {
			changed = append(changed, k)
		}
	}
	sort.Strings(changed)
	return changed, previous
}

// Reconciler applies normalized records to the snapshots table.
type Reconciler struct {
	// Now stamps UpdatedAt; nil means time.Now.
	Now func() time.Time
}

func (r *Reconciler) now() time.Time {
	if r != nil && r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

type key struct{ object, remoteID string }

type prepared struct {
	rec     models.Record
	hash    string
	payload []byte
	rua     time.Time
}

func prepare(rec models.Record) (prepared, error) {
	p := prepared{rec: rec, rua: normTime(rec.RemoteUpdatedAt)}
	if rec.Object == "" || rec.RemoteID == "" {
		return p, fmt.Errorf("reconcile: record without object or remote id")
	}
	if rec.Data == nil {
		if !rec.Deleted {
			return p, fmt.Errorf("reconcile: %s %s: record without data", rec.Object, rec.RemoteID)
		}
		return p, nil
	}
	raw, err := json.Marshal(rec.Data)
	if err != nil {
		return p, fmt.Errorf("reconcile: marshal %s %s: %w", rec.Object, rec.RemoteID, err)
	}
	if p.hash, err = fastHash(raw); err != nil {
		return p, err
	}
	p.payload = raw
	return p, nil
}

// normTime is the precision both databases keep: UTC microseconds.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// Apply reconciles one record inside tx and returns the change it caused
// (Kind "" when none). generation > 0 stamps the snapshot as seen by that
// full scan.
func (r *Reconciler) Apply(tx *gorm.DB, connectionID string, rec models.Record, generation int64) (Change, error) {
	cs, err := r.apply(tx, connectionID, []models.Record{rec}, generation, true)
	if err != nil {
		return Change{}, err
	}
	return cs[0], nil
}

// ApplyPage reconciles a page of records inside tx and returns only real
// changes, in page order. A page costs a handful of statements whatever its
// size. On PostgreSQL: one statement reads the stored versions and stamps
// them with generation, one inserts the absent records, and — only when some
// content differs — one locks the differing rows and one (per 100) updates
// them conditionally. SQLite runs the same steps with IN lists and one
// UPDATE per differing row. Pages of 500–1000 records are cheapest per
// record.
func (r *Reconciler) ApplyPage(tx *gorm.DB, connectionID string, recs []models.Record, generation int64) ([]Change, error) {
	return r.apply(tx, connectionID, recs, generation, false)
}

// apply runs in four steps. (1) Read the stored version of every distinct
// key without locking (on PostgreSQL, stamping found rows with generation in
// the same statement): a record whose hash, deleted flag and version show
// that the conditional update would not change the row is a no-op, decided
// against a consistent read (serializing it before any concurrent writer).
// (2) Absent records are inserted with ON CONFLICT DO NOTHING; the insert
// decides "created". (3) The rest, and inserts that lost a race, are read
// again locked (FOR UPDATE on PostgreSQL) and reconciled with the
// conditional UPDATE, which decides "updated"/"deleted". Later occurrences of
// a key already in the page follow one by one, in page order. (4) Rows not
// yet stamped are stamped with generation in one statement per object.
func (r *Reconciler) apply(tx *gorm.DB, connectionID string, recs []models.Record, generation int64, all bool) ([]Change, error) {
	now := r.now()
	st := newStore(tx, connectionID)
	preps := make([]prepared, len(recs))
	first := make(map[key]int, len(recs))
	var keys []key
	var repeats []int // later occurrences of a key, in page order
	for i, rec := range recs {
		p, err := prepare(rec)
		if err != nil {
			return nil, err
		}
		preps[i] = p
		k := key{rec.Object, rec.RemoteID}
		if _, dup := first[k]; dup {
			repeats = append(repeats, i)
			continue
		}
		first[k] = i
		keys = append(keys, k)
	}
	meta, err := st.readMeta(keys, generation)
	if err != nil {
		return nil, err
	}

	out := make([]Change, len(recs))
	stamps := map[string][]string{} // object -> remote ids to stamp
	var absent, candidates []int
	for _, k := range keys {
		i := first[k]
		p := preps[i]
		m, ok := meta[k]
		if !ok {
			absent = append(absent, i)
			continue
		}
		if m.wouldChange(p) {
			candidates = append(candidates, i)
			continue
		}
		if generation > m.generation && !m.stamped {
			stamps[k.object] = append(stamps[k.object], k.remoteID)
		}
	}

	inserted, err := st.insert(preps, absent, generation, now)
	if err != nil {
		return nil, err
	}
	for _, i := range absent {
		p := preps[i]
		if !inserted[key{p.rec.Object, p.rec.RemoteID}] {
			candidates = append(candidates, i) // a racing transaction inserted it first
			continue
		}
		if !p.rec.Deleted {
			out[i] = Change{Kind: Created, Object: p.rec.Object, RemoteID: p.rec.RemoteID, Payload: p.payload, RemoteUpdatedAt: p.rua}
		}
	}

	if len(candidates) > 0 {
		ck := make([]key, len(candidates))
		for n, i := range candidates {
			ck[n] = key{preps[i].rec.Object, preps[i].rec.RemoteID}
		}
		locked, err := st.readLocked(ck)
		if err != nil {
			return nil, err
		}
		snaps := make([]*models.Snapshot, len(candidates))
		for n := range candidates {
			if snaps[n] = locked[ck[n]]; snaps[n] == nil {
				return nil, fmt.Errorf("reconcile: %s %s: snapshot vanished", ck[n].object, ck[n].remoteID)
			}
		}
		if st.pg {
			// One statement updates every locked candidate.
			ups := make([]rowUpdate, len(candidates))
			ps := make([]prepared, len(candidates))
			for n, i := range candidates {
				ps[n], ups[n] = preps[i], planUpdate(snaps[n], preps[i], generation)
			}
			// Chunks keep the statement's nested loop (ctid scan × unnest,
			// whatever the statistics) small when a whole page changed.
			changed := map[key]bool{}
			for start := 0; start < len(candidates); start += updateChunk {
				end := min(start+updateChunk, len(candidates))
				ch, err := st.updateLocked(snaps[start:end], ps[start:end], ups[start:end], now)
				if err != nil {
					return nil, err
				}
				maps.Copy(changed, ch)
			}
			for n, i := range candidates {
				c, stamp, err := outcome(snaps[n], ps[n], ups[n], changed[ck[n]], generation)
				if err != nil {
					return nil, err
				}
				out[i] = c
				if stamp {
					stamps[ck[n].object] = append(stamps[ck[n].object], ck[n].remoteID)
				}
			}
		} else {
			for n, i := range candidates {
				c, stamp, err := r.update(tx, snaps[n], preps[i], generation, now)
				if err != nil {
					return nil, err
				}
				out[i] = c
				if stamp {
					stamps[ck[n].object] = append(stamps[ck[n].object], ck[n].remoteID)
				}
			}
		}
	}

	for _, i := range repeats {
		c, stamp, err := r.applyOne(tx, st, preps[i], generation, now)
		if err != nil {
			return nil, err
		}
		out[i] = c
		if stamp {
			stamps[preps[i].rec.Object] = append(stamps[preps[i].rec.Object], preps[i].rec.RemoteID)
		}
	}

	if generation > 0 {
		for _, object := range slices.Sorted(maps.Keys(stamps)) {
			ids := stamps[object]
			slices.Sort(ids)
			if err := st.stamp(object, slices.Compact(ids), generation); err != nil {
				return nil, err
			}
		}
	}
	for i := range out {
		if out[i].Kind == Deleted {
			out[i].Payload = markDeleted(out[i].Payload)
		}
	}
	if all {
		return out, nil
	}
	changes := make([]Change, 0, len(out))
	for _, c := range out {
		if c.Kind != "" {
			changes = append(changes, c)
		}
	}
	return changes, nil
}

// applyOne reconciles one record on its own: read locked, insert when absent,
// otherwise (or when a racing insert won) the conditional update.
func (r *Reconciler) applyOne(tx *gorm.DB, st *store, p prepared, generation int64, now time.Time) (Change, bool, error) {
	k := key{p.rec.Object, p.rec.RemoteID}
	for attempt := 0; attempt < 2; attempt++ {
		m, err := st.readLocked([]key{k})
		if err != nil {
			return Change{}, false, err
		}
		if s := m[k]; s != nil {
			return r.update(tx, s, p, generation, now)
		}
		if attempt > 0 {
			break
		}
		ins, err := st.insert([]prepared{p}, []int{0}, generation, now)
		if err != nil {
			return Change{}, false, err
		}
		if ins[k] {
			if p.rec.Deleted {
				return Change{}, false, nil
			}
			return Change{Kind: Created, Object: k.object, RemoteID: k.remoteID, Payload: p.payload, RemoteUpdatedAt: p.rua}, false, nil
		}
	}
	return Change{}, false, fmt.Errorf("reconcile: %s %s: snapshot vanished", k.object, k.remoteID)
}

// MarkUnseenDeleted ends a completed full scan of object: every snapshot of
// the connection's object not stamped with generation (or a later one) and not
// yet deleted is marked deleted, and a deleted change is returned for each.
// Call it only when the scan finished; a partial scan must delete nothing.
// It runs every batch in tx; callers with many records use
// MarkUnseenDeletedBatch, one transaction per batch.
func (r *Reconciler) MarkUnseenDeleted(tx *gorm.DB, connectionID, object string, generation int64) ([]Change, error) {
	var out []Change
	after := ""
	for {
		cs, next, err := r.MarkUnseenDeletedBatch(tx, connectionID, object, generation, after, UnseenBatch)
		if err != nil {
			return nil, err
		}
		out = append(out, cs...)
		if next == "" {
			return out, nil
		}
		after = next
	}
}

// markUnseenPG is MarkUnseenDeletedBatch's statement on PostgreSQL.
const markUnseenPG = `UPDATE snapshots SET deleted = ?, updated_at = ?
WHERE ctid = ANY(ARRAY(SELECT ctid FROM snapshots WHERE connection_id = ? AND object = ? AND remote_id > ? AND scan_generation < ? AND deleted = ?
  ORDER BY remote_id LIMIT ?))
RETURNING remote_id, payload`

// UnseenBatch is how many deletions MarkUnseenDeletedBatch marks at most.
const UnseenBatch = 500

// MarkUnseenDeletedBatch marks deleted at most limit unseen snapshots of
// object whose remote id sorts after after (in remote id order: the primary
// key's order, so each batch reads on from where the last stopped) and
// returns their changes and the cursor of the next batch ("" when this was
// the last). Run each batch in its own transaction with the publication of
// its changes: a pass stopped part-way resumes from the cursor, or, if the
// cursor is lost, from the start (marked rows are no longer unseen).
func (r *Reconciler) MarkUnseenDeletedBatch(tx *gorm.DB, connectionID, object string, generation int64, after string, limit int) ([]Change, string, error) {
	if limit <= 0 {
		limit = UnseenBatch
	}
	var rows []struct {
		RemoteID string
		Payload  []byte
	}
	q := `UPDATE snapshots SET deleted = ?, updated_at = ?
WHERE rowid IN (SELECT rowid FROM snapshots WHERE connection_id = ? AND object = ? AND remote_id > ? AND scan_generation < ? AND deleted = ?
  ORDER BY remote_id LIMIT ?)
RETURNING remote_id, payload`
	if storage.IsPostgres(tx) {
		// Rows found by the primary key in order, updated by ctid (see
		// stampPG); a row updated concurrently is left alone.
		q = markUnseenPG
	}
	err := tx.Raw(q, true, r.now(), connectionID, object, after, generation, false, limit).Scan(&rows).Error
	if err != nil {
		return nil, "", fmt.Errorf("reconcile: mark unseen deleted: %w", err)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].RemoteID < rows[j].RemoteID })
	out := make([]Change, 0, len(rows))
	for _, row := range rows {
		out = append(out, Change{Kind: Deleted, Object: object, RemoteID: row.RemoteID, Payload: markDeleted(row.Payload)})
	}
	next := ""
	if len(rows) == limit {
		next = rows[len(rows)-1].RemoteID
	}
	return out, next, nil
}

// markDeleted sets remoteDeleted in a deleted change's payload: a deletion
// reported by id alone (deleted-records endpoints, delete notices, full
// scans) carries the record's last known state, which still said false.
func markDeleted(payload json.RawMessage) json.RawMessage {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil || fields == nil {
		return payload
	}
	if string(fields["remoteDeleted"]) == "true" {
		return payload
	}
	fields["remoteDeleted"] = json.RawMessage("true")
	out, err := json.Marshal(fields)
	if err != nil {
		return payload
	}
	return out
}
