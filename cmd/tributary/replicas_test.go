package main

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/chaos"
	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
)

// TestTwoServeProcessesNeverPollOneConnectionAtOnce runs two complete serve
// engines (API, dispatcher, scheduler, inbound) on one PostgreSQL database,
// asks both for polls of the same connection over and over, and checks the
// sync_runs log: the runs of the connection never overlap in time.
func TestTwoServeProcessesNeverPollOneConnectionAtOnce(t *testing.T) {
	t.Parallel()
	opts := storagetest.Options(t, storage.Postgres)
	key := secrets.GenerateKey()
	engine := func() *crashEngine {
		ce := &crashEngine{c: config.Default()}
		ce.c.ListenAddr, ce.c.DataDir, ce.c.DatabaseURL, ce.c.MasterKey = "127.0.0.1:0", t.TempDir(), opts.URL, key
		ce.c.Log.Format, ce.c.Log.Level = "text", "error"
		ce.c.API.RateBurst, ce.c.API.RateLimit = 100000, 100000
		ce.c.Scheduler.Tick, ce.c.Scheduler.PageSize = 10*time.Millisecond, 20
		ce.c.API.ShutdownTimeout = 5 * time.Second
		allowPrivate(&ce.c)
		yes := true
		ce.c.Sandbox = &yes
		require.NoError(t, ce.c.Validate())
		ce.start(t)
		t.Cleanup(func() { ce.stop(t) })
		return ce
	}
	a, b := engine(), engine()
	db, err := storage.Open(context.Background(), storage.Options{URL: opts.URL})
	require.NoError(t, err)
	t.Cleanup(func() { storage.Close(db) })
	admin, err := accounts.New(db).CreateAdminKey(context.Background())
	require.NoError(t, err)
	api := &chaos.Client{URL: a.url}
	st, acc, err := api.Do("POST", "/v1/admin/accounts", admin, map[string]any{"name": "Replicas"})
	require.NoError(t, err)
	require.Equal(t, 201, st)
	apiKey := acc["apiKey"].(string)
	w := chaos.NewWorld(api, db, apiKey, 7)
	conn, err := w.Connect("polling")
	require.NoError(t, err)
	require.NoError(t, w.Seed(conn, 600)) // each poll spans ~30 page transactions

	// Both engines are asked for a poll as fast as they answer; while one
	// runs, the other must neither claim it nor start a second run.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for _, ce := range []*crashEngine{a, b} {
			_, _, err := (&chaos.Client{URL: ce.url}).Do("POST", "/v1/connections/"+conn+"/sync", apiKey, nil)
			require.NoError(t, err)
		}
		time.Sleep(5 * time.Millisecond) // pacing the clients, not waiting for a result
	}
	require.Eventually(t, func() bool {
		var running int64
		require.NoError(t, db.Model(&models.SyncRun{}).Where("connection_id = ? AND finished_at IS NULL", conn).Count(&running).Error)
		return running == 0
	}, 30*time.Second, 20*time.Millisecond)

	var runs []models.SyncRun
	require.NoError(t, db.Where("connection_id = ?", conn).Find(&runs).Error)
	require.GreaterOrEqual(t, len(runs), 3, "several polls ran")
	sort.Slice(runs, func(i, j int) bool { return runs[i].StartedAt.Before(runs[j].StartedAt) })
	for i := 1; i < len(runs); i++ {
		require.False(t, runs[i].StartedAt.Before(*runs[i-1].FinishedAt),
			"run %s started %s before run %s finished %s", runs[i].ID, runs[i].StartedAt, runs[i-1].ID, *runs[i-1].FinishedAt)
	}
	t.Logf("%d polls of one connection by two serve engines, none overlapping", len(runs))
}
