package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors/sandbox"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/sync/sandboxapp"
)

func TestMain(m *testing.M) {
	code := m.Run()
	CleanupBinary()
	os.Exit(code)
}

// Long reports whether the long variants run (TRIBUTARY_CHAOS=1, `make chaos`).
func long() bool { return os.Getenv("TRIBUTARY_CHAOS") != "" }

// seed is fixed per test (printed in every audit); TRIBUTARY_CHAOS_SEED
// replays another.
func seed(def uint64) uint64 {
	if s, err := strconv.ParseUint(os.Getenv("TRIBUTARY_CHAOS_SEED"), 10, 64); err == nil {
		return s
	}
	return def
}

// subscription is a crm/* + commerce/* webhook with a 1 s timeout and thirty
// 1 s retries, so a run converges quickly despite the receiver's faults.
func subscription(address string) map[string]any {
	sched := make([]string, 30)
	for i := range sched {
		sched[i] = "1s"
	}
	return map[string]any{"address": address, "topic": []string{"crm/*", "commerce/*"}, "timeoutSeconds": 1,
		"retry": map[string]any{"schedule": sched}}
}

// setup starts an engine with a chaos receiver subscribed and a World with
// one webhook-mode and one polling-mode sandbox connection.
func setup(t *testing.T, dialect string, s uint64, weights Weights, extra ...string) (*Engine, *Receiver, *World) {
	t.Helper()
	e := NewEngine(t, dialect, extra...)
	key := e.Account("Chaos")
	rc := NewReceiver(e.URL+"/.well-known/jwks.json", s, time.Second, weights)
	t.Cleanup(rc.Close)
	e.Must("POST", "/v1/webhooks", key, subscription(rc.URL), 201)
	require.NoError(t, rc.Prefetch())
	w := NewWorld(e, e.DB, key, s)
	for _, mode := range []string{sandbox.ModeWebhook, sandbox.ModePolling} {
		_, err := w.Connect(mode)
		require.NoError(t, err)
	}
	return e, rc, w
}

// finish drains the engine, audits the receiver's log and prints the table.
func finish(t *testing.T, e *Engine, rc *Receiver, w *World, hurry bool, r func(*Report)) *Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	require.NoError(t, Drain(ctx, e, hurry))
	rep := Audit(t.Name(), rc.Seed, w.Changes(), rc.Log())
	if r != nil {
		r(rep)
	}
	t.Log("\n" + rep.String())
	require.NoError(t, rep.Err())
	require.Zero(t, e.Dead(), "no delivery dead-lettered")
	return rep
}

// engineConns lets an in-process sandbox app find connections in the
// engine's database while the engine is down.
type engineConns struct{ e *Engine }

func (c engineConns) Get(ctx context.Context, accountID, id string) (*models.Connection, error) {
	var row models.Connection
	if err := c.e.DB.WithContext(ctx).Where("id = ? AND account_id = ?", id, accountID).Take(&row).Error; err != nil {
		return nil, models.Errorf(models.ErrCodeNotFound, "no connection %s", id)
	}
	return &row, nil
}

// writeWhileDown creates a contact in the webhook-mode connection while the
// engine is down: the sandbox app saves it, its webhook POST fails, and only
// the next poll can capture it.
func writeWhileDown(t *testing.T, e *Engine, w *World) {
	t.Helper()
	key, err := secrets.ParseKey(e.MasterKey)
	require.NoError(t, err)
	app := sandboxapp.New(e.DB, engineConns{e}, sandbox.DeriveSecret(key), e.URL+"/inbound/sandbox")
	for _, conn := range w.Conns {
		if w.Mode[conn] != sandbox.ModeWebhook {
			continue
		}
		var row models.Connection
		require.NoError(t, e.DB.Where("id = ?", conn).Take(&row).Error)
		m := w.Marker()
		fields, _ := json.Marshal(map[string]any{"first_name": "Offline", "email": m})
		rid, err := app.Create(context.Background(), row.AccountID, conn, "contacts", fields)
		var me *models.Error
		require.True(t, errors.As(err, &me) && me.Code == models.ErrCodeUnavailable, "webhook to a dead engine fails: %v", err)
		require.NotEmpty(t, rid, "the record is saved anyway")
		w.Record(Change{ConnectionID: conn, Topic: "crm/contacts", RemoteID: rid, Kind: "created", Marker: m})
	}
}
