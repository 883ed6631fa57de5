package inbound

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
)

// Regression (issue 10): every statement of receiving, claiming, processing
// and measuring the inbox is index-backed on a freshly created,
// never-analyzed PostgreSQL schema (no planner statistics, as with
// autovacuum off), with thousands of processed items and connections around.
// TRIBUTARY_EXPLAIN=1 prints the plans (docs/operations.md shows them).
func TestInboxQueriesUseIndexesWithoutStatistics(t *testing.T) {
	db := storagetest.New(t, storage.Postgres)
	b := setup(t, db)

	// Unrelated history: 5,000 processed items, 2,000 connections.
	now := b.clock.Now()
	old := make([]models.InboxItem, 0, 5000)
	for i := range 5000 {
		at := now.Add(-time.Duration(5000-i) * time.Second)
		old = append(old, models.InboxItem{ID: models.NewID(models.PrefixInbox), App: "shopify", DedupKey: fmt.Sprint("old-", i),
			Method: "POST", URL: shopifyAddress, Header: "{}", Body: []byte("{}"), ReceivedAt: at, ProcessedAt: &at,
			NextAttemptAt: at, OrderKey: fmt.Sprintf("%064d", i), Attempts: 1})
	}
	require.NoError(t, db.CreateInBatches(old, 500).Error)
	conns := make([]models.Connection, 0, 2000)
	for i := range 2000 {
		conns = append(conns, models.Connection{ID: models.NewID(models.PrefixConnection), AccountID: accountID, App: "shopify",
			UserID: fmt.Sprint("u", i), Status: models.ConnectionActive, ExternalID: fmt.Sprintf("other-%d.myshopify.com", i),
			Metadata: "{}", Cursors: "{}", NextSyncAt: now})
	}
	require.NoError(t, db.CreateInBatches(conns, 500).Error)

	rec, r := storagetest.Record(db)
	b.recv.DB, b.proc.DB = rec, rec
	b.shopifyChanges(t, [2]string{"create", "a"}, [2]string{"create", "b"}, [2]string{"update", "a"})
	require.Equal(t, 3, b.process(t))
	var pending struct {
		N      int64
		Oldest *time.Time
	}
	require.NoError(t, rec.Raw(`SELECT count(*) AS n, min(received_at) AS oldest FROM inbox_items WHERE processed_at IS NULL`).Scan(&pending).Error)

	// A backlog of 3,000 pending items: the claim walks idx_inbox_pending in
	// received order and stops after its batch (no read and sort of the
	// whole backlog), in the transaction settings claim uses.
	backlog := make([]models.InboxItem, 0, 3000)
	for i := range 3000 {
		backlog = append(backlog, models.InboxItem{ID: models.NewID(models.PrefixInbox), App: "shopify", DedupKey: fmt.Sprint("new-", i),
			Method: "POST", URL: shopifyAddress, Header: "{}", Body: []byte("{}"), ReceivedAt: now, NextAttemptAt: now,
			OrderKey: fmt.Sprintf("k%063d", i)})
	}
	require.NoError(t, db.CreateInBatches(backlog, 500).Error)
	var claimSQL string
	for _, st := range r.Statements() {
		if strings.HasPrefix(st, "SELECT * FROM inbox_items i") {
			claimSQL = st
		}
	}
	require.NotEmpty(t, claimSQL)
	var claimPlan []string
	require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SELECT set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true)`).Error; err != nil {
			return err
		}
		return tx.Raw("EXPLAIN " + claimSQL).Scan(&claimPlan).Error
	}))
	plan := strings.Join(claimPlan, "\n")
	require.Contains(t, plan, "Index Scan using idx_inbox_pending on inbox_items i", plan)
	require.NotContains(t, plan, "Sort", plan)
	require.Contains(t, plan, "idx_inbox_inflight on inbox_items o", "in-flight items are found in their own small index")
	if os.Getenv("TRIBUTARY_EXPLAIN") != "" {
		t.Logf("claim with a backlog:\n%s\n%s", claimSQL, indent(plan))
	}

	plans := storagetest.RequireIndexed(t, db, r.Statements(), []string{"inbox_items", "connections"},
		[]string{"idx_inbox_pending", "idx_inbox_inflight"}) // partial: only unprocessed / leased items
	require.GreaterOrEqual(t, len(plans), 6, "claim, lease, route, fence, connection lock, queue depth")
	if os.Getenv("TRIBUTARY_EXPLAIN") != "" {
		for _, p := range plans {
			t.Logf("%s\n%s\n", p.SQL, indent(p.Plan))
		}
	}
}

func indent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }
