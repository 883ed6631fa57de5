package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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
			out, err := runCLI(t, append([]string{"webhooks", "test", "--endpoint", tc.endpoint, "--allow-private-addresses=true"}, db...)...)
			require.Contains(t, out, tc.wantOut)
			if tc.wantErr == "" {
				require.NoError(t, err, out)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
	// --json prints the attempt and still fails.
	out, err = runCLI(t, append([]string{"webhooks", "test", "--endpoint", answer(503), "--json", "--allow-private-addresses=true"}, db...)...)
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

// flagLine matches the help line of flag name (with or without shorthand).
func flagLine(name string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^\s+(-\w, )?--` + regexp.QuoteMeta(name) + `(\s|$)`)
}

// Each command's --help lists its own flags, with their types and defaults,
// and none of another command's (serve's configuration flags used to be on
// every command that opens the database, all typed "string" with no default).
func TestCommandHelpListsOwnFlags(t *testing.T) {
	t.Parallel()
	// Every command of the tree and the flags it defines.
	type command struct {
		path  []string
		flags map[string]bool
	}
	var all []command
	everyFlag := map[string]bool{}
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		own := map[string]bool{}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) { own[f.Name], everyFlag[f.Name] = true, true })
		all = append(all, command{path, own})
		for _, sub := range c.Commands() {
			if sub.Name() != "help" && sub.Name() != "completion" {
				walk(sub, append(append([]string(nil), path...), sub.Name()))
			}
		}
	}
	walk(newRoot(), nil)
	require.Greater(t, len(all), 15)
	help := func(path []string) string {
		out, err := runCLI(t, append(append([]string(nil), path...), "--help")...)
		require.NoError(t, err, out)
		return out
	}
	for _, c := range all {
		t.Run("tree/"+strings.Join(c.path, "_"), func(t *testing.T) {
			t.Parallel()
			out := help(c.path)
			for name := range everyFlag {
				if c.flags[name] {
					require.Regexp(t, flagLine(name), out, "own flag --%s", name)
				} else {
					require.NotRegexp(t, flagLine(name), out, "--%s belongs to another command", name)
				}
			}
		})
	}

	// Types and defaults, and what must not be there, command by command.
	for _, tc := range []struct {
		cmd       string
		want, not []string
	}{
		{"serve", []string{"--dispatcher-workers int", "--api-rate-limit float", "(default 50)", "--dispatcher-tick duration",
			"--roles strings", "(default api,poller,dispatcher)", "--migrate ", "(default true)", `--log-level string`, `(default "info")`,
			"--allow-private-addresses ", "(default true with embedded SQLite, false on PostgreSQL)", "(env TRIBUTARY_DISPATCHER_WORKERS)"},
			[]string{"--endpoint", "--forward-to"}},
		{"webhooks test", []string{"--endpoint string", "--event string", `(default "crm/contacts")`, "--allow-private-addresses ",
			"--dispatcher-default-timeout duration", "(default 30s)", "--master-key string", "--data-dir string", `(default "./data")`},
			[]string{"--dispatcher-workers", "--roles", "--listen-addr", "--api-rate-limit", "--scheduler-tick"}},
		{"accounts create", []string{"--name string", "--json ", "--data-dir string", "--database-url string", "--migrate "},
			[]string{"--master-key", "--api-rate-limit", "--roles"}},
		{"api-keys revoke", []string{"--account string", "--database-url string"}, []string{"--master-key", "--name"}},
		{"master-key rotate", []string{"--new-key string", "--master-key string", "--extra-master-keys strings"}, []string{"--roles"}},
		{"migrate down", []string{"--steps int", "(default 1)", "--database-url string"}, []string{"--master-key", "--migrate "}},
		{"listen", []string{"--api-url string", `(default "http://127.0.0.1:8080")`, "--interval duration", "(default 1s)",
			"--topic stringArray", "--forward-to string"}, []string{"--data-dir", "--database-url", "--master-key"}},
		{"receive", []string{"--secret string", "--scheme string", `(default "auto")`, "--status int", "(default 200)", "--account string"},
			[]string{"--data-dir", "--database-url", "--forward-to"}},
		{"sandbox", []string{"--provider string", "--listen string", `(default "127.0.0.1:9101")`, "--no-webhooks "},
			[]string{"--data-dir", "--roles"}},
	} {
		t.Run("types/"+tc.cmd, func(t *testing.T) {
			t.Parallel()
			out := help(strings.Fields(tc.cmd))
			for _, w := range tc.want {
				require.Contains(t, out, w)
			}
			for _, n := range tc.not {
				require.NotContains(t, out, n)
			}
		})
	}
}

// A secret in the environment is never printed as a flag's default.
func TestListenHelpHidesAPIKey(t *testing.T) {
	t.Setenv("TRIBUTARY_API_KEY", "trb_secret_in_env")
	out, err := runCLI(t, "listen", "--help")
	require.NoError(t, err)
	require.NotContains(t, out, "trb_secret_in_env")
}
