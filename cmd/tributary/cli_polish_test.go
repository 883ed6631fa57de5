package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/storage"
)

// runCLI runs the tributary command line with args in-process and returns
// what it printed (stdout and stderr) and its error (non-nil = exit 1).
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// webhooks test exits non-zero with the reason when the sample is not
// accepted: a non-2xx answer or no answer at all (connection refused).
func TestWebhooksTestExitCode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := []string{"--data-dir", dir, "--log-level", "error"}
	out, err := runCLI(t, append([]string{"accounts", "create", "--name", "Acme"}, db...)...)
	require.NoError(t, err, out)
	answer := func(status int) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(status)
			_, _ = w.Write([]byte("receiver says hi"))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	for _, tc := range []struct {
		name, endpoint string
		wantErr        string // "" = exit 0
		wantOut        string
	}{
		{"accepted", answer(204), "", "status 204"},
		{"server error", answer(500), "send failed: the receiver answered status 500", "response: receiver says hi"},
		{"redirect", answer(302), "send failed: the receiver answered status 302", "status 302"},
		{"connection refused", "http://" + freeAddr(t) + "/hook", "send failed: ", "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCLI(t, append([]string{"webhooks", "test", "--endpoint", tc.endpoint, "--allow-private-addresses", "true"}, db...)...)
			require.Contains(t, out, tc.wantOut)
			if tc.wantErr == "" {
				require.NoError(t, err, out)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
	// --json prints the attempt and still fails.
	out, err = runCLI(t, append([]string{"webhooks", "test", "--endpoint", answer(503), "--json", "--allow-private-addresses", "true"}, db...)...)
	require.ErrorContains(t, err, "status 503")
	var v struct{ Attempt struct{ StatusCode int } }
	require.NoError(t, json.Unmarshal([]byte(out), &v), out)
	require.Equal(t, 503, v.Attempt.StatusCode)
}

// listen stops at once, non-zero and saying why, when the engine refuses
// its API key (mistyped or revoked), instead of retrying forever.
func TestListenStopsOnRefusedKey(t *testing.T) {
	t.Parallel()
	e := startEngine(t, storage.SQLite, allowPrivate)
	key := e.account(t, "Acme")
	st, created := e.do(t, "POST", "/v1/api-keys", key, map[string]any{"name": "laptop"})
	require.Equal(t, 201, st, "%v", created)
	revoked := created["apiKey"].(string)
	st, _ = e.do(t, "DELETE", "/v1/api-keys/"+created["id"].(string), key, nil)
	require.Less(t, st, 300)
	local := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(local.Close)

	for name, bad := range map[string]string{"revoked": revoked, "unknown": "trb_0123456789abcdef"} {
		t.Run(name, func(t *testing.T) {
			out, err := runCLI(t, "listen", "--api-url", e.url, "--api-key", bad, "--forward-to", local.URL, "--interval", "10ms")
			require.ErrorIs(t, err, errKeyRefused, out)
			require.ErrorContains(t, err, "answered 401")
			require.ErrorContains(t, err, "--api-key")
			require.NotContains(t, out, "retrying")
		})
	}
}
