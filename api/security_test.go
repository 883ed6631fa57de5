package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/forwarding/signing"
	"github.com/tributary/tributary/forwarding/signing/signingtest"
	"github.com/tributary/tributary/internal/clocktest"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage/storagetest"
	"github.com/tributary/tributary/sync/connections"
)

// secAPI is a server on the real accounts and forwarding services, for the
// security suite: each test below is an attack found by probing a running
// engine, replayed against it.
type secAPI struct {
	url        string
	srv        *httptest.Server
	accts      *accounts.Service
	fwd        *forwarding.Service
	accA, accB string
	keyA, keyB string
	admin      string
	cfg        *config.Config
	clock      *clocktest.Clock
}

func newSecAPI(t *testing.T, db *gorm.DB, tune ...func(*config.Config)) *secAPI {
	t.Helper()
	ctx := context.Background()
	cfg := config.Default()
	for _, f := range tune {
		f(&cfg)
	}
	box, err := secrets.New(make([]byte, secrets.KeySize))
	require.NoError(t, err)
	a := &secAPI{accts: accounts.New(db), cfg: &cfg, clock: clocktest.New(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC))}
	a.accts.WithClock(a.clock.Now)
	a.fwd = forwarding.New(forwarding.Config{DB: db, Box: box, AllowHTTP: true, AllowPrivate: true,
		Logger: slog.New(slog.DiscardHandler), Keys: cfg.Signing})
	accA, keyA, err := a.accts.Create(ctx, "A")
	require.NoError(t, err)
	accB, keyB, err := a.accts.Create(ctx, "B")
	require.NoError(t, err)
	a.accA, a.keyA, a.accB, a.keyB = accA.ID, keyA, accB.ID, keyB
	a.admin, err = a.accts.CreateAdminKey(ctx)
	require.NoError(t, err)
	sw := &switchHandler{}
	a.srv = httptest.NewServer(sw)
	t.Cleanup(a.srv.Close)
	a.url = a.srv.URL
	conns, err := connections.New(connections.Config{DB: db, Box: box, Apps: connectors.NewRegistry(keyApp{}),
		Publisher: a.fwd, Accounts: a.accts, ExternalURL: a.url})
	require.NoError(t, err)
	sw.h = New(Deps{Config: &cfg, Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		Ready: func(context.Context) error { return nil }, Accounts: a.accts, Forwarding: a.fwd, Connections: conns}).Handler()
	return a
}

// do sends a JSON request and decodes the JSON answer.
func (a *secAPI) do(t *testing.T, method, path, key string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	resp := a.raw(t, method, path, key, rd)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	}
	return resp.StatusCode, out
}

func (a *secAPI) raw(t *testing.T, method, path, key string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, a.url+path, body)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := apiClient(t).Do(req)
	require.NoError(t, err)
	return resp
}

func (a *secAPI) getBytes(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp := a.raw(t, http.MethodGet, path, "", nil)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}

// captured is one request a test receiver got.
type captured struct {
	header http.Header
	body   []byte
}

// recorder is a webhook receiver that keeps every request.
type recorder struct {
	mu  sync.Mutex
	got []captured
	*httptest.Server
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, captured{req.Header.Clone(), b})
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) all() []captured {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]captured(nil), r.got...)
}

// Attack: tenant A replays a delivery signed for A (A chose its userId and
// record data) to tenant B's receiver. With one engine-wide JWKS and no
// account in the body, B's documented check said "verified".
func TestSecurityCrossTenantReplayFailsTheAccountCheck(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newSecAPI(t, db)
		rc := newRecorder(t)
		st, wh := a.do(t, http.MethodPost, "/v1/webhooks", a.keyA, map[string]any{"address": rc.URL, "topic": []string{"*"}})
		require.Equal(t, http.StatusCreated, st, wh)
		st, out := a.do(t, http.MethodPost, "/v1/webhooks/"+wh["id"].(string)+"/test", a.keyA, map[string]any{"topic": "crm/contacts"})
		require.Equal(t, http.StatusOK, st, out)
		got := rc.all()
		require.Len(t, got, 1)
		d := got[0]

		var ev map[string]any
		require.NoError(t, json.Unmarshal(d.body, &ev))
		require.Equal(t, a.accA, ev["accountId"], "the signed body names its account")

		st, jwksA := a.getBytes(t, "/.well-known/jwks/"+a.accA+".json")
		require.Equal(t, http.StatusOK, st, string(jwksA))
		st, jwksB := a.getBytes(t, "/.well-known/jwks/"+a.accB+".json")
		require.Equal(t, http.StatusOK, st, string(jwksB))
		st, global := a.getBytes(t, "/.well-known/jwks.json")
		require.Equal(t, http.StatusOK, st)

		// A's documented check passes; B's fails (independent verifier).
		ok, err := signingtest.VerifyForAccount(jwksA, a.accA, d.header, d.body)
		require.NoError(t, err)
		require.True(t, ok, "A's receiver verifies A's delivery")
		ok, err = signingtest.VerifyForAccount(jwksB, a.accB, d.header, d.body)
		require.NoError(t, err)
		require.False(t, ok, "B's receiver must refuse a delivery signed for A")
		// Even a receiver still on the engine-wide JWKS refuses it when it
		// checks the body's accountId.
		ok, err = signingtest.VerifyForAccount(global, a.accB, d.header, d.body)
		require.NoError(t, err)
		require.False(t, ok)

		// The same with package signing (what tributary receive uses).
		var setA, setB, setAll signing.JWKS
		require.NoError(t, json.Unmarshal(jwksA, &setA))
		require.NoError(t, json.Unmarshal(jwksB, &setB))
		require.NoError(t, json.Unmarshal(global, &setAll))
		now := a.fwd.Now()
		require.NoError(t, signing.VerifyDelivery(setA, a.accA, d.header, d.body, signing.DefaultTolerance, now))
		require.ErrorIs(t, signing.VerifyDelivery(setB, a.accB, d.header, d.body, signing.DefaultTolerance, now), signing.ErrUnknownKey)
		require.ErrorIs(t, signing.VerifyDelivery(setAll, a.accB, d.header, d.body, signing.DefaultTolerance, now), signing.ErrWrongAccount)

		// Key sets are per account; unknown accounts have none.
		for _, path := range []string{"/.well-known/jwks/acc_nope.json", "/.well-known/jwks/" + a.accA, "/.well-known/jwks/x.json"} {
			st, body := a.getBytes(t, path)
			require.Equal(t, http.StatusNotFound, st, path+": "+string(body))
		}
	})
}

// Attack: NUL bytes and invalid UTF-8 in paths, queries and JSON bodies
// reached PostgreSQL, which answered 500 in 20+ places — including the
// unauthenticated /oauth/callback?state=%00. Each is now a 400 with the
// contract's error body on both databases.
func TestSecurityNULAndInvalidUTF8Are400(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newSecAPI(t, db)
		st, wh := a.do(t, http.MethodPost, "/v1/webhooks", a.keyA, map[string]any{"address": "https://hooks.example.com/a", "topic": []string{"*"}})
		require.Equal(t, http.StatusCreated, st, wh)
		id := wh["id"].(string)
		cases := []struct {
			name, method, path, key, body string
		}{
			{"callback state NUL", "GET", "/oauth/callback?state=%00&code=x", "", ""},
			{"callback state invalid UTF-8", "GET", "/oauth/callback?state=%ff%fe", "", ""},
			{"callback code NUL", "GET", "/oauth/callback?state=abc&code=a%00b", "", ""},
			{"webhook id NUL", "GET", "/v1/webhooks/wh_%00", a.keyA, ""},
			{"webhook id invalid UTF-8", "GET", "/v1/webhooks/wh_%c3%28", a.keyA, ""},
			{"delete webhook NUL", "DELETE", "/v1/webhooks/%00", a.keyA, ""},
			{"deliveries status NUL", "GET", "/v1/webhooks/" + id + "/deliveries?status=%00", a.keyA, ""},
			{"deliveries cursor invalid", "GET", "/v1/deliveries?cursor=%ff", a.keyA, ""},
			{"events topic NUL", "GET", "/v1/events?topic=crm%00", a.keyA, ""},
			{"events after invalid", "GET", "/v1/events?after=%80", a.keyA, ""},
			{"connections userId NUL", "GET", "/v1/connections?userId=u%00", a.keyA, ""},
			{"connections userId invalid", "GET", "/v1/connections?userId=%fe", a.keyA, ""},
			{"connection id NUL", "GET", "/v1/connections/con_%00", a.keyA, ""},
			{"dead letters webhookId NUL", "GET", "/v1/dead-letters?webhookId=%00", a.keyA, ""},
			{"resend id NUL", "POST", "/v1/deliveries/%00/resend", a.keyA, ""},
			{"jwks account NUL", "GET", "/.well-known/jwks/acc_%00.json", "", ""},
			{"admin account NUL", "PATCH", "/v1/admin/accounts/acc_%00", a.admin, `{"defaultPollInterval":"1h"}`},
			{"query name NUL", "GET", "/v1/webhooks?%00=1", a.keyA, ""},
			{"body address NUL", "POST", "/v1/webhooks", a.keyA, `{"address":"https://a.example/\u0000","topic":["*"]}`},
			{"body topic NUL", "PATCH", "/v1/webhooks/" + id, a.keyA, `{"topic":["crm/contacts\u0000"]}`},
			{"body key NUL", "POST", "/v1/connections", a.keyA, `{"app":"keyapp","userId":"u","credentials":{"api_key\u0000":"good"}}`},
			{"body userId invalid UTF-8", "POST", "/v1/connections", a.keyA, "{\"app\":\"keyapp\",\"userId\":\"u\xff\",\"credentials\":{\"api_key\":\"good\"}}"},
			{"body userName NUL", "POST", "/v1/connections", a.keyA, `{"app":"keyapp","userId":"u","userName":"\u0000","credentials":{"api_key":"good"}}`},
			{"body session NUL", "POST", "/v1/connect-sessions", a.keyA, `{"app":"keyapp","userId":"\u0000","redirectUrl":"https://x.example/"}`},
			{"admin account name NUL", "POST", "/v1/admin/accounts", a.admin, `{"name":"A\u0000"}`},
			{"admin account name invalid", "POST", "/v1/admin/accounts", a.admin, "{\"name\":\"\xc3\x28\"}"},
			{"test topic NUL", "POST", "/v1/webhooks/" + id + "/test", a.keyA, `{"topic":"crm/\u0000"}`},
			{"replay webhookId NUL", "POST", "/v1/dead-letters/replay", a.keyA, `{"webhookId":"\u0000"}`},
		}
		for _, tc := range cases {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			resp := a.raw(t, tc.method, tc.path, tc.key, body)
			raw, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %s", tc.name, raw)
			var out map[string]any
			require.NoError(t, json.Unmarshal(raw, &out), tc.name)
			require.Equal(t, "invalid_request", errCode(out), tc.name)
			require.NotEmpty(t, out["error"].(map[string]any)["message"], tc.name)
		}
		// Nothing was written by any of them.
		st, list := a.do(t, http.MethodGet, "/v1/webhooks", a.keyA, nil)
		require.Equal(t, http.StatusOK, st)
		require.Len(t, list["data"], 1)
		st, list = a.do(t, http.MethodGet, "/v1/connections", a.keyA, nil)
		require.Equal(t, http.StatusOK, st)
		require.Empty(t, list["data"])
	})
}

// Attack: a leaked API key could not be revoked (revoked_at existed, nothing
// set it) and an account could not hold a second key to rotate to.
func TestSecurityAPIKeyLifecycle(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newSecAPI(t, db)
		st, out := a.do(t, http.MethodPost, "/v1/api-keys", a.keyA, map[string]any{"name": "ci"})
		require.Equal(t, http.StatusCreated, st, out)
		second := out["apiKey"].(string)
		secondID := out["id"].(string)
		require.Equal(t, "ci", out["name"])
		require.Regexp(t, `^trb_[0-9A-Za-z]{40}$`, second)

		st, _ = a.do(t, http.MethodGet, "/v1/webhooks", second, nil)
		require.Equal(t, http.StatusOK, st, "the new key works")
		st, list := a.do(t, http.MethodGet, "/v1/api-keys", second, nil)
		require.Equal(t, http.StatusOK, st)
		keys := list["data"].([]any)
		require.Len(t, keys, 2)
		raw, err := json.Marshal(list)
		require.NoError(t, err)
		require.NotContains(t, string(raw), second[len("trb_")+6:], "secrets are shown once, never listed")
		require.NotContains(t, string(raw), "apiKey")
		for _, k := range keys {
			require.NotNil(t, k.(map[string]any)["lastUsedAt"], "both keys were used")
		}

		// lastUsedAt is written at most once a minute.
		var before models.APIKey
		require.NoError(t, db.Take(&before, "id = ?", secondID).Error)
		a.clock.Add(30 * time.Second)
		a.do(t, http.MethodGet, "/v1/webhooks", second, nil)
		var same models.APIKey
		require.NoError(t, db.Take(&same, "id = ?", secondID).Error)
		require.True(t, before.LastUsedAt.Equal(*same.LastUsedAt))
		a.clock.Add(31 * time.Second)
		a.do(t, http.MethodGet, "/v1/webhooks", second, nil)
		require.NoError(t, db.Take(&same, "id = ?", secondID).Error)
		require.True(t, same.LastUsedAt.After(*before.LastUsedAt))

		// B cannot see or revoke A's keys.
		st, list = a.do(t, http.MethodGet, "/v1/api-keys", a.keyB, nil)
		require.Equal(t, http.StatusOK, st)
		require.Len(t, list["data"], 1)
		st, out = a.do(t, http.MethodDelete, "/v1/api-keys/"+secondID, a.keyB, nil)
		require.Equal(t, http.StatusNotFound, st, out)
		st, _ = a.do(t, http.MethodGet, "/v1/webhooks", second, nil)
		require.Equal(t, http.StatusOK, st)

		// A revokes it with its first key: the very next request fails.
		st, _ = a.do(t, http.MethodDelete, "/v1/api-keys/"+secondID, a.keyA, nil)
		require.Equal(t, http.StatusNoContent, st)
		st, out = a.do(t, http.MethodGet, "/v1/webhooks", second, nil)
		require.Equal(t, http.StatusUnauthorized, st)
		require.Equal(t, "unauthorized", errCode(out))
		st, list = a.do(t, http.MethodGet, "/v1/api-keys?limit=1", a.keyA, nil)
		require.Equal(t, http.StatusOK, st)
		require.Len(t, list["data"], 1)
		st, list = a.do(t, http.MethodGet, "/v1/api-keys?limit=1&cursor="+list["nextCursor"].(string), a.keyA, nil)
		require.Equal(t, http.StatusOK, st)
		require.NotNil(t, list["data"].([]any)[0].(map[string]any)["revokedAt"])
		st, _ = a.do(t, http.MethodGet, "/v1/webhooks", a.keyA, nil)
		require.Equal(t, http.StatusOK, st, "the first key still works")

		// Admin: accounts paged, one by id; ISV keys may not.
		st, out = a.do(t, http.MethodGet, "/v1/admin/accounts", a.keyA, nil)
		require.Equal(t, http.StatusForbidden, st, out)
		st, page := a.do(t, http.MethodGet, "/v1/admin/accounts?limit=1", a.admin, nil)
		require.Equal(t, http.StatusOK, st, page)
		require.Len(t, page["data"], 1)
		first := page["data"].([]any)[0].(map[string]any)["id"]
		st, page2 := a.do(t, http.MethodGet, "/v1/admin/accounts?limit=1&cursor="+page["nextCursor"].(string), a.admin, nil)
		require.Equal(t, http.StatusOK, st)
		require.Len(t, page2["data"], 1)
		require.NotEqual(t, first, page2["data"].([]any)[0].(map[string]any)["id"])
		require.ElementsMatch(t, []any{a.accA, a.accB}, []any{first, page2["data"].([]any)[0].(map[string]any)["id"]})
		st, one := a.do(t, http.MethodGet, "/v1/admin/accounts/"+a.accB, a.admin, nil)
		require.Equal(t, http.StatusOK, st)
		require.Equal(t, "B", one["name"])
		st, _ = a.do(t, http.MethodGet, "/v1/admin/accounts/acc_nope", a.admin, nil)
		require.Equal(t, http.StatusNotFound, st)
	})
}

// rotate-secret over HTTP: the new secret comes back once more (no-store),
// with when the previous one stops signing; another account gets 404.
func TestSecurityRotateWebhookSecretRoute(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newSecAPI(t, db)
		st, wh := a.do(t, http.MethodPost, "/v1/webhooks", a.keyA, map[string]any{"address": "https://hooks.example.com/a",
			"topic": []string{"*"}, "signing": map[string]any{"scheme": "standard"}})
		require.Equal(t, http.StatusCreated, st, wh)
		id := wh["id"].(string)
		old := wh["signing"].(map[string]any)["secret"]
		resp := a.raw(t, http.MethodPost, "/v1/webhooks/"+id+"/rotate-secret", a.keyA, strings.NewReader(`{"overlap":"1h"}`))
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, out)
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
		sg := out["signing"].(map[string]any)
		require.NotEqual(t, old, sg["secret"])
		require.NotEmpty(t, sg["previousSecretExpiresAt"])
		st, out = a.do(t, http.MethodPost, "/v1/webhooks/"+id+"/rotate-secret", a.keyB, nil)
		require.Equal(t, http.StatusNotFound, st, out)
		st, out = a.do(t, http.MethodPost, "/v1/webhooks/"+id+"/rotate-secret", a.keyA, map[string]any{"overlap": "nope"})
		require.Equal(t, http.StatusUnprocessableEntity, st, out)
	})
}
