package sandboxapp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/sandbox"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage/storagetest"
	"github.com/tributary/tributary/sync/connections"
	"github.com/tributary/tributary/sync/inbound"
	"github.com/tributary/tributary/sync/poll"
	"github.com/tributary/tributary/sync/sandboxapp"
)

// events records what would be published.
type events struct {
	mu  sync.Mutex
	got []*models.Envelope
}

func (e *events) Publish(_ context.Context, _ *gorm.DB, _ string, evs ...*models.Envelope) error {
	e.mu.Lock()
	e.got = append(e.got, evs...)
	e.mu.Unlock()
	return nil
}

// take returns, and forgets, the data events of one connection.
func (e *events) take(connectionID string) []*models.Envelope {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out, keep []*models.Envelope
	for _, ev := range e.got {
		if ev.ConnectionID == connectionID && models.CategoryOf(ev.Topic) != models.CategorySync && models.CategoryOf(ev.Topic) != models.CategoryConnection {
			out = append(out, ev)
		} else if ev.ConnectionID != connectionID {
			keep = append(keep, ev)
		}
	}
	e.got = keep
	return out
}

// TestEndToEnd wires the app as cmd/tributary does — connector in the
// registry, real connections service, inbound receiver behind HTTP and
// processor, poll runner — and checks that writes become events in both modes.
func TestEndToEnd(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		secret := sandbox.DeriveSecret(make([]byte, secrets.KeySize))
		app := &sandboxapp.Service{DB: db, Secret: secret}
		reg := connectors.NewRegistry(sandbox.New(app, secret))
		box, err := secrets.New(make([]byte, secrets.KeySize))
		require.NoError(t, err)
		pub := &events{}
		recv := &inbound.Receiver{DB: db, Apps: reg}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			err := recv.Receive(r.Context(), strings.TrimPrefix(r.URL.Path, "/inbound/"), &connectors.InboundRequest{
				Method: r.Method, URL: "http://" + r.Host + r.URL.String(), Header: r.Header, Body: body, ReceivedAt: time.Now()})
			if err != nil {
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			w.WriteHeader(http.StatusAccepted)
		}))
		t.Cleanup(srv.Close)
		conns, err := connections.New(connections.Config{DB: db, Box: box, Apps: reg, Publisher: pub, ExternalURL: srv.URL})
		require.NoError(t, err)
		app.Connections = conns
		app.InboundURL = conns.InboundURL(sandbox.AppName)
		proc := &inbound.Processor{DB: db, Apps: reg, Opener: conns, Publisher: pub}
		runner := &poll.Runner{DB: db, Apps: reg, Opener: conns, Publisher: pub}

		connect := func(mode string) string {
			v, err := conns.Create(ctx, "acc_1", connections.CreateInput{App: sandbox.AppName, UserID: "u1",
				Credentials: map[string]string{"mode": mode}})
			require.NoError(t, err)
			require.Equal(t, v.ID, v.ExternalID, "the sandbox is routed by connection id")
			return v.ID
		}
		pollNow := func(id string) {
			c, err := conns.Get(ctx, "acc_1", id)
			require.NoError(t, err)
			res, err := runner.Run(ctx, c)
			require.NoError(t, err)
			require.Equal(t, poll.RunCompleted, res.Status, res.Error)
		}
		process := func() {
			_, err := proc.ProcessDue(ctx)
			require.NoError(t, err)
		}

		// Webhook mode: each write arrives as a native webhook.
		hook := connect(sandbox.ModeWebhook)
		pollNow(hook) // the silent first sync
		id, err := app.Create(ctx, "acc_1", hook, "contacts", raw(`{"first_name":"Ada","email":"ada@example.com"}`))
		require.NoError(t, err)
		process()
		evs := pub.take(hook)
		require.Len(t, evs, 1)
		require.Equal(t, "crm/contacts", evs[0].Topic)
		require.Equal(t, models.UpdateCreated, evs[0].UpdateType)
		require.Equal(t, models.SourceWebhook, evs[0].Source)
		var c models.Contact
		require.NoError(t, json.Unmarshal(evs[0].DataPayload, &c))
		require.Equal(t, id, c.RemoteID)
		require.Equal(t, "Ada", c.FirstName)

		require.NoError(t, app.Update(ctx, "acc_1", hook, "contacts", id, raw(`{"email":"ada@analytical.example"}`)))
		process()
		evs = pub.take(hook)
		require.Len(t, evs, 1)
		require.Equal(t, models.UpdateUpdated, evs[0].UpdateType)
		require.Equal(t, []string{"email"}, evs[0].ChangedFields)
		require.JSONEq(t, `"ada@example.com"`, string(evs[0].Previous["email"]))

		pollNow(hook)
		require.Empty(t, pub.take(hook), "a poll after the webhook emits nothing again")

		require.NoError(t, app.Delete(ctx, "acc_1", hook, "contacts", id))
		process()
		evs = pub.take(hook)
		require.Len(t, evs, 1)
		require.Equal(t, models.UpdateDeleted, evs[0].UpdateType)

		// Polling mode: the next poll finds the writes.
		polled := connect(sandbox.ModePolling)
		pollNow(polled)
		oid, err := app.Create(ctx, "acc_1", polled, "orders", raw(`{"order_number":1001,"total_price":"19.90","currency":"eur"}`))
		require.NoError(t, err)
		process()
		require.Empty(t, pub.take(polled), "no webhook in polling mode")
		pollNow(polled)
		evs = pub.take(polled)
		require.Len(t, evs, 1)
		require.Equal(t, "commerce/orders", evs[0].Topic)
		require.Equal(t, models.SourcePoll, evs[0].Source)
		var o models.Order
		require.NoError(t, json.Unmarshal(evs[0].DataPayload, &o))
		require.Equal(t, oid, o.RemoteID)
		require.Equal(t, "EUR", o.Currency)
		require.NoError(t, app.Delete(ctx, "acc_1", polled, "orders", oid))
		pollNow(polled)
		evs = pub.take(polled)
		require.Len(t, evs, 1)
		require.Equal(t, models.UpdateDeleted, evs[0].UpdateType)
	})
}
