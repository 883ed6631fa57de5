package main

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/storage"
)

// Attack: `--roles dispatcher` or `--roles poller` still served the whole API
// (admin routes, inbound, OAuth callback). Without the api role a process
// serves only health, readiness and metrics.
func TestServeWithoutAPIRoleServesOnlyOperations(t *testing.T) {
	t.Parallel()
	for _, roles := range [][]string{{config.RoleDispatcher}, {config.RolePoller}, {config.RolePoller, config.RoleDispatcher}} {
		e := startEngine(t, storage.SQLite, func(c *config.Config) { c.Roles = roles })
		for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
			resp, err := http.Get(e.url + p)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode, "%v %s", roles, p)
		}
		st, body := e.do(t, "POST", "/v1/admin/accounts", e.admin, map[string]any{"name": "x"})
		requireError(t, st, body, 404, "not_found")
		st, body = e.do(t, "GET", "/oauth/callback?state=x", "", nil)
		requireError(t, st, body, 404, "not_found")
		st, body = e.do(t, "POST", "/inbound/sandbox", "", map[string]any{})
		requireError(t, st, body, 404, "not_found")
	}
	e := startEngine(t, storage.SQLite, func(c *config.Config) { c.Roles = []string{config.RoleAPI} })
	st, body := e.do(t, "POST", "/v1/admin/accounts", e.admin, map[string]any{"name": "x"})
	require.Equal(t, 201, st, "%v", body)
}
