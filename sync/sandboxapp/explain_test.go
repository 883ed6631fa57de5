package sandboxapp_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/sandbox"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
	"github.com/tributary/tributary/sync/sandboxapp"
)

// Regression (issue 10): the write path looked up a connection's newest
// change with a query that read the whole table when the planner had no
// statistics. Every statement of writes, polls, full scans and reads of the
// sandbox app is now index-backed on a freshly created, never-analyzed
// PostgreSQL schema holding other connections' records.
// TRIBUTARY_EXPLAIN=1 prints the plans (docs/operations.md shows them).
func TestSandboxQueriesUseIndexesWithoutStatistics(t *testing.T) {
	db := storagetest.New(t, storage.Postgres)
	b := setup(t, db)
	other := make([]models.SandboxRecord, 0, 6000) // records of other connections and of the tested one
	at := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	for i := range 6000 {
		// Half are the tested connection's own (its first id is con_webhook_1).
		conn := fmt.Sprintf("con_other_%d", i%40)
		if i%2 == 0 {
			conn = "con_webhook_1"
		}
		other = append(other, models.SandboxRecord{ConnectionID: conn, Object: "contacts",
			RemoteID: fmt.Sprintf("sbx_%06d", i), Data: `{"first_name":"x"}`, Version: 1,
			ModifiedAt: at.Add(time.Duration(i) * time.Millisecond), CreatedAt: at})
	}
	require.NoError(t, db.CreateInBatches(other, 500).Error)

	rec, r := storagetest.Record(db)
	svc := sandboxapp.New(rec, b.conns, secret, b.svc.InboundURL)
	svc.Now = b.clock.Now
	conn := sandbox.New(svc, secret)
	c := b.newConnection(t, "acc_1", sandbox.AppName, sandbox.ModeWebhook)
	ctx := t.Context()
	id, err := svc.Create(ctx, "acc_1", c.ID, "contacts", raw(`{"first_name":"Ada"}`))
	require.NoError(t, err)
	require.NoError(t, svc.Update(ctx, "acc_1", c.ID, "contacts", id, raw(`{"title":"CTO"}`)))
	for _, full := range []bool{false, true} {
		req := connectors.ListRequest{Object: "contacts", FullScan: full, Cursor: ""}
		require.NoError(t, conn.ListChanges(ctx, c, req, func(connectors.Page) error { return nil }))
	}
	_, err = conn.FetchRecords(ctx, c, "contacts", []string{id})
	require.NoError(t, err)
	require.NoError(t, svc.Delete(ctx, "acc_1", c.ID, "contacts", id))

	plans := storagetest.RequireIndexed(t, db, r.Statements(), []string{"sandbox_records"}, nil)
	// The newest change of a connection, and the latest of an object, are
	// one index entry each, read in index order: no sort of the
	// connection's records, whatever their number.
	newest := 0
	for _, p := range plans {
		if strings.Contains(p.SQL, "DESC LIMIT 1") {
			newest++
			require.NotContains(t, p.Plan, "Sort", "%s\n%s", p.SQL, p.Plan)
		}
	}
	require.Equal(t, 2, newest, "newest change of the connection, latest of the object")
	require.GreaterOrEqual(t, len(plans), 6, "newest change, lock, save, list changed, list live, latest, get")
	if os.Getenv("TRIBUTARY_EXPLAIN") != "" {
		for _, p := range plans {
			t.Logf("%s\n    %s\n", p.SQL, strings.ReplaceAll(p.Plan, "\n", "\n    "))
		}
	}
}
