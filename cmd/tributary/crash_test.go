package main

import (
	"context"
	"os"
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

// crashEngine runs `serve` in process on one database across restarts.
type crashEngine struct {
	c      config.Config
	url    string
	cancel context.CancelFunc
	done   chan error
}

func (ce *crashEngine) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	ce.cancel, ce.done = cancel, make(chan error, 1)
	go func() { ce.done <- serve(ctx, &ce.c, func(a string) { addr <- a }) }()
	select {
	case a := <-addr:
		ce.url = "http://" + a
	case err := <-ce.done:
		t.Fatalf("serve: %v", err)
	}
}

// stop cancels serve's context (a stop mid-poll) and waits for it to return.
func (ce *crashEngine) stop(t *testing.T) {
	t.Helper()
	if ce.cancel == nil {
		return
	}
	ce.cancel()
	require.NoError(t, <-ce.done, "shutdown")
	ce.cancel = nil
}

// TestCrashMidPoll is the capture crash test: a polling sandbox connection
// with a few thousand new records, the engine stopped while the poll that
// finds them is in progress (some pages reconciled and published, others
// not), restarted on the same database, then audited against a receiver
// that verifies every delivery with the JWKS: every record created exactly
// one event id, none lost, none duplicated into a second event.
func TestCrashMidPoll(t *testing.T) {
	t.Parallel()
	records := 2000
	if os.Getenv("TRIBUTARY_CHAOS") != "" {
		records = 10000
	}
	for _, d := range storagetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			opts := storagetest.Options(t, d)
			ce := &crashEngine{c: config.Default()}
			ce.c.ListenAddr = "127.0.0.1:0"
			ce.c.DataDir = opts.DataDir
			if ce.c.DataDir == "" {
				ce.c.DataDir = t.TempDir()
			}
			ce.c.DatabaseURL = opts.URL
			ce.c.MasterKey = secrets.GenerateKey()
			ce.c.Log.Format, ce.c.Log.Level = "text", "error"
			ce.c.API.RateBurst, ce.c.API.RateLimit = 100000, 100000
			ce.c.Scheduler.Tick, ce.c.Dispatcher.Tick = 50*time.Millisecond, 20*time.Millisecond
			// Small pages: the poll over the records spans many transactions,
			// so the stop lands in the middle of it (pages are pipelined and fast).
			ce.c.Scheduler.PageSize = 25
			ce.c.API.ShutdownTimeout = 5 * time.Second
			ce.c.Dispatcher.CircuitCooldown = time.Second
			allowPrivate(&ce.c)
			yes := true
			ce.c.Sandbox = &yes
			require.NoError(t, ce.c.Validate())
			ce.start(t)
			t.Cleanup(func() { t0 := time.Now(); ce.stop(t); t.Logf("final stop took %s", time.Since(t0)) })
			db, err := storage.Open(context.Background(), storage.Options{URL: ce.c.DatabaseURL, DataDir: ce.c.DataDir})
			require.NoError(t, err)
			t.Cleanup(func() { storage.Close(db) })
			admin, err := accounts.New(db).CreateAdminKey(context.Background())
			require.NoError(t, err)

			api := &chaos.Client{URL: ce.url}
			st, acc, err := api.Do("POST", "/v1/admin/accounts", admin, map[string]any{"name": "Crash"})
			require.NoError(t, err)
			require.Equal(t, 201, st, "%v", acc)
			key := acc["apiKey"].(string)
			rc := chaos.NewReceiver(ce.url+"/.well-known/jwks.json", 42, 2*time.Second, nil)
			t.Cleanup(rc.Close)
			st, body, err := api.Do("POST", "/v1/webhooks", key, map[string]any{"address": rc.URL, "topic": []string{"crm/*"},
				"retry": map[string]any{"schedule": []string{"1s", "1s", "1s", "1s", "1s", "1s", "1s", "1s", "1s", "1s"}}})
			require.NoError(t, err)
			require.Equal(t, 201, st, "%v", body)
			require.NoError(t, rc.Prefetch())
			w := chaos.NewWorld(api, db, key, 42)
			conn, err := w.Connect("polling")
			require.NoError(t, err)

			// A few thousand records, found by one poll.
			require.NoError(t, w.Seed(conn, records))
			st, _, err = api.Do("POST", "/v1/connections/"+conn+"/sync", key, nil)
			require.NoError(t, err)
			require.Equal(t, 202, st)
			// Stop once the poll has published part of them.
			var published int64
			require.Eventually(t, func() bool {
				require.NoError(t, db.Model(&models.Event{}).Where("topic = ?", "crm/contacts").Count(&published).Error)
				return published > 0
			}, 30*time.Second, time.Millisecond)
			tStop := time.Now()
			ce.stop(t)
			t.Logf("stop took %s", time.Since(tStop).Round(time.Millisecond))
			require.NoError(t, db.Model(&models.Event{}).Where("topic = ?", "crm/contacts").Count(&published).Error)
			var row models.Connection
			require.NoError(t, db.Where("id = ?", conn).Take(&row).Error)
			t.Logf("stopped mid-poll: %d of %d changes published; connection %s, next poll %s, last error %q",
				published, records, row.Status, row.NextSyncAt.Format(time.RFC3339), row.LastError)
			require.Less(t, published, int64(records), "the stop came before the poll ended")

			// Restart on the same database; a poll resumes (asked for, or
			// when a stale lease is due).
			// No process runs now, so no claim is held: a lease left behind
			// (a connection still "syncing"; deliveries claimed as serve
			// stopped, before 60e2ead) would otherwise wait out its expiry
			// (5 min; 90 s).
			now := time.Now().UTC()
			require.NoError(t, db.Exec("UPDATE connections SET next_sync_at = ? WHERE status = ?", now, models.ConnectionSyncing).Error)
			require.NoError(t, db.Exec("UPDATE deliveries SET next_attempt_at = ? WHERE status IN ? AND lease_token <> ''",
				now, []string{models.DeliveryPending, models.DeliveryFailed}).Error)
			ce.start(t)
			api.URL = ce.url
			rc.SetJWKSURL(ce.url + "/.well-known/jwks.json")
			tSettle := time.Now()
			require.NoError(t, w.Settle(60*time.Second))
			t.Logf("resumed poll done in %s", time.Since(tSettle).Round(time.Millisecond))
			t.Cleanup(func() {
				if t.Failed() {
					var ds []models.Delivery
					db.Where("status IN ?", []string{"pending", "failed"}).Limit(5).Find(&ds)
					for _, d := range ds {
						t.Logf("delivery %s %s attempts %d next %s lease %q err %q", d.ID, d.Status, d.Attempts, d.NextAttemptAt, d.LeaseToken, d.LastError)
					}
				}
			})
			require.Eventually(t, func() bool {
				var queued, inbox int64
				require.NoError(t, db.Model(&models.Delivery{}).Where("status IN ?", []string{"pending", "failed"}).Count(&queued).Error)
				require.NoError(t, db.Model(&models.InboxItem{}).Where("processed_at IS NULL").Count(&inbox).Error)
				return queued == 0 && inbox == 0
			}, 60*time.Second, 20*time.Millisecond)

			t.Logf("drained in %s", time.Since(tSettle).Round(time.Millisecond))
			rep := chaos.Audit(t.Name(), 42, w.Changes(), rc.Log())
			t.Log("\n" + rep.String())
			require.NoError(t, rep.Err())
			require.Equal(t, records, rep.Changes)
			require.Equal(t, records, rep.Events, "one event per record: no duplicate event for a change")
			var events int64
			require.NoError(t, db.Model(&models.Event{}).Where("topic = ?", "crm/contacts").Count(&events).Error)
			require.EqualValues(t, records, events, "one stored event per change")
		})
	}
}
