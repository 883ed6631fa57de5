package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/api/openapi"
	"github.com/tributary/tributary/config"
)

// routeShape reduces a gin path (":id", "*path") or an OpenAPI template
// ("{id}", "{accountId}.json") to one comparable form: any segment holding a
// parameter becomes "{}" (gin cannot express "{accountId}.json", so the
// route there is a whole-segment parameter).
func routeShape(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") || strings.Contains(s, "{") {
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}

func bareServer(t *testing.T) *Server {
	t.Helper()
	cfg := config.Default()
	return New(Deps{Config: &cfg, Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		Ready: func(context.Context) error { return nil }})
}

// TestEveryRouteIsDocumented walks the gin router: a route missing from the
// OpenAPI document, or a documented operation with no route, fails.
func TestEveryRouteIsDocumented(t *testing.T) {
	t.Parallel()
	ops, err := openapi.Operations()
	require.NoError(t, err)
	documented := map[string]bool{}
	for m, paths := range ops {
		for _, p := range paths {
			documented[m+" "+routeShape(p)] = true
		}
	}
	routed := map[string]bool{}
	var missing []string
	for _, r := range bareServer(t).engine.Routes() {
		k := r.Method + " " + routeShape(r.Path)
		routed[k] = true
		if !documented[k] {
			missing = append(missing, r.Method+" "+r.Path)
		}
	}
	sort.Strings(missing)
	require.Empty(t, missing, "these routes are not in the OpenAPI document: add each (path with {param}, "+
		"method, parameters, request body, every answer's schema, `default: {$ref: \"#/components/responses/Error\"}`) "+
		"to api/openapi/openapi.yaml, then run `UPDATE_OPENAPI=1 go test ./api -run TestOpenAPIDocsCopy` to refresh docs/openapi.json")
	var stale []string
	for k := range documented {
		if !routed[k] {
			stale = append(stale, k)
		}
	}
	sort.Strings(stale)
	require.Empty(t, stale, "api/openapi/openapi.yaml documents operations no route serves: remove them or add the routes")
}

// TestOpenAPIDocsCopy keeps docs/openapi.json equal to what /openapi.json
// serves; UPDATE_OPENAPI=1 rewrites it.
func TestOpenAPIDocsCopy(t *testing.T) {
	t.Parallel()
	want, err := openapi.JSON()
	require.NoError(t, err)
	const path = "../docs/openapi.json"
	if os.Getenv("UPDATE_OPENAPI") != "" {
		require.NoError(t, os.WriteFile(path, want, 0o644))
	}
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, string(want), string(got), "docs/openapi.json is stale: run `UPDATE_OPENAPI=1 go test ./api -run TestOpenAPIDocsCopy`")
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(bareServer(t).Handler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/openapi.json")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Regexp(t, regexp.MustCompile(`"openapi": "3\.1\.0"`), string(body))
}
