// Package reconcile compares normalized remote records with their stored
// snapshots and decides which of them are changes: created, updated (with the
// changed fields and their previous values) or deleted. Both capture paths —
// inbound webhooks and polls — feed the same functions, so a change seen twice
// is emitted once.
//
// The database decides: every write is a conditional statement whose affected
// row count says whether a change happened. On PostgreSQL the snapshots of a
// page are read with FOR UPDATE; an absent snapshot is inserted with
// ON CONFLICT DO NOTHING and, when a racing transaction inserted it first, the
// row is locked and reconciled as an update. Two reconciles of the same record
// can therefore never both emit. SQLite serializes writers.
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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
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

func hashJSON(raw []byte) (string, map[string]json.RawMessage, error) {
	fields := map[string]json.RawMessage{}
	if len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if err := json.Unmarshal(raw, &fields); err != nil {
			return "", nil, fmt.Errorf("reconcile: record is not a JSON object: %w", err)
		}
	}
	for _, k := range models.VolatileFields {
		delete(fields, k)
	}
	for k, v := range fields {
		c, err := canonical(v)
		if err != nil {
			return "", nil, err
		}
		fields[k] = c
	}
	// encoding/json sorts map keys, so this is canonical.
	b, err := json.Marshal(fields)
	if err != nil {
		return "", nil, fmt.Errorf("reconcile: canonical: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), fields, nil
}

// canonical re-encodes a JSON value with sorted keys and compact spacing,
// keeping numbers exact.
func canonical(v json.RawMessage) (json.RawMessage, error) {
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	var x any
	if err := d.Decode(&x); err != nil {
		return nil, fmt.Errorf("reconcile: canonical: %w", err)
	}
	b, err := json.Marshal(x)
	if err != nil {
		return nil, fmt.Errorf("reconcile: canonical: %w", err)
	}
	return b, nil
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
	fields  map[string]json.RawMessage
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
	p.hash, p.fields, err = hashJSON(raw)
	if err != nil {
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

// ApplyPage reconciles a page of records inside tx: the existing snapshots are
// read in one query, absent ones are inserted in one statement, and unchanged
// ones are stamped in one statement per object. It returns only real changes,
// in page order.
func (r *Reconciler) ApplyPage(tx *gorm.DB, connectionID string, recs []models.Record, generation int64) ([]Change, error) {
	return r.apply(tx, connectionID, recs, generation, false)
}

const chunk = 200

func (r *Reconciler) apply(tx *gorm.DB, connectionID string, recs []models.Record, generation int64, all bool) ([]Change, error) {
	now := r.now()
	preps := make([]prepared, len(recs))
	keys := make([]key, 0, len(recs))
	seenKey := map[key]bool{}
	for i, rec := range recs {
		p, err := prepare(rec)
		if err != nil {
			return nil, err
		}
		preps[i] = p
		k := key{rec.Object, rec.RemoteID}
		if !seenKey[k] {
			seenKey[k] = true
			keys = append(keys, k)
		}
	}
	cur, err := loadSnapshots(tx, connectionID, keys)
	if err != nil {
		return nil, err
	}

	out := make([]Change, len(recs))
	var pendingIdx []int // records waiting for the batched insert
	pending := map[key]bool{}
	stamps := map[string][]string{} // object -> remote ids to stamp

	flush := func() error {
		if len(pendingIdx) == 0 {
			return nil
		}
		inserted, err := insertAbsent(tx, connectionID, preps, pendingIdx, generation, now)
		if err != nil {
			return err
		}
		for _, i := range pendingIdx {
			p := preps[i]
			k := key{p.rec.Object, p.rec.RemoteID}
			if inserted[k] {
				cur[k] = &models.Snapshot{ConnectionID: connectionID, Object: k.object, RemoteID: k.remoteID,
					ContentHash: p.hash, Payload: p.payload, RemoteUpdatedAt: p.rua, Deleted: p.rec.Deleted, ScanGeneration: generation}
				if !p.rec.Deleted {
					out[i] = Change{Kind: Created, Object: k.object, RemoteID: k.remoteID, Payload: p.payload}
				}
				continue
			}
			// A racing transaction inserted it first: lock it and update.
			m, err := loadSnapshots(tx, connectionID, []key{k})
			if err != nil {
				return err
			}
			s := m[k]
			if s == nil {
				return fmt.Errorf("reconcile: %s %s: snapshot vanished", k.object, k.remoteID)
			}
			cur[k] = s
			c, stamp, err := r.update(tx, s, p, generation, now)
			if err != nil {
				return err
			}
			out[i] = c
			if stamp {
				stamps[k.object] = append(stamps[k.object], k.remoteID)
			}
		}
		pendingIdx = pendingIdx[:0]
		clear(pending)
		return nil
	}

	for i, p := range preps {
		k := key{p.rec.Object, p.rec.RemoteID}
		if pending[k] {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		s := cur[k]
		if s == nil {
			pending[k] = true
			pendingIdx = append(pendingIdx, i)
			continue
		}
		c, stamp, err := r.update(tx, s, p, generation, now)
		if err != nil {
			return nil, err
		}
		out[i] = c
		if stamp {
			stamps[k.object] = append(stamps[k.object], k.remoteID)
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	if generation > 0 {
		for object, ids := range stamps {
			slices.Sort(ids)
			ids = slices.Compact(ids)
			for start := 0; start < len(ids); start += chunk {
				end := min(start+chunk, len(ids))
				err := tx.Exec(`UPDATE snapshots SET scan_generation = ? WHERE connection_id = ? AND object = ? AND remote_id IN ? AND scan_generation < ?`,
					generation, connectionID, object, ids[start:end], generation).Error
				if err != nil {
					return nil, fmt.Errorf("reconcile: stamp generation: %w", err)
				}
			}
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

// update reconciles p against the stored (and, on PostgreSQL, locked)
// snapshot s with one conditional UPDATE. It updates s in place when the row
// changed, and reports whether the row still needs its generation stamped.
func (r *Reconciler) update(tx *gorm.DB, s *models.Snapshot, p prepared, generation int64, now time.Time) (Change, bool, error) {
	newHash, newPayload, newFields := p.hash, p.payload, p.fields
	if p.rec.Data == nil { // delete without data: keep the last payload
		newHash, newPayload = s.ContentHash, s.Payload
	}
	newRUA := p.rua
	if newRUA.IsZero() {
		newRUA = s.RemoteUpdatedAt
	}
	gen := max(s.ScanGeneration, generation)
	// The statement decides: it changes the row only when the content or the
	// deleted flag differs and the stored version is not newer.
	res := tx.Exec(`UPDATE snapshots SET content_hash = ?, payload = ?, remote_updated_at = ?, deleted = ?, scan_generation = ?, updated_at = ?
WHERE connection_id = ? AND object = ? AND remote_id = ?
  AND (content_hash <> ? OR deleted <> ?)
  AND (? OR remote_updated_at <= ?)`,
		newHash, newPayload, newRUA, p.rec.Deleted, gen, now,
		s.ConnectionID, s.Object, s.RemoteID,
		newHash, p.rec.Deleted,
		p.rua.IsZero(), p.rua)
	if res.Error != nil {
		return Change{}, false, fmt.Errorf("reconcile: update snapshot %s %s: %w", s.Object, s.RemoteID, res.Error)
	}
	if res.RowsAffected == 0 {
		return Change{}, generation > s.ScanGeneration, nil
	}
	prev := *s
	s.ContentHash, s.Payload, s.RemoteUpdatedAt, s.Deleted, s.ScanGeneration = newHash, newPayload, newRUA, p.rec.Deleted, gen
	c := Change{Object: s.Object, RemoteID: s.RemoteID, Payload: newPayload}
	switch {
	case p.rec.Deleted && prev.Deleted:
		// Content of a tombstone changed: not a change for consumers.
		c.Kind = ""
	case p.rec.Deleted:
		c.Kind = Deleted
	case prev.Deleted:
		c.Kind = Created // undelete
	default:
		c.Kind = Updated
		_, prevFields, err := hashJSON(prev.Payload)
		if err != nil {
			return Change{}, false, err
		}
		c.ChangedFields, c.Previous = Diff(prevFields, newFields)
	}
	return c, false, nil
}

// loadSnapshots reads the snapshots of keys, locking them on PostgreSQL.
func loadSnapshots(tx *gorm.DB, connectionID string, keys []key) (map[key]*models.Snapshot, error) {
	out := make(map[key]*models.Snapshot, len(keys))
	for start := 0; start < len(keys); start += chunk {
		end := min(start+chunk, len(keys))
		var b strings.Builder
		args := []any{connectionID}
		b.WriteString(`SELECT * FROM snapshots WHERE connection_id = ? AND (object, remote_id) IN (`)
		for i, k := range keys[start:end] {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString("(?,?)")
			args = append(args, k.object, k.remoteID)
		}
		b.WriteString(")")
		if storage.IsPostgres(tx) {
			b.WriteString(" ORDER BY object, remote_id FOR UPDATE")
		}
		var rows []models.Snapshot
		if err := tx.Raw(b.String(), args...).Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("reconcile: read snapshots: %w", err)
		}
		for i := range rows {
			s := &rows[i]
			s.RemoteUpdatedAt = normTime(s.RemoteUpdatedAt)
			out[key{s.Object, s.RemoteID}] = s
		}
	}
	return out, nil
}

// insertAbsent inserts the snapshots of preps[idx] with ON CONFLICT DO
// NOTHING and returns the keys it inserted.
func insertAbsent(tx *gorm.DB, connectionID string, preps []prepared, idx []int, generation int64, now time.Time) (map[key]bool, error) {
	inserted := map[key]bool{}
	for start := 0; start < len(idx); start += chunk {
		end := min(start+chunk, len(idx))
		var b strings.Builder
		var args []any
		b.WriteString(`INSERT INTO snapshots (connection_id, object, remote_id, content_hash, payload, remote_updated_at, deleted, scan_generation, updated_at) VALUES `)
		for n, i := range idx[start:end] {
			p := preps[i]
			if n > 0 {
				b.WriteString(",")
			}
			b.WriteString("(?,?,?,?,?,?,?,?,?)")
			args = append(args, connectionID, p.rec.Object, p.rec.RemoteID, p.hash, p.payload, p.rua, p.rec.Deleted, generation, now)
		}
		b.WriteString(` ON CONFLICT (connection_id, object, remote_id) DO NOTHING RETURNING object, remote_id`)
		var rows []struct {
			Object   string
			RemoteID string
		}
		if err := tx.Raw(b.String(), args...).Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("reconcile: insert snapshots: %w", err)
		}
		for _, r := range rows {
			inserted[key{r.Object, r.RemoteID}] = true
		}
	}
	return inserted, nil
}

// MarkUnseenDeleted ends a completed full scan of object: every snapshot of
// the connection's object not stamped with generation (or a later one) and not
// yet deleted is marked deleted, and a deleted change is returned for each.
// Call it only when the scan finished; a partial scan must delete nothing.
func (r *Reconciler) MarkUnseenDeleted(tx *gorm.DB, connectionID, object string, generation int64) ([]Change, error) {
	var rows []struct {
		RemoteID string
		Payload  []byte
	}
	err := tx.Raw(`UPDATE snapshots SET deleted = ?, updated_at = ?
WHERE connection_id = ? AND object = ? AND scan_generation < ? AND deleted = ?
RETURNING remote_id, payload`, true, r.now(), connectionID, object, generation, false).Scan(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("reconcile: mark unseen deleted: %w", err)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].RemoteID < rows[j].RemoteID })
	out := make([]Change, 0, len(rows))
	for _, row := range rows {
		out = append(out, Change{Kind: Deleted, Object: object, RemoteID: row.RemoteID, Payload: row.Payload})
	}
	return out, nil
}
