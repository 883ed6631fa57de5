package forwarding

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
)

var rt0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// seedHistory writes n events at rt0+i minutes, each with one delivery
// (queued for every third, succeeded otherwise) and one attempt.
func seedHistory(t *testing.T, db *gorm.DB, n int) {
	t.Helper()
	for i := range n {
		at := rt0.Add(time.Duration(i) * time.Minute)
		ev := models.Event{ID: fmt.Sprintf("evt_%04d", i), AccountID: "acc_1", Seq: int64(i + 1), Topic: "crm/contacts", UpdateType: "created", Body: []byte(`{}`), CreatedAt: at}
		status := models.DeliverySucceeded
		if i%3 == 0 {
			status = models.DeliveryFailed
		}
		d := models.Delivery{ID: fmt.Sprintf("dlv_%04d", i), AccountID: "acc_1", EventID: ev.ID, SubscriptionID: "sub_1", Status: status, NextAttemptAt: at, CreatedAt: at, UpdatedAt: at}
		a := models.Attempt{ID: fmt.Sprintf("att_%04d", i), DeliveryID: d.ID, SubscriptionID: "sub_1", AccountID: "acc_1", Number: 1, AttemptedAt: at, StatusCode: 200}
		require.NoError(t, db.Create(&ev).Error)
		require.NoError(t, db.Create(&d).Error)
		require.NoError(t, db.Create(&a).Error)
	}
}

func TestPruneWalksHistoryInBatches(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		old := pruneBatch
		pruneBatch = 4 // many batches, with needed events across their edges
		defer func() { pruneBatch = old }()
		box, _ := secrets.New(make([]byte, 32))
		s := New(Config{DB: db, Box: box})
		seedHistory(t, db, 30)
		before := rt0.Add(20 * time.Minute) // events 0..19 are old
		p, err := s.Prune(context.Background(), before)
		require.NoError(t, err)
		// Old: 20 attempts; 13 succeeded deliveries (7 of 0..19 are queued:
		// 0,3,...,18) and their 13 events.
		require.Equal(t, Pruned{Attempts: 20, Deliveries: 13, Events: 13}, p)
		var ids []string
		require.NoError(t, db.Model(&models.Event{}).Order("id").Pluck("id", &ids).Error)
		require.Len(t, ids, 17)
		for i := range 20 {
			require.Equal(t, i%3 == 0, contains(ids, fmt.Sprintf("evt_%04d", i)), "event %d", i)
		}
		again, err := s.Prune(context.Background(), before)
		require.NoError(t, err)
		require.Zero(t, again)
	})
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestHistoryQueriesUseIndexes plans retention, /stats and replay queries on a
// PostgreSQL schema that was never analyzed, with rows in it: each must walk
// an index, never read a whole table.
func TestHistoryQueriesUseIndexes(t *testing.T) {
	db := storagetest.New(t, "postgres")
	// A backlog 500 times the batch (production: 1000-row batches over
	// hundreds of thousands of rows), written without ANALYZE.
	const rows, batch = 6000, 12
	for _, q := range []string{
		`INSERT INTO events (id, account_id, seq, topic, update_type, body, created_at)
  SELECT 'evt_'||lpad(g::text, 7, '0'), 'acc_1', g, 'crm/contacts', 'created', '\x7b7d', $1::timestamptz + g * interval '1 second' FROM generate_series(1, $2::int) g`,
		`INSERT INTO deliveries (id, account_id, event_id, subscription_id, status, next_attempt_at, created_at)
  SELECT 'dlv_'||lpad(g::text, 7, '0'), 'acc_1', 'evt_'||lpad(g::text, 7, '0'), 'sub_'||(g % 50), CASE WHEN g % 10 = 0 THEN 'failed' ELSE 'succeeded' END,
    $1::timestamptz + g * interval '1 second', $1::timestamptz + g * interval '1 second' FROM generate_series(1, $2::int) g`,
		`INSERT INTO attempts (id, delivery_id, subscription_id, account_id, number, attempted_at, status_code)
  SELECT 'att_'||lpad(g::text, 7, '0'), 'dlv_'||lpad(g::text, 7, '0'), 'sub_'||(g % 50), 'acc_1', 1, $1::timestamptz + g * interval '1 second', 200 FROM generate_series(1, $2::int) g`,
	} {
		require.NoError(t, db.Exec(q, rt0, rows).Error)
	}
	at := rt0.Add(time.Hour)
	for _, tc := range []struct {
		name, index string
		tables      []string
		query       string
		args        []any
	}{
		{"prune attempts", "idx_attempts_attempted_at", []string{"attempts"}, storage.BatchDeleteSQL(db, "attempts", pruneAttemptsSel), []any{at, batch}},
		{"prune deliveries", "idx_deliveries_finished", []string{"deliveries"}, storage.BatchDeleteSQL(db, "deliveries", pruneDeliveriesSel), []any{at, batch}},
		{"prune events page", "idx_events_created", []string{"events"}, pruneEventsPageSQL, []any{at, rt0, "evt_0001", batch}},
		{"prune events anti-join", "idx_deliveries_event_id", []string{"events", "deliveries"}, pruneEventsSQL, []any{[]string{"evt_0001", "evt_0002"}}},
		{"stats counts", "idx_deliveries_sub_status", []string{"deliveries"}, statsCountsSQL, []any{"sub_1"}},
		{"stats last attempt", "idx_attempts_sub_time", []string{"attempts"}, statsLastAttemptSQL, []any{"sub_1"}},
		{"replay count", "idx_events_account_created", []string{"events"}, replayCountSQL, []any{"acc_1", at, at.Add(time.Minute), 10001}},
		{"replay page", "idx_events_account_created", []string{"events"}, replayPageSQL, []any{"acc_1", at, at.Add(time.Minute), 0, 500}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storagetest.RequireIndexScan(t, db, tc.index, tc.tables, tc.query, tc.args...)
		})
	}
}
