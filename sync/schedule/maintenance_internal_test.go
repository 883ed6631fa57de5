package schedule

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
)

// TestMaintenanceQueriesUseIndexes plans the sweeps on a never-analyzed
// PostgreSQL schema with a backlog 500 times the batch.
func TestMaintenanceQueriesUseIndexes(t *testing.T) {
	db := storagetest.New(t, "postgres")
	const rows, batch = 6000, 12
	at := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for _, q := range []string{
		`INSERT INTO sync_runs (id, account_id, connection_id, started_at, status)
  SELECT 'run_'||lpad(g::text, 7, '0'), 'acc_1', 'con_'||(g % 40), $1::timestamptz + g * interval '1 second', 'completed' FROM generate_series(1, $2::int) g`,
		`INSERT INTO inbox_items (id, app, dedup_key, method, url, header, body, received_at, processed_at, next_attempt_at)
  SELECT 'inb_'||lpad(g::text, 7, '0'), 'hubspot', 'd'||g, 'POST', '/', '{}', '\x7b7d', $1::timestamptz, $1::timestamptz + g * interval '1 second', $1::timestamptz
  FROM generate_series(1, $2::int) g`,
	} {
		require.NoError(t, db.Exec(q, at, rows).Error)
	}
	cut := at.Add(time.Hour)
	storagetest.RequireIndexScan(t, db, "idx_sync_runs_started", []string{"sync_runs"}, storage.BatchDeleteSQL(db, "sync_runs", sweepRunsSel), cut, batch)
	storagetest.RequireIndexScan(t, db, "idx_inbox_processed", []string{"inbox_items"}, storage.BatchDeleteSQL(db, "inbox_items", sweepInboxSel), cut, batch)
}
