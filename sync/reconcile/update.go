package reconcile

import (
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
)

// updateChunk bounds the rows of one batched conditional UPDATE.
const updateChunk = 100

// rowUpdate is what the conditional UPDATE of one snapshot writes.
type rowUpdate struct {
	hash    string
	payload []byte
	rua     time.Time
	gen     int64
}

// planUpdate computes the new values of snapshot s for p.
func planUpdate(s *models.Snapshot, p prepared, generation int64) rowUpdate {
	u := rowUpdate{hash: p.hash, payload: p.payload, rua: p.rua, gen: max(s.ScanGeneration, generation)}
	if p.rec.Data == nil { // delete without data: keep the last payload
		u.hash, u.payload = s.ContentHash, s.Payload
	}
	if u.rua.IsZero() {
		u.rua = s.RemoteUpdatedAt
	}
	return u
}

// update reconciles p against the stored (and, on PostgreSQL, locked)
// snapshot s with one conditional UPDATE, and reports whether the row still
// needs its generation stamped.
func (r *Reconciler) update(tx *gorm.DB, s *models.Snapshot, p prepared, generation int64, now time.Time) (Change, bool, error) {
	u := planUpdate(s, p, generation)
	// The statement decides: it changes the row when the content or the
	// deleted flag differs and the stored version is not newer, or when the
	// version is newer (the same content: only the version advances).
	res := tx.Exec(`UPDATE snapshots SET content_hash = ?, payload = ?, remote_updated_at = ?, deleted = ?, scan_generation = ?, updated_at = ?
WHERE connection_id = ? AND object = ? AND remote_id = ?
  AND ((content_hash <> ? OR deleted <> ?) AND (? OR remote_updated_at <= ?)
    OR NOT ? AND remote_updated_at < ?)`,
		u.hash, u.payload, u.rua, p.rec.Deleted, u.gen, now,
		s.ConnectionID, s.Object, s.RemoteID,
		u.hash, p.rec.Deleted, p.rua.IsZero(), p.rua,
		p.rua.IsZero(), p.rua)
	if res.Error != nil {
		return Change{}, false, fmt.Errorf("reconcile: update snapshot %s %s: %w", s.Object, s.RemoteID, res.Error)
	}
	return outcome(s, p, u, res.RowsAffected > 0, generation)
}

// outcome is the change caused by the conditional UPDATE u of s for p
// (changed: it affected the row); it updates s in place when the row
// changed, and reports whether the row still needs its generation stamped.
func outcome(s *models.Snapshot, p prepared, u rowUpdate, changed bool, generation int64) (Change, bool, error) {
	if !changed {
		return Change{}, generation > s.ScanGeneration, nil
	}
	prev := *s
	s.ContentHash, s.Payload, s.RemoteUpdatedAt, s.Deleted, s.ScanGeneration = u.hash, u.payload, u.rua, p.rec.Deleted, u.gen
	if prev.ContentHash == u.hash && prev.Deleted == p.rec.Deleted {
		// A newer version of the same content: only the version advanced.
		return Change{}, false, nil
	}
	c := Change{Object: s.Object, RemoteID: s.RemoteID, Payload: u.payload, RemoteUpdatedAt: p.rua}
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
		_, newFields, err := hashJSON(u.payload)
		if err != nil {
			return Change{}, false, err
		}
		c.ChangedFields, c.Previous = Diff(prevFields, newFields)
	}
	return c, false, nil
}
