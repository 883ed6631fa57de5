package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
)

// sandboxCall is one call the fake sandbox app got.
type sandboxCall struct {
	op, account, conn, object, remoteID string
	fields                              string
}

// fakeSandbox records calls and answers err (or "sbx_1" for creates).
type fakeSandbox struct {
	calls []sandboxCall
	err   error
}

func (f *fakeSandbox) Create(_ context.Context, acc, conn, obj string, fields json.RawMessage) (string, error) {
	f.calls = append(f.calls, sandboxCall{"create", acc, conn, obj, "", string(fields)})
	if f.err != nil {
		return "", f.err
	}
	return "sbx_1", nil
}

func (f *fakeSandbox) Update(_ context.Context, acc, conn, obj, id string, fields json.RawMessage) error {
	f.calls = append(f.calls, sandboxCall{"update", acc, conn, obj, id, string(fields)})
	return f.err
}

func (f *fakeSandbox) Delete(_ context.Context, acc, conn, obj, id string) error {
	f.calls = append(f.calls, sandboxCall{"delete", acc, conn, obj, id, ""})
	return f.err
}

// sandboxAPI serves the API with sb as the sandbox app (nil: none) and
// returns its URL, an ISV key with its account id, and an admin key.
func sandboxAPI(t *testing.T, sb Sandbox) (url, key, accountID, admin string) {
	t.Helper()
	db := storagetest.New(t, storage.SQLite)
	accts := accounts.New(db)
	acc, key, err := accts.Create(t.Context(), "Acme")
	require.NoError(t, err)
	admin, err = accts.CreateAdminKey(t.Context())
	require.NoError(t, err)
	cfg := config.Default()
	cfg.API.MaxBodyBytes = 4096
	d := Deps{Config: &cfg, Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		Ready: func(context.Context) error { return nil }, Accounts: accts}
	if sb != nil {
		d.Sandbox = sb
	}
	srv := httptest.NewServer(New(d).Handler())
	t.Cleanup(srv.Close)
	return srv.URL, key, acc.ID, admin
}

func sandboxDo(t *testing.T, method, url, key, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
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

func TestSandboxRoutes(t *testing.T) {
	sb := &fakeSandbox{}
	url, key, acc, admin := sandboxAPI(t, sb)

	st, out := sandboxDo(t, "POST", url+"/v1/sandbox/con_1/contacts", key, `{"first_name":"Ada","mailing_address":{"city":"London"}}`)
	require.Equal(t, http.StatusCreated, st, out)
	require.Equal(t, map[string]any{"remoteId": "sbx_1"}, out)
	st, out = sandboxDo(t, "PATCH", url+"/v1/sandbox/con_1/contacts/sbx_1", key, `{"first_name":null}`)
	require.Equal(t, http.StatusOK, st, out)
	require.Equal(t, map[string]any{"remoteId": "sbx_1"}, out)
	st, out = sandboxDo(t, "DELETE", url+"/v1/sandbox/con_1/contacts/sbx_1", key, "")
	require.Equal(t, http.StatusNoContent, st, out)
	require.Equal(t, []sandboxCall{
		{"create", acc, "con_1", "contacts", "", `{"first_name":"Ada","mailing_address":{"city":"London"}}`},
		{"update", acc, "con_1", "contacts", "sbx_1", `{"first_name":null}`},
		{"delete", acc, "con_1", "contacts", "sbx_1", ""},
	}, sb.calls, "the account comes from the key, the body is passed as sent")

	for _, tc := range []struct {
		name, method, path, key, body string
		status                        int
		code                          string
	}{
		{"no key", "POST", "/v1/sandbox/con_1/contacts", "", `{}`, 401, "unauthorized"},
		{"admin key", "POST", "/v1/sandbox/con_1/contacts", admin, `{}`, 403, "forbidden"},
		{"empty body", "POST", "/v1/sandbox/con_1/contacts", key, ``, 400, "invalid_request"},
		{"malformed", "POST", "/v1/sandbox/con_1/contacts", key, `{"a":`, 400, "invalid_request"},
		{"array", "POST", "/v1/sandbox/con_1/contacts", key, `[{"a":1}]`, 400, "invalid_request"},
		{"string", "PATCH", "/v1/sandbox/con_1/contacts/sbx_1", key, `"x"`, 400, "invalid_request"},
		{"trailing data", "POST", "/v1/sandbox/con_1/contacts", key, `{} {}`, 400, "invalid_request"},
		{"too large", "POST", "/v1/sandbox/con_1/contacts", key, `{"a":"` + strings.Repeat("x", 5000) + `"}`, 413, "payload_too_large"},
		{"no object", "POST", "/v1/sandbox/con_1", key, `{}`, 404, "not_found"},
		{"put", "PUT", "/v1/sandbox/con_1/contacts/sbx_1", key, `{}`, 405, "method_not_allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, out := sandboxDo(t, tc.method, url+tc.path, tc.key, tc.body)
			require.Equal(t, tc.status, st, out)
			require.Equal(t, tc.code, errCode(out), out)
		})
	}
	require.Len(t, sb.calls, 3, "refused requests never reach the app")

	// The app's errors keep their contract codes.
	for _, tc := range []struct {
		err    error
		status int
	}{
		{models.Errorf(models.ErrCodeNotFound, "no sandbox connection con_2"), 404},
		{models.FieldError("firstName", "contacts has no field firstName"), 422},
		{models.Errorf(models.ErrCodeUnavailable, "saved, but the webhook failed"), 503},
	} {
		sb.err = tc.err
		st, out := sandboxDo(t, "POST", url+"/v1/sandbox/con_2/contacts", key, `{"firstName":"x"}`)
		require.Equal(t, tc.status, st, out)
		require.Equal(t, models.ErrorCode(tc.err), errCode(out))
	}
	sb.err = models.FieldError("firstName", "contacts has no field firstName")
	_, out = sandboxDo(t, "POST", url+"/v1/sandbox/con_2/contacts", key, `{"firstName":"x"}`)
	require.Equal(t, "firstName", out["error"].(map[string]any)["field"], "the offending field is named")
}

func TestSandboxRoutesUnavailable(t *testing.T) {
	url, key, _, _ := sandboxAPI(t, nil)
	for _, m := range []string{"POST /v1/sandbox/con_1/contacts", "PATCH /v1/sandbox/con_1/contacts/sbx_1", "DELETE /v1/sandbox/con_1/contacts/sbx_1"} {
		method, path, _ := strings.Cut(m, " ")
		st, out := sandboxDo(t, method, url+path, key, `{}`)
		require.Equal(t, http.StatusServiceUnavailable, st, out)
		require.Equal(t, "unavailable", errCode(out))
		require.Contains(t, out["error"].(map[string]any)["message"], "sandbox")
	}
}
