package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/api/openapi/openapitest"
	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
)

// engine is a running `serve` on a real socket.
type engine struct {
	url   string
	db    *gorm.DB
	admin string
}

func startEngine(t *testing.T, dialect string, tune ...func(*config.Config)) *engine {
	t.Helper()
	opts := storagetest.Options(t, dialect)
	c := config.Default()
	c.ListenAddr = "127.0.0.1:0"
	c.DataDir = opts.DataDir
	if opts.DataDir == "" {
		c.DataDir = t.TempDir()
	}
	c.DatabaseURL = opts.URL
	c.MasterKey = secrets.GenerateKey()
	c.Log.Format = "text"
	c.Log.Level = "error"
	c.API.RateBurst = 1000
	c.API.RateLimit = 1000
	for _, f := range tune {
		f(&c)
	}
	require.NoError(t, c.Validate())
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, &c, func(a string) { addr <- a }) }()
	var e engine
	select {
	case a := <-addr:
		e.url = "http://" + a
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done, "graceful shutdown")
	})
	db, err := storage.Open(context.Background(), storage.Options{URL: c.DatabaseURL, DataDir: c.DataDir})
	require.NoError(t, err)
	t.Cleanup(func() { storage.Close(db) })
	e.db = db
	e.admin, err = accounts.New(db).CreateAdminKey(context.Background())
	require.NoError(t, err)
	return &e
}

func (e *engine) do(t *testing.T, method, path, key string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		require.NoError(t, err)
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.url+path, r)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: openapitest.Transport(t, nil)}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 && raw[0] == '{' {
		require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	}
	return resp.StatusCode, out
}

// requireError checks the contract's error body.
func requireError(t *testing.T, status int, body map[string]any, wantStatus int, wantCode string) {
	t.Helper()
	require.Equal(t, wantStatus, status, "%v", body)
	e, ok := body["error"].(map[string]any)
	require.True(t, ok, "error body missing: %v", body)
	require.Equal(t, wantCode, e["code"])
	require.NotEmpty(t, e["message"])
}

func TestServeOperationsAndAuth(t *testing.T) {
	for _, d := range storagetest.Dialects {
		t.Run(d, func(t *testing.T) {
			e := startEngine(t, d)
			st, body := e.do(t, "GET", "/healthz", "", nil)
			require.Equal(t, 200, st)
			require.Equal(t, "ok", body["status"])
			st, _ = e.do(t, "GET", "/readyz", "", nil)
			require.Equal(t, 200, st)
			resp, err := http.Get(e.url + "/metrics")
			require.NoError(t, err)
			m, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Contains(t, string(m), "tributary_http_requests_total")

			// Admin creates an account; the ISV key it returns works as an ISV key only.
			st, body = e.do(t, "POST", "/v1/admin/accounts", e.admin, map[string]any{"name": "Acme"})
			require.Equal(t, 201, st, "%v", body)
			isvKey := body["apiKey"].(string)
			accID := body["accountId"].(string)
			require.True(t, strings.HasPrefix(isvKey, "trb_"))
			require.True(t, strings.HasPrefix(accID, "acc_"))

			for _, tc := range []struct {
				name, method, path, key string
				body                    any
				status                  int
				code                    string
			}{
				{"no key", "POST", "/v1/admin/accounts", "", map[string]any{"name": "x"}, 401, "unauthorized"},
				{"unknown key", "POST", "/v1/admin/accounts", "trb_admin_nope", map[string]any{"name": "x"}, 401, "unauthorized"},
				{"isv key on admin route", "POST", "/v1/admin/accounts", isvKey, map[string]any{"name": "x"}, 403, "forbidden"},
				{"malformed json", "POST", "/v1/admin/accounts", e.admin, `{"name":`, 400, "invalid_request"},
				{"unknown field", "POST", "/v1/admin/accounts", e.admin, map[string]any{"nmae": "x"}, 400, "invalid_request"},
				{"empty name", "POST", "/v1/admin/accounts", e.admin, map[string]any{"name": ""}, 422, "invalid_field"},
				{"too large", "POST", "/v1/admin/accounts", e.admin, `{"name":"` + strings.Repeat("a", 2<<20) + `"}`, 413, "payload_too_large"},
				{"bad duration", "PATCH", "/v1/admin/accounts/" + accID, e.admin, map[string]any{"minPollInterval": "soon"}, 422, "invalid_field"},
				{"missing account", "PATCH", "/v1/admin/accounts/acc_missing", e.admin, map[string]any{"minPollInterval": "1h"}, 404, "not_found"},
				{"no route", "GET", "/v1/nothing-here", isvKey, nil, 404, "not_found"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					st, body := e.do(t, tc.method, tc.path, tc.key, tc.body)
					requireError(t, st, body, tc.status, tc.code)
				})
			}
			var n int64
			e.db.Table("accounts").Count(&n)
			require.EqualValues(t, 1, n, "refused requests wrote nothing")

			st, body = e.do(t, "GET", "/v1/apps", isvKey, nil)
			require.Equal(t, 200, st, "%v", body)
			var names []string
			for _, a := range body["data"].([]any) {
				names = append(names, a.(map[string]any)["name"].(string))
			}
			want := []string{"hubspot", "salesforce", "shopify"}
			if d == storage.SQLite { // the sandbox app is on by default in the embedded setup
				want = []string{"hubspot", "salesforce", "sandbox", "shopify"}
			}
			require.Equal(t, want, names)
			st, body = e.do(t, "GET", "/v1/apps", e.admin, nil)
			requireError(t, st, body, 403, "forbidden")

			st, body = e.do(t, "PATCH", "/v1/admin/accounts/"+accID, e.admin, map[string]any{"defaultPollInterval": "6h", "minPollInterval": "15m"})
			require.Equal(t, 200, st, "%v", body)
			require.Equal(t, "6h", body["defaultPollInterval"])
			require.Equal(t, "15m", body["minPollInterval"])
		})
	}
}

func TestRateLimitPerKey(t *testing.T) {
	c := config.Default()
	c.ListenAddr = "127.0.0.1:0"
	c.DataDir = t.TempDir()
	c.Log.Level = "error"
	c.API.RateLimit = 0.001
	c.API.RateBurst = 2
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, &c, func(a string) { addr <- a }) }()
	url := "http://" + <-addr
	defer func() { cancel(); <-done }()
	db, err := storage.Open(context.Background(), storage.Options{DataDir: c.DataDir})
	require.NoError(t, err)
	defer storage.Close(db)
	key, err := accounts.New(db).CreateAdminKey(context.Background())
	require.NoError(t, err)
	other, err := accounts.New(db).CreateAdminKey(context.Background())
	require.NoError(t, err)
	hit := func(k string) *http.Response {
		req, _ := http.NewRequest("PATCH", url+"/v1/admin/accounts/acc_x", strings.NewReader(`{}`))
		req.Header.Set("Authorization", "Bearer "+k)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	require.Equal(t, 404, hit(key).StatusCode)
	require.Equal(t, 404, hit(key).StatusCode)
	resp := hit(key)
	require.Equal(t, 429, resp.StatusCode)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	require.Equal(t, 404, hit(other).StatusCode, "limits are per key")
}

func TestListenAddressInUseNamesTheKey(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	c := config.Default()
	c.ListenAddr = ln.Addr().String()
	c.DataDir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = serve(ctx, &c, nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), "listen_addr")
}

func TestCLIBootstrap(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) string {
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(append(args, "--data-dir", dir, "--log-level", "error"))
		require.NoError(t, root.ExecuteContext(context.Background()))
		return out.String()
	}
	var acc struct{ AccountID, APIKey string }
	require.NoError(t, json.Unmarshal([]byte(run("accounts", "create", "--name", "Acme", "--json")), &acc))
	require.True(t, strings.HasPrefix(acc.APIKey, "trb_"))
	var adm struct{ AdminKey string }
	require.NoError(t, json.Unmarshal([]byte(run("admin-keys", "create", "--json")), &adm))
	require.True(t, strings.HasPrefix(adm.AdminKey, "trb_admin_"))
	require.Contains(t, run("migrate"), "up to date")

	// webhooks test sends one signed sample event, verifiable with the JWKS.
	rc := newJWKSReceiver(t, "")
	db, err := storage.Open(context.Background(), storage.Options{DataDir: dir})
	require.NoError(t, err)
	var out struct {
		EventID string
		Attempt struct{ StatusCode int }
	}
	require.NoError(t, json.Unmarshal([]byte(run("webhooks", "test", "--endpoint", rc.URL, "--event", "commerce/orders", "--json")), &out))
	require.Equal(t, 200, out.Attempt.StatusCode)
	var kid string
	require.NoError(t, db.Table("signing_keys").Where("account_id = ?", acc.AccountID).Pluck("id", &kid).Error)
	require.NotEmpty(t, kid)
	storage.Close(db)

	root := newRoot()
	root.SetOut(io.Discard)
	root.SetArgs([]string{"migrate", "--database-url", "mysql://nope", "--data-dir", dir})
	err = root.ExecuteContext(context.Background())
	require.ErrorContains(t, err, "database_url")
}
