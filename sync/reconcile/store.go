package reconcile

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
)

// store holds the page-sized statements of reconcile. On PostgreSQL each is
// one statement with array parameters (unnest / = ANY), run on the
// transaction's connection directly, without gorm's reflection. SQLite, whose
// writers are serialized, uses portable IN lists in chunks.
type store struct {
	tx   *gorm.DB
	ctx  context.Context
	conn string
	pg   bool
	tids map[key]string // PostgreSQL: ctid of each row readLocked locked
}

func newStore(tx *gorm.DB, connectionID string) *store {
	ctx := tx.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	return &store{tx: tx, ctx: ctx, conn: connectionID, pg: storage.IsPostgres(tx), tids: map[key]string{}}
}

// sqliteChunk bounds the parameters of one SQLite statement.
const sqliteChunk = 500

// meta is what reconcile needs to know, without the payload, to tell a no-op.
type meta struct {
	hash       string
	deleted    bool
	rua        time.Time
	generation int64
	stamped    bool // readMeta stamped the row with the page's generation
}

// wouldChange reports whether the conditional UPDATE of update could change
// the row for p: the content or the deleted flag differs and the stored
// version is not newer, or p is a newer version of the same content (a
// revert, a touch), whose version must still advance so that a late older
// version is then recognised as older.
func (m meta) wouldChange(p prepared) bool {
	if !p.rua.IsZero() && m.rua.Before(p.rua) {
		return true
	}
	newHash := p.hash
	if p.rec.Data == nil {
		newHash = m.hash
	}
	if newHash == m.hash && p.rec.Deleted == m.deleted {
		return false
	}
	return p.rua.IsZero() || !m.rua.After(p.rua)
}

// byObject groups the remote ids of keys by object, keeping order.
func byObject(keys []key) ([]string, map[string][]string) {
	var objects []string
	ids := map[string][]string{}
	for _, k := range keys {
		if _, ok := ids[k.object]; !ok {
			objects = append(objects, k.object)
		}
		ids[k.object] = append(ids[k.object], k.remoteID)
	}
	return objects, ids
}

func (s *store) query(q string, args ...any) (*sql.Rows, error) {
	if s.pg {
		return s.tx.Statement.ConnPool.QueryContext(s.ctx, q, args...)
	}
	return s.tx.Raw(q, args...).Rows()
}

// readMeta reads, without locking, the stored version of keys. On
// PostgreSQL with generation > 0 the same statement also stamps every found
// row whose generation is older (meta.stamped): the scan saw the record,
// whatever its content, and a row whose content changes is rewritten with
// that generation anyway.
func (s *store) readMeta(keys []key, generation int64) (map[key]meta, error) {
	out := make(map[key]meta, len(keys))
	objects, ids := byObject(keys)
	for _, object := range objects {
		for _, part := range s.parts(ids[object]) {
			var rows *sql.Rows
			var err error
			switch {
			case s.pg && generation > 0:
				slices.Sort(part) // stamp (lock) rows in key order
				rows, err = s.query(readMetaStampPG, s.conn, object, part, generation)
			case s.pg:
				rows, err = s.query(`SELECT x.remote_id, x.content_hash, x.deleted, x.remote_updated_at, x.scan_generation, false
FROM unnest($3::text[]) AS k(id) CROSS JOIN LATERAL (
  SELECT remote_id, content_hash, deleted, remote_updated_at, scan_generation FROM snapshots
  WHERE connection_id = $1 AND object = $2 AND remote_id = k.id LIMIT 1) x`, s.conn, object, part)
			default:
				rows, err = s.query(`SELECT remote_id, content_hash, deleted, remote_updated_at, scan_generation, false FROM snapshots
WHERE connection_id = ? AND object = ? AND remote_id IN ?`, s.conn, object, part)
			}
			if err != nil {
				return nil, fmt.Errorf("reconcile: read snapshots: %w", err)
			}
			for rows.Next() {
				var id string
				var m meta
				if err := rows.Scan(&id, &m.hash, &m.deleted, &m.rua, &m.generation, &m.stamped); err != nil {
					_ = rows.Close()
					return nil, fmt.Errorf("reconcile: read snapshots: %w", err)
				}
				m.rua = normTime(m.rua)
				out[key{object, id}] = m
			}
			if err := closeRows(rows); err != nil {
				return nil, fmt.Errorf("reconcile: read snapshots: %w", err)
			}
		}
	}
	return out, nil
}

// readMetaStampPG reads the stored versions (k, the statement's snapshot,
// before the stamp) and stamps them by ctid (u) in one round trip; see
// stampPG for why rows are found with LATERAL ... LIMIT 1 and updated by
// ctid. A row updated concurrently after the snapshot is not stamped
// (stamped false): apply stamps it again.
const readMetaStampPG = `WITH k AS MATERIALIZED (
  SELECT x.* FROM unnest($3::text[]) AS i(id) CROSS JOIN LATERAL (
    SELECT ctid AS tid, remote_id, content_hash, deleted, remote_updated_at, scan_generation FROM snapshots
    WHERE connection_id = $1 AND object = $2 AND remote_id = i.id LIMIT 1) x),
u AS (
  UPDATE snapshots SET scan_generation = $4
  WHERE ctid = ANY(ARRAY(SELECT tid FROM k WHERE scan_generation < $4)) AND scan_generation < $4
  RETURNING remote_id)
SELECT k.remote_id, k.content_hash, k.deleted, k.remote_updated_at, k.scan_generation, u.remote_id IS NOT NULL
FROM k LEFT JOIN u ON u.remote_id = k.remote_id`

// readLocked reads the full snapshots of keys, locking them on PostgreSQL
// (in key order, so concurrent pages lock in the same order).
func (s *store) readLocked(keys []key) (map[key]*models.Snapshot, error) {
	out := make(map[key]*models.Snapshot, len(keys))
	objects, ids := byObject(keys)
	slices.Sort(objects)
	for _, object := range objects {
		sorted := slices.Clone(ids[object])
		slices.Sort(sorted)
		for _, part := range s.parts(slices.Compact(sorted)) {
			var rows *sql.Rows
			var err error
			if s.pg {
				rows, err = s.query(`SELECT x.remote_id, x.content_hash, x.payload, x.remote_updated_at, x.deleted, x.scan_generation, x.ctid::text
FROM unnest($3::text[]) AS k(id) CROSS JOIN LATERAL (
  SELECT remote_id, content_hash, payload, remote_updated_at, deleted, scan_generation, ctid FROM snapshots
  WHERE connection_id = $1 AND object = $2 AND remote_id = k.id LIMIT 1 FOR UPDATE) x`, s.conn, object, part)
			} else {
				rows, err = s.query(`SELECT remote_id, content_hash, payload, remote_updated_at, deleted, scan_generation, '' FROM snapshots
WHERE connection_id = ? AND object = ? AND remote_id IN ?`, s.conn, object, part)
			}
			if err != nil {
				return nil, fmt.Errorf("reconcile: lock snapshots: %w", err)
			}
			for rows.Next() {
				sn := &models.Snapshot{ConnectionID: s.conn, Object: object}
				var tid string
				if err := rows.Scan(&sn.RemoteID, &sn.ContentHash, &sn.Payload, &sn.RemoteUpdatedAt, &sn.Deleted, &sn.ScanGeneration, &tid); err != nil {
					_ = rows.Close()
					return nil, fmt.Errorf("reconcile: lock snapshots: %w", err)
				}
				sn.RemoteUpdatedAt = normTime(sn.RemoteUpdatedAt)
				out[key{object, sn.RemoteID}] = sn
				if s.pg {
					s.tids[key{object, sn.RemoteID}] = tid
				}
			}
			if err := closeRows(rows); err != nil {
				return nil, fmt.Errorf("reconcile: lock snapshots: %w", err)
			}
		}
	}
	return out, nil
}

// insert inserts the snapshots of preps[idx] with ON CONFLICT DO NOTHING and
// returns the keys it inserted. Rows go in key order, so that two pages
// inserting overlapping keys wait on each other instead of deadlocking.
func (s *store) insert(preps []prepared, idx []int, generation int64, now time.Time) (map[key]bool, error) {
	inserted := make(map[key]bool, len(idx))
	if len(idx) == 0 {
		return inserted, nil
	}
	idx = slices.Clone(idx)
	slices.SortFunc(idx, func(a, b int) int {
		ra, rb := preps[a].rec, preps[b].rec
		if c := strings.Compare(ra.Object, rb.Object); c != 0 {
			return c
		}
		return strings.Compare(ra.RemoteID, rb.RemoteID)
	})
	collect := func(rows *sql.Rows, err error) error {
		if err != nil {
			return fmt.Errorf("reconcile: insert snapshots: %w", err)
		}
		for rows.Next() {
			var k key
			if err := rows.Scan(&k.object, &k.remoteID); err != nil {
				_ = rows.Close()
				return fmt.Errorf("reconcile: insert snapshots: %w", err)
			}
			inserted[k] = true
		}
		if err := closeRows(rows); err != nil {
			return fmt.Errorf("reconcile: insert snapshots: %w", err)
		}
		return nil
	}
	if s.pg {
		n := len(idx)
		objects, ids, hashes := make([]string, n), make([]string, n), make([]string, n)
		payloads, ruas, deleted := make([][]byte, n), make([]time.Time, n), make([]bool, n)
		for j, i := range idx {
			p := preps[i]
			objects[j], ids[j], hashes[j] = p.rec.Object, p.rec.RemoteID, p.hash
			payloads[j], ruas[j], deleted[j] = p.payload, p.rua, p.rec.Deleted
		}
		err := collect(s.query(`INSERT INTO snapshots (connection_id, object, remote_id, content_hash, payload, remote_updated_at, deleted, scan_generation, updated_at)
SELECT $1, v.o, v.r, v.h, v.p, v.t, v.d, $8, $9
FROM unnest($2::text[], $3::text[], $4::text[], $5::bytea[], $6::timestamptz[], $7::bool[]) AS v(o, r, h, p, t, d)
ON CONFLICT (connection_id, object, remote_id) DO NOTHING RETURNING object, remote_id`,
			s.conn, objects, ids, hashes, payloads, ruas, deleted, generation, now))
		return inserted, err
	}
	const perStmt = 200 // 9 parameters a row
	for start := 0; start < len(idx); start += perStmt {
		end := min(start+perStmt, len(idx))
		var b strings.Builder
		args := make([]any, 0, 9*(end-start))
		b.WriteString(`INSERT INTO snapshots (connection_id, object, remote_id, content_hash, payload, remote_updated_at, deleted, scan_generation, updated_at) VALUES `)
		for n, i := range idx[start:end] {
			p := preps[i]
			if n > 0 {
				b.WriteString(",")
			}
			b.WriteString("(?,?,?,?,?,?,?,?,?)")
			args = append(args, s.conn, p.rec.Object, p.rec.RemoteID, p.hash, p.payload, p.rua, p.rec.Deleted, generation, now)
		}
		b.WriteString(` ON CONFLICT (connection_id, object, remote_id) DO NOTHING RETURNING object, remote_id`)
		if err := collect(s.query(b.String(), args...)); err != nil {
			return nil, err
		}
	}
	return inserted, nil
}

// stamp sets scan_generation on the snapshots of object with remote ids ids
// (sorted) that have an older one.
func (s *store) stamp(object string, ids []string, generation int64) error {
	for _, part := range s.parts(ids) {
		var err error
		if s.pg {
			err = s.stampPG(object, part, generation)
		} else {
			err = s.tx.Exec(`UPDATE snapshots SET scan_generation = ? WHERE connection_id = ? AND object = ? AND remote_id IN ? AND scan_generation < ?`,
				generation, s.conn, object, part, generation).Error
		}
		if err != nil {
			return fmt.Errorf("reconcile: stamp generation: %w", err)
		}
	}
	return nil
}

// updateLocked (PostgreSQL) runs the conditional UPDATE of update for every
// row snaps, locked by readLocked, in one statement, and returns the keys it
// changed. The rows are found by the ctid readLocked returned: they are
// locked, so that version is current; object and remote id are checked too.
func (s *store) updateLocked(snaps []*models.Snapshot, ps []prepared, ups []rowUpdate, now time.Time) (map[key]bool, error) {
	n := len(snaps)
	tids, objects, ids, hashes := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	payloads, ruas, deleted, gens := make([][]byte, n), make([]time.Time, n), make([]bool, n), make([]int64, n)
	noRUA, oldest := make([]bool, n), make([]time.Time, n)
	for i, sn := range snaps {
		k := key{sn.Object, sn.RemoteID}
		tid, ok := s.tids[k]
		if !ok {
			return nil, fmt.Errorf("reconcile: %s %s: not locked", k.object, k.remoteID)
		}
		tids[i], objects[i], ids[i], hashes[i] = tid, k.object, k.remoteID, ups[i].hash
		payloads[i], ruas[i], deleted[i], gens[i] = ups[i].payload, ups[i].rua, ps[i].rec.Deleted, ups[i].gen
		noRUA[i], oldest[i] = ps[i].rua.IsZero(), ps[i].rua
	}
	rows, err := s.query(`UPDATE snapshots AS s SET content_hash = v.h, payload = v.p, remote_updated_at = v.t, deleted = v.d, scan_generation = v.g, updated_at = $2
FROM unnest($3::text[], $4::text[], $5::text[], $6::bytea[], $7::timestamptz[], $8::bool[], $9::bigint[], $10::bool[], $11::timestamptz[])
  AS v(o, r, h, p, t, d, g, nort, rt)
WHERE s.ctid = ANY($1::text[]::tid[]) AND s.connection_id = $12 AND s.object = v.o AND s.remote_id = v.r
  AND ((s.content_hash <> v.h OR s.deleted <> v.d) AND (v.nort OR s.remote_updated_at <= v.rt)
    OR NOT v.nort AND s.remote_updated_at < v.rt)
RETURNING s.object, s.remote_id`, tids, now, objects, ids, hashes, payloads, ruas, deleted, gens, noRUA, oldest, s.conn)
	if err != nil {
		return nil, fmt.Errorf("reconcile: update snapshots: %w", err)
	}
	changed := make(map[key]bool, n)
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.object, &k.remoteID); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("reconcile: update snapshots: %w", err)
		}
		changed[k] = true
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("reconcile: update snapshots: %w", err)
	}
	return changed, nil
}

// stampPG stamps in one statement that finds each row by its primary key
// (one index probe per id) and updates it by ctid. Written with
// "remote_id = ANY(...)" or a join instead, the planner reads every snapshot
// of the connection whenever the table has no statistics (a fresh table,
// autovacuum off) — a page then costs as much as the whole table.
//
// No other condition may be added on the outer UPDATE: the planner would
// again prefer the (connection_id, object) index range. The ctids are those
// of row versions visible to the statement's snapshot, which vacuum cannot
// reclaim meanwhile. A row updated concurrently after that snapshot fails the
// ctid recheck and is skipped; RETURNING tells which, and those are stamped
// again one by one.
func (s *store) stampPG(object string, ids []string, generation int64) error {
	rows, err := s.query(`UPDATE snapshots SET scan_generation = $1
WHERE ctid = ANY(ARRAY(
    SELECT x.ctid FROM unnest($4::text[]) AS k(id) CROSS JOIN LATERAL (
      SELECT ctid FROM snapshots WHERE connection_id = $2 AND object = $3 AND remote_id = k.id LIMIT 1) x))
  AND scan_generation < $1
RETURNING remote_id`, generation, s.conn, object, ids)
	if err != nil {
		return err
	}
	done := make(map[string]bool, len(ids))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			_ = rows.Close()
			return err
		}
		done[id] = true
	}
	if err := closeRows(rows); err != nil {
		return err
	}
	if len(done) == len(ids) {
		return nil
	}
	for _, id := range ids {
		if done[id] {
			continue
		}
		_, err := s.tx.Statement.ConnPool.ExecContext(s.ctx,
			`UPDATE snapshots SET scan_generation = $1 WHERE connection_id = $2 AND object = $3 AND remote_id = $4 AND scan_generation < $1`,
			generation, s.conn, object, id)
		if err != nil {
			return err
		}
	}
	return nil
}

// parts splits ids into statement-sized parts: one on PostgreSQL (an array
// parameter), chunks on SQLite.
func (s *store) parts(ids []string) [][]string {
	if s.pg || len(ids) <= sqliteChunk {
		return [][]string{ids}
	}
	var out [][]string
	for start := 0; start < len(ids); start += sqliteChunk {
		out = append(out, ids[start:min(start+sqliteChunk, len(ids))])
	}
	return out
}

func closeRows(rows *sql.Rows) error {
	if err := rows.Err(); err != nil {
		_ = rows.Close()
		return err
	}
	return rows.Close()
}
