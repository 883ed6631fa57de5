package reconcile

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/storage/storagetest"
)

// TestDeletionQueriesUseIndexes plans the snapshot sweep of a deleted
// connection and a batch of MarkUnseenDeletedBatch on a never-analyzed
// PostgreSQL schema, with a backlog 500 times the batch over two connections.
func TestDeletionQueriesUseIndexes(t *testing.T) {
	db := storagetest.New(t, "postgres")
	const rows, batch = 6000, 12
	require.NoError(t, db.Exec(`INSERT INTO snapshots (connection_id, object, remote_id, content_hash, payload, remote_updated_at, deleted, scan_generation)
  SELECT 'con_'||(g % 2), 'contacts', lpad(g::text, 7, '0'), 'h', '\x7b7d', $1::timestamptz, false, 1 FROM generate_series(1, $2::int) g`, t0, rows).Error)
	storagetest.RequireIndexScan(t, db, "snapshots_pkey", []string{"snapshots"}, sweepSQL(db), "con_1", batch)
	storagetest.RequireIndexScan(t, db, "snapshots_pkey", []string{"snapshots"}, markUnseenPG, true, t0, "con_1", "contacts", "0000100", 2, false, batch)
}
