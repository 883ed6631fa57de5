package sandboxapp_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/sandbox"
	"github.com/tributary/tributary/internal/clocktest"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage/storagetest"
	"github.com/tributary/tributary/sync/connections"
	"github.com/tributary/tributary/sync/poll"
	"github.com/tributary/tributary/sync/sandboxapp"
)

// TestChangeRightAfterConnectIsEmitted is the reproduction on a
// sandbox connection in polling mode: a contact created 0, 0.3, 1 or 3 s
// after the connection was made, before its first poll, is emitted by that
// first poll (it used to vanish into the silent baseline). One clock drives
// the connection service, the app and the poller.
func TestChangeRightAfterConnectIsEmitted(t *testing.T) {
	for _, after := range []time.Duration{0, 300 * time.Millisecond, time.Second, 3 * time.Second} {
		t.Run(after.String(), func(t *testing.T) {
			storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
				ctx := t.Context()
				clk := clocktest.New(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC))
				secret := sandbox.DeriveSecret(make([]byte, secrets.KeySize))
				app := &sandboxapp.Service{DB: db, Secret: secret, Now: clk.Now}
				reg := connectors.NewRegistry(sandbox.New(app, secret))
				box, err := secrets.New(make([]byte, secrets.KeySize))
				require.NoError(t, err)
				pub := &events{}
				conns, err := connections.New(connections.Config{DB: db, Box: box, Apps: reg, Publisher: pub,
					ExternalURL: "http://127.0.0.1:1", Now: clk.Now})
				require.NoError(t, err)
				app.Connections = conns
				runner := &poll.Runner{DB: db, Apps: reg, Opener: conns, Publisher: pub, Now: clk.Now}

				v, err := conns.Create(ctx, "acc_1", connections.CreateInput{App: sandbox.AppName, UserID: "u1",
					Credentials: map[string]string{"mode": sandbox.ModePolling}})
				require.NoError(t, err)
				clk.Add(after)
				id, err := app.Create(ctx, "acc_1", v.ID, "contacts", raw(`{"first_name":"Ada","email":"ada@example.com"}`))
				require.NoError(t, err)
				clk.Add(2 * time.Second) // the first poll starts a tick later

				c, err := conns.Get(ctx, "acc_1", v.ID)
				require.NoError(t, err)
				res, err := runner.Run(ctx, c)
				require.NoError(t, err)
				require.Equal(t, poll.RunCompleted, res.Status, res.Error)
				require.True(t, res.Initial)
				evs := pub.take(v.ID)
				require.Len(t, evs, 1, "the contact created %s after connect", after)
				require.Equal(t, "crm/contacts", evs[0].Topic)
				require.Equal(t, models.UpdateCreated, evs[0].UpdateType)
				var got models.Contact
				require.NoError(t, json.Unmarshal(evs[0].DataPayload, &got))
				require.Equal(t, id, got.RemoteID)

				res, err = runner.Run(ctx, c)
				require.NoError(t, err)
				require.Equal(t, poll.RunCompleted, res.Status, res.Error)
				require.Empty(t, pub.take(v.ID), "the next poll emits it no second time")
			})
		})
	}
}
