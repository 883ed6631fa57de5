package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/api/openapi/openapitest"
	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/hubspot"
	"github.com/tributary/tributary/connectors/hubspot/fake"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage/storagetest"
	"github.com/tributary/tributary/sync/connections"
)

// keyApp is a credentials-connected app: api_key "good" is accepted.
type keyApp struct{}

func (keyApp) Info() connectors.Info {
	return connectors.Info{Name: "keyapp", DisplayName: "Key App", Category: models.CategoryCRM, Auth: connectors.AuthCredentials}
}

func (keyApp) ValidateCredentials(_ context.Context, creds map[string]string) (string, map[string]string, error) {
	if creds["api_key"] != "good" {
		return "", nil, errors.New("bad key")
	}
	return "", nil, nil
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, *gorm.DB, string, ...*models.Envelope) error { return nil }

// connAPI is a server on the real connections and accounts services.
type connAPI struct {
	url            string
	accA           string
	keyA, keyB     string
	admin          string
	hubspot        *fake.Server
	hubspotURL     string
	providerClient *http.Client
}

func newConnAPI(t *testing.T, db *gorm.DB) *connAPI {
	t.Helper()
	ctx := context.Background()
	accts := accounts.New(db)
	accA, keyA, err := accts.Create(ctx, "A")
	require.NoError(t, err)
	_, keyB, err := accts.Create(ctx, "B")
	require.NoError(t, err)
	// A returns its end users to the ISV's app; B keeps the default.
	_, err = accts.Update(ctx, accA.ID, accounts.Update{AllowedRedirectOrigins: &[]string{"https://isv.example.com"}})
	require.NoError(t, err)
	admin, err := accts.CreateAdminKey(ctx)
	require.NoError(t, err)

	hs := fake.New()
	hsSrv := httptest.NewServer(hs)
	t.Cleanup(hsSrv.Close)
	hub := hubspot.New(connectors.AppConfig{ClientID: hs.ClientID(), ClientSecret: hs.ClientSecret(), BaseURL: hsSrv.URL,
		AuthURL: hsSrv.URL + "/oauth/authorize", TokenURL: hsSrv.URL + "/oauth/2026-03/token"}, hubspot.WithClock(hs.Now))

	box, err := secrets.New(make([]byte, secrets.KeySize))
	require.NoError(t, err)
	cfg := config.Default()
	// The API server's own URL is only known once it listens.
	h := &switchHandler{}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	cfg.PublicURL = srv.URL
	svc, err := connections.New(connections.Config{
		DB: db, Box: box, Apps: connectors.NewRegistry(keyApp{}, hub), Publisher: nopPublisher{}, Accounts: accts,
		ExternalURL: srv.URL, HTTP: hsSrv.Client(), Now: hs.Now,
	})
	require.NoError(t, err)
	h.h = New(Deps{Config: &cfg, Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		Ready: func(context.Context) error { return nil }, Accounts: accts, Connections: svc}).Handler()
	return &connAPI{url: srv.URL, accA: accA.ID, keyA: keyA, keyB: keyB, admin: admin, hubspot: hs, hubspotURL: hsSrv.URL, providerClient: hsSrv.Client()}
}

type switchHandler struct{ h http.Handler }

func (s *switchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.ServeHTTP(w, r) }

// do sends a request and decodes the JSON answer (nil for an empty body).
func (a *connAPI) do(t *testing.T, method, path, key string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.url+path, rd)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := apiClient(t).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if len(raw) == 0 {
		return resp.StatusCode, nil
	}
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	return resp.StatusCode, out
}

// apiClient follows no redirects and checks every answer against the
// OpenAPI document.
func apiClient(t *testing.T) *http.Client {
	return &http.Client{Transport: openapitest.Transport(t, nil),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func errCode(out map[string]any) string {
	e, _ := out["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func TestConnectionRoutes(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newConnAPI(t, db)
		status, out := a.do(t, http.MethodPost, "/v1/connections", a.keyA, map[string]any{
			"app": "keyapp", "userId": "u1", "userName": "Gregg", "credentials": map[string]string{"api_key": "good"}, "pollInterval": "1h"})
		require.Equal(t, http.StatusCreated, status, out)
		id := out["id"].(string)
		assert.Equal(t, "active", out["status"])
		assert.Equal(t, "1h", out["pollInterval"])
		assert.Equal(t, id, out["externalId"])
		assert.NotContains(t, out, "credentials")

		for _, tc := range []struct {
			name   string
			body   any
			status int
			code   string
		}{
			{"unknown field", map[string]any{"app": "keyapp", "userId": "u", "bogus": 1}, 400, "invalid_request"},
			{"unknown app", map[string]any{"app": "nope", "userId": "u"}, 422, "invalid_field"},
			{"oauth app", map[string]any{"app": "hubspot", "userId": "u"}, 422, "invalid_field"},
			{"below floor", map[string]any{"app": "keyapp", "userId": "u", "credentials": map[string]string{"api_key": "good"}, "pollInterval": "1m"}, 422, "invalid_field"},
		} {
			status, out := a.do(t, http.MethodPost, "/v1/connections", a.keyA, tc.body)
			assert.Equal(t, tc.status, status, tc.name)
			assert.Equal(t, tc.code, errCode(out), tc.name)
		}

		status, out = a.do(t, http.MethodGet, "/v1/connections?userId=u1&limit=10", a.keyA, nil)
		require.Equal(t, http.StatusOK, status)
		assert.Len(t, out["data"], 1)
		assert.Nil(t, out["nextCursor"])
		status, out = a.do(t, http.MethodGet, "/v1/connections?limit=0", a.keyA, nil)
		assert.Equal(t, http.StatusBadRequest, status, out)

		status, out = a.do(t, http.MethodGet, "/v1/connections/"+id, a.keyA, nil)
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, "u1", out["userId"])

		status, out = a.do(t, http.MethodPatch, "/v1/connections/"+id, a.keyA, map[string]any{"pollInterval": "2m"})
		assert.Equal(t, http.StatusUnprocessableEntity, status)
		assert.Equal(t, "pollInterval", out["error"].(map[string]any)["field"])
		status, out = a.do(t, http.MethodPatch, "/v1/connections/"+id, a.keyA, map[string]any{"pollInterval": "6h"})
		require.Equal(t, http.StatusOK, status, out)
		assert.Equal(t, "6h", out["pollInterval"])

		// Admin: below the floor; ISV keys may not use the admin route.
		status, _ = a.do(t, http.MethodPatch, "/v1/admin/connections/"+id, a.keyA, map[string]any{"pollInterval": "2m"})
		assert.Equal(t, http.StatusForbidden, status)
		status, out = a.do(t, http.MethodPatch, "/v1/admin/connections/"+id, a.admin, map[string]any{"pollInterval": "2m"})
		require.Equal(t, http.StatusOK, status, out)
		assert.Equal(t, "2m", out["pollInterval"])

		status, out = a.do(t, http.MethodPost, "/v1/connections/"+id+"/sync", a.keyA, nil)
		require.Equal(t, http.StatusAccepted, status, out)

		// Another account sees nothing.
		for _, r := range []struct{ method, path string }{
			{http.MethodGet, "/v1/connections/" + id}, {http.MethodPatch, "/v1/connections/" + id},
			{http.MethodPost, "/v1/connections/" + id + "/sync"}, {http.MethodDelete, "/v1/connections/" + id},
		} {
			var body any
			if r.method == http.MethodPatch {
				body = map[string]any{"pollInterval": "6h"}
			}
			status, out := a.do(t, r.method, r.path, a.keyB, body)
			assert.Equal(t, http.StatusNotFound, status, r)
			assert.Equal(t, "not_found", errCode(out), r)
		}
		status, out = a.do(t, http.MethodGet, "/v1/connections", a.keyB, nil)
		require.Equal(t, http.StatusOK, status)
		assert.Empty(t, out["data"])

		status, _ = a.do(t, http.MethodDelete, "/v1/connections/"+id, a.keyA, nil)
		assert.Equal(t, http.StatusNoContent, status)
		status, _ = a.do(t, http.MethodGet, "/v1/connections/"+id, a.keyA, nil)
		assert.Equal(t, http.StatusNotFound, status)
	})
}

func TestConnectSessionRoutes(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newConnAPI(t, db)
		status, out := a.do(t, http.MethodPost, "/v1/connect-sessions", a.keyA, map[string]any{
			"app": "hubspot", "userId": "u1", "userName": "Gregg", "redirectUrl": "https://isv.example.com/done"})
		require.Equal(t, http.StatusCreated, status, out)
		assert.NotEmpty(t, out["expiresAt"])
		authURL := out["url"].(string)
		connectURL := out["connectUrl"].(string)

		// Attack: the provider url used directly leaves the flow bound to no
		// browser; its callback is refused and the session stays usable.
		hc := a.providerClient
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, err := hc.Get(authURL)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusFound, resp.StatusCode)
		unbound := resp.Header.Get("Location")
		require.Contains(t, unbound, a.url+"/oauth/callback?")
		status, out = a.do(t, http.MethodGet, unbound[len(a.url):], "", nil)
		require.Equal(t, http.StatusBadRequest, status, out)
		require.Contains(t, out["error"].(map[string]any)["message"], "connect link")

		// The end user's browser opens connectUrl (binding cookie), the
		// provider redirects it to /oauth/callback …
		jar, err := cookiejar.New(nil)
		require.NoError(t, err)
		browser := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err = browser.Get(connectURL)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusFound, resp.StatusCode)
		resp, err = browser.Get(resp.Header.Get("Location"))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusFound, resp.StatusCode)
		callback := resp.Header.Get("Location")
		require.Contains(t, callback, a.url+"/oauth/callback?")

		// … which creates the connection and sends the user to the ISV.
		resp, err = browser.Get(callback)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusFound, resp.StatusCode)
		loc, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		assert.Equal(t, "isv.example.com", loc.Host)
		id := loc.Query().Get("connectionId")
		require.NotEmpty(t, id)
		status, out = a.do(t, http.MethodGet, "/v1/connections/"+id, a.keyA, nil)
		require.Equal(t, http.StatusOK, status)
		assert.Equal(t, "hubspot", out["app"])

		// The same state again, or none: 400 with the contract body.
		resp, err = browser.Get(callback)
		require.NoError(t, err)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Contains(t, string(raw), `"code":"invalid_request"`)
		status, out = a.do(t, http.MethodGet, "/oauth/callback?state=nope&code=x", "", nil)
		assert.Equal(t, http.StatusBadRequest, status)
		assert.Equal(t, "invalid_request", errCode(out))

		status, out = a.do(t, http.MethodPost, "/v1/connect-sessions", a.keyA, map[string]any{
			"app": "hubspot", "userId": "u1", "redirectUrl": "not a url"})
		assert.Equal(t, http.StatusUnprocessableEntity, status)
		assert.Equal(t, "redirectUrl", out["error"].(map[string]any)["field"])
	})
}

func TestConnectionRoutesUnavailable(t *testing.T) {
	srv := inboundServer(t, nil)
	status, out := post(t, srv.URL+"/oauth/callback", nil, nil)
	assert.Equal(t, http.StatusMethodNotAllowed, status, out)
	resp, err := apiClient(t).Get(srv.URL + "/oauth/callback?state=x")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

// TestAdminAccountPollSettingsReschedule: an admin lowering an account's
// default poll interval moves its connections' next poll at once (to the
// last poll plus the new interval), and a value under the deployment's
// admin minimum is refused naming that limit.
func TestAdminAccountPollSettingsReschedule(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newConnAPI(t, db)
		status, out := a.do(t, http.MethodPost, "/v1/connections", a.keyA,
			map[string]any{"app": "keyapp", "userId": "u1", "credentials": map[string]string{"api_key": "good"}})
		require.Equal(t, http.StatusCreated, status, out)
		id := out["id"].(string)
		last := time.Now().UTC().Truncate(time.Second).Add(-10 * time.Minute)
		require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", id).
			Updates(map[string]any{"last_sync_at": last, "next_sync_at": last.Add(12 * time.Hour)}).Error)

		status, out = a.do(t, http.MethodPatch, "/v1/admin/accounts/"+a.accA, a.admin, map[string]any{"defaultPollInterval": "30s"})
		require.Equal(t, http.StatusUnprocessableEntity, status, out)
		assert.Contains(t, out["error"].(map[string]any)["message"], "scheduler.min_admin_poll_interval")

		status, out = a.do(t, http.MethodPatch, "/v1/admin/accounts/"+a.accA, a.admin, map[string]any{"defaultPollInterval": "1h"})
		require.Equal(t, http.StatusOK, status, out)
		status, out = a.do(t, http.MethodGet, "/v1/connections/"+id, a.keyA, nil)
		require.Equal(t, http.StatusOK, status, out)
		assert.Equal(t, "1h", out["pollInterval"])
		assert.Equal(t, last.Add(time.Hour).Format(time.RFC3339), out["nextSyncAt"])
	})
}
