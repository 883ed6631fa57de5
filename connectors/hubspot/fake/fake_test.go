package fake_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors/hubspot/fake"
)

func get(t *testing.T, url, token string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), "GET", url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

func TestSeededSandbox(t *testing.T) {
	f := fake.New()
	require.EqualValues(t, fake.SandboxPortalID, f.Seed())
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	for path, n := range map[string]int{
		"/crm/v3/objects/contacts": 3, "/crm/v3/objects/companies": 2, "/crm/v3/objects/deals": 2,
		"/crm/v3/objects/notes": 1, "/crm/v3/objects/tasks": 1, "/crm/v3/owners/": 2, "/crm/v3/pipelines/deals": 1,
	} {
		status, body := get(t, srv.URL+path, fake.SandboxAccessToken)
		require.Equal(t, http.StatusOK, status, path)
		require.Len(t, body["results"], n, path)
	}
	status, body := get(t, srv.URL+"/crm/v3/objects/contacts?limit=101", fake.SandboxAccessToken)
	require.Equal(t, http.StatusBadRequest, status)
	require.Equal(t, "VALIDATION_ERROR", body["category"])
	status, body = get(t, srv.URL+"/crm/v3/objects/widgets", fake.SandboxAccessToken)
	require.Equal(t, http.StatusBadRequest, status)
	status, body = get(t, srv.URL+"/crm/v3/objects/contacts", "nope")
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "INVALID_AUTHENTICATION", body["category"])
	require.Empty(t, f.Webhooks(fake.SandboxPortalID), "seeding sends no webhooks")
}

func TestListenAndServeStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, fake.ListenAndServe(ctx, "127.0.0.1:0"))
}

func TestHTTPMutationsSendWebhooks(t *testing.T) {
	f := fake.New()
	portal := f.CreatePortal()
	tok, err := f.IssueToken(portal)
	require.NoError(t, err)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	do := func(method, path, body string) (int, map[string]any) {
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	status, created := do("POST", "/crm/v3/objects/deals", `{"properties":{"dealname":"Big","amount":"10"}}`)
	require.Equal(t, http.StatusCreated, status)
	id := created["id"].(string)
	status, _ = do("PATCH", "/crm/v3/objects/deals/"+id, `{"properties":{"amount":"20"}}`)
	require.Equal(t, http.StatusOK, status)
	status, _ = do("DELETE", "/crm/v3/objects/deals/"+id, "")
	require.Equal(t, http.StatusNoContent, status)
	status, _ = do("GET", "/crm/v3/objects/deals/"+id, "")
	require.Equal(t, http.StatusNotFound, status)
	status, got := do("GET", "/crm/v3/objects/deals?archived=true", "")
	require.Equal(t, http.StatusOK, status)
	require.Len(t, got["results"], 1)

	var types []string
	for _, r := range f.Webhooks(portal) {
		var ns []map[string]any
		require.NoError(t, json.Unmarshal(r.Body, &ns))
		for _, n := range ns {
			types = append(types, n["subscriptionType"].(string))
			require.EqualValues(t, portal, n["portalId"])
		}
		require.NotEmpty(t, r.Header.Get("X-HubSpot-Signature-v3"))
	}
	require.Equal(t, []string{"deal.creation", "deal.propertyChange", "deal.deletion"}, types)
}
