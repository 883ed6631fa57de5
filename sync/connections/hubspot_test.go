package connections

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/hubspot"
	"github.com/tributary/tributary/connectors/hubspot/fake"
	"github.com/tributary/tributary/storage/storagetest"
)

// TestHubSpotConnect runs the connect flow and a token refresh against the
// HubSpot connector and its provider fake.
func TestHubSpotConnect(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		hs := fake.New()
		srv := httptest.NewServer(hs)
		t.Cleanup(srv.Close)
		b.clock.Set(hs.Now())
		app := hubspot.New(connectors.AppConfig{
			ClientID: hs.ClientID(), ClientSecret: hs.ClientSecret(), BaseURL: srv.URL,
			AuthURL: srv.URL + "/oauth/authorize", TokenURL: srv.URL + "/oauth/2026-03/token",
		}, hubspot.WithClock(hs.Now))
		b.svc.apps = registry{"hubspot": app}
		b.svc.http = srv.Client()

		sess, err := b.svc.CreateSession(ctx, b.accA, SessionInput{App: "hubspot", UserID: "u1", RedirectURL: "https://isv.example.com/done"})
		require.NoError(t, err)
		hc := srv.Client()
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := hc.Get(sess.URL)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusFound, resp.StatusCode)
		loc, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		redirect, err := b.callback(ctx, loc.Query().Get("state"), loc.Query().Get("code"), "")
		require.NoError(t, err)
		ru, _ := url.Parse(redirect)
		row := b.row(t, ru.Query().Get("connectionId"))
		_, err = strconv.ParseInt(row.ExternalID, 10, 64)
		require.NoError(t, err, "ExternalID is the portal id")
		assert.Contains(t, row.Metadata, `"hubId":"`+row.ExternalID+`"`)

		conn, err := b.svc.Open(ctx, &row)
		require.NoError(t, err)
		list := func() error {
			return app.ListChanges(ctx, conn, connectors.ListRequest{Object: "contacts"}, func(connectors.Page) error { return nil })
		}
		require.NoError(t, list())

		// 29 minutes on, the 30-minute token is refreshed before use and stored.
		hs.Advance(29 * time.Minute)
		b.clock.Advance(29 * time.Minute)
		before, _ := b.svc.openCredentials(&row)
		require.NoError(t, list())
		stored := b.row(t, row.ID)
		after, err := b.svc.openCredentials(&stored)
		require.NoError(t, err)
		assert.NotEqual(t, before[CredAccessToken], after[CredAccessToken])
		assert.Equal(t, before[CredRefreshToken], after[CredRefreshToken], "HubSpot refresh tokens do not rotate")
	})
}
