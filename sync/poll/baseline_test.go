package poll

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/salesforce"
	sffake "github.com/tributary/tributary/connectors/salesforce/fake"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage/storagetest"
	"github.com/tributary/tributary/sync/connections"
)

// TestBaselineCut places records around the connection's creation: the
// first sync is silent only for records last changed before it, less the
// skew allowance; a record without a provider time is silent.
func TestBaselineCut(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", b.connID).Update("created_at", t0).Error)
		b.runner.BaselineSkew = 30 * time.Second
		b.app.set("old", "old@x.test", t0.Add(-time.Hour))
		b.app.set("edge-out", "out@x.test", t0.Add(-30*time.Second-time.Millisecond))
		b.app.set("edge-in", "in@x.test", t0.Add(-30*time.Second))
		b.app.set("after", "after@x.test", t0.Add(300*time.Millisecond))
		b.app.set("untimed", "untimed@x.test", time.Time{})
		res, err := b.run(t)
		require.NoError(t, err)
		assert.Equal(t, Counts{Created: 5, Scanned: 5}, res.Counts, "counts include the silent ones")
		var ids []string
		for _, e := range dataEvents(b.pub.take()) {
			ids = append(ids, e.ConnectionID+"/"+e.UpdateType+"/"+remoteIDOf(t, e))
		}
		assert.Equal(t, []string{b.connID + "/created/edge-in", b.connID + "/created/after"}, ids)
	})
}

// TestSalesforceChangeRightAfterOAuthConnect is the Salesforce
// reproduction through the real OAuth flow (authorize redirect, callback,
// token exchange against the fake): a contact created 0, 0.3, 1 or 3 s after
// the callback made the connection is emitted by the first poll, while a
// contact last changed ten minutes before connecting stays in the silent
// baseline. One clock drives the fake org, the connection service and the
// poller.
func TestSalesforceChangeRightAfterOAuthConnect(t *testing.T) {
	for _, after := range []time.Duration{0, 300 * time.Millisecond, time.Second, 3 * time.Second} {
		t.Run(after.String(), func(t *testing.T) {
			storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
				ctx := t.Context()
				b := setup(t, db)
				f := sffake.New(sffake.WithClock(b.clk.Now), sffake.WithClient("cid", "csecret"))
				srv := httptest.NewServer(f)
				t.Cleanup(srv.Close)
				app := salesforce.New(connectors.AppConfig{ClientID: "cid", ClientSecret: "csecret",
					AuthURL: srv.URL + "/services/oauth2/authorize", TokenURL: srv.URL + "/services/oauth2/token"},
					salesforce.WithClock(b.clk.Now))
				box, err := secrets.New(make([]byte, secrets.KeySize))
				require.NoError(t, err)
				conns, err := connections.New(connections.Config{DB: db, Box: box, Apps: connectors.NewRegistry(app),
					Publisher: b.pub, ExternalURL: "https://trb.example.com", Now: b.clk.Now})
				require.NoError(t, err)
				b.runner.Apps, b.runner.Opener = fakeApps{app}, conns

				org := f.DefaultOrg()
				before, err := f.Create(org, "Contact", map[string]any{"LastName": "Lovelace", "Email": "ada@x.test"})
				require.NoError(t, err)
				b.clk.Add(10 * time.Minute)

				id := oauthConnect(t, conns, srv.Client())
				b.clk.Add(after)
				fresh, err := f.Create(org, "Contact", map[string]any{"LastName": "Hopper", "Email": "grace@x.test"})
				require.NoError(t, err)
				b.clk.Add(2 * time.Second)

				var c models.Connection
				require.NoError(t, db.First(&c, "id = ?", id).Error)
				res, err := b.runner.Run(ctx, &c)
				require.NoError(t, err, "%+v", res)
				require.Equal(t, RunCompleted, res.Status, res.Error)
				require.True(t, res.Initial)
				var got []string
				for _, e := range dataEvents(b.pub.take()) {
					if models.CategoryOf(e.Topic) == models.CategoryConnection {
						continue
					}
					got = append(got, e.Topic+":"+e.UpdateType+":"+remoteIDOf(t, e))
				}
				assert.Equal(t, []string{"crm/contacts:created:" + fresh}, got, "not %s, changed before connecting", before)
			})
		})
	}
}

// oauthConnect runs the connect flow: a session, the provider's authorize
// redirect, and the callback that creates the connection.
func oauthConnect(t *testing.T, conns *connections.Service, hc *http.Client) string {
	t.Helper()
	ctx := context.Background()
	sess, err := conns.CreateSession(ctx, "acc_1", connections.SessionInput{App: salesforce.Name, UserID: "u1",
		UserName: "Gregg", RedirectURL: "https://isv.example.com/done"})
	require.NoError(t, err)
	// The browser opens the connect link: the flow is bound to its nonce.
	_, token, ok := strings.Cut(sess.ConnectURL, "/oauth/start/")
	require.True(t, ok, sess.ConnectURL)
	authorizeURL, _, nonce, err := conns.Start(ctx, token)
	require.NoError(t, err)
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Get(authorizeURL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	redirect, err := conns.BrowserCallback(ctx, loc.Query().Get("state"), loc.Query().Get("code"), "", nonce)
	require.NoError(t, err)
	u, err := url.Parse(redirect)
	require.NoError(t, err)
	id := u.Query().Get("connectionId")
	require.NotEmpty(t, id, redirect)
	return id
}

// remoteIDOf reads remoteId from an event's payload.
func remoteIDOf(t *testing.T, e *models.Envelope) string {
	t.Helper()
	var c models.Common
	require.NoError(t, json.Unmarshal(e.DataPayload, &c))
	return c.RemoteID
}
