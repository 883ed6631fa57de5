package hubspot_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/conformance"
	"github.com/tributary/tributary/connectors/hubspot"
	"github.com/tributary/tributary/connectors/hubspot/fake"
	"github.com/tributary/tributary/models"
)

// specFiles are HubSpot's published OpenAPI documents (testdata/spec/SOURCES.md).
var specFiles = []string{
	"oauth-2026-03.json", "crm-contacts-v3.json", "crm-companies-v3.json", "crm-deals-v3.json",
	"crm-notes-v3.json", "crm-tasks-v3.json", "crm-owners-v3.json", "crm-pipelines-v3.json", "crm-associations-v4.json",
}

func loadSpec(t *testing.T, server string) *conformance.Spec {
	t.Helper()
	files := make([]string, len(specFiles))
	for i, f := range specFiles {
		files[i] = filepath.Join("testdata", "spec", f)
	}
	spec, err := conformance.LoadSpec(server, files...)
	require.NoError(t, err)
	return spec
}

// TestRequestsFollowHubSpotSpec runs every request the connector makes —
// OAuth code exchange, refresh, introspection and revocation; incremental
// and full listings of every object; deletion checks and archived listings;
// batch reads; association reads — through a recorder that checks each one
// against HubSpot's published OpenAPI documents: the operation exists, every
// query parameter is declared, the body validates (required properties
// present) and declares no other top-level property.
func TestRequestsFollowHubSpotSpec(t *testing.T) {
	f := fake.New()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	rec := &conformance.SpecRecorder{Spec: loadSpec(t, srv.URL),
		// The authorization page is a browser redirect on app.hubspot.com,
		// not an API operation.
		Skip: func(r *http.Request) bool { return r.URL.Path == "/oauth/authorize" }, CheckResponses: true}
	plain := &http.Client{Transport: rec}
	c := hubspot.New(connectors.AppConfig{ClientID: f.ClientID(), ClientSecret: f.ClientSecret(), BaseURL: srv.URL,
		AuthURL: srv.URL + "/oauth/authorize", TokenURL: srv.URL + fake.TokenPath}, hubspot.WithClock(f.Now), hubspot.WithHTTPClient(plain))
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, plain)

	cfg := c.OAuthConfig("https://tributary.example.com/oauth/callback", nil)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(cfg.AuthCodeURL("s"))
	require.NoError(t, err)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	tok, err := cfg.Exchange(ctx, loc.Query().Get("code"))
	require.NoError(t, err)
	ext, _, err := c.Identify(ctx, tok, plain)
	require.NoError(t, err)
	tok.Expiry = time.Unix(1, 0)
	tok, err = cfg.TokenSource(ctx, tok).Token()
	require.NoError(t, err)

	portal, err := strconv.ParseInt(ext, 10, 64)
	require.NoError(t, err)
	bearer := conformance.NewBearer(tok.AccessToken)
	conn := &connectors.Conn{ID: "con_1", ExternalID: ext, Credentials: map[string]string{"refresh_token": tok.RefreshToken},
		HTTP: &http.Client{Transport: &withBearer{bearer: bearer, next: rec}}}
	owner, err := f.CreateOwner(portal, "o@example.com", "O", "Wner")
	require.NoError(t, err)
	company, err := f.Create(portal, "companies", map[string]string{"name": "Acme", "hubspot_owner_id": owner})
	require.NoError(t, err)
	contact, err := f.Create(portal, "contacts", map[string]string{"email": "a@example.com", "associatedcompanyid": company})
	require.NoError(t, err)
	deal, err := f.Create(portal, "deals", map[string]string{"dealname": "D", "dealstage": "qualifiedtobuy"})
	require.NoError(t, err)
	note, err := f.Create(portal, "notes", map[string]string{"hs_note_body": "n"})
	require.NoError(t, err)
	task, err := f.Create(portal, "tasks", map[string]string{"hs_task_subject": "t"})
	require.NoError(t, err)
	require.NoError(t, f.Associate(portal, "deals", deal, "companies", company, true))
	require.NoError(t, f.Associate(portal, "notes", note, "contacts", contact, false))
	require.NoError(t, f.Associate(portal, "tasks", task, "deals", deal, false))

	cursors := map[string]string{}
	for _, full := range []bool{true, false} {
		for _, obj := range hubspot.Objects() {
			err := c.ListChanges(ctx, conn, connectors.ListRequest{Object: obj, FullScan: full, Cursor: cursors[obj], PageSize: 2}, func(p connectors.Page) error {
				cursors[obj] = p.Cursor
				return nil
			})
			require.NoError(t, err, obj)
		}
	}
	f.Advance(10 * time.Minute)
	require.NoError(t, f.Delete(portal, "contacts", contact))
	now := f.Now()
	for _, obj := range hubspot.Objects() {
		_, _, err := c.ListDeletedCovered(ctx, conn, obj, now.Add(-2*time.Hour), now, cursors[obj])
		if obj == models.ObjectStages {
			require.ErrorIs(t, err, connectors.ErrWindowExpired)
			continue
		}
		require.NoError(t, err, obj)
	}
	for obj, ids := range map[string][]string{models.ObjectOpportunities: {deal}, models.ObjectNotes: {note}, models.ObjectTasks: {task}, models.ObjectAccounts: {company}} {
		_, err := c.FetchRecords(ctx, conn, obj, ids)
		require.NoError(t, err)
	}
	require.NoError(t, c.Unsubscribe(ctx, conn))

	require.Empty(t, rec.Violations(), "requests HubSpot's spec does not document")
	require.GreaterOrEqual(t, rec.Checked(), 20, "distinct operations checked")
}

// TestSpecRefusesUndocumentedRequests: the checker itself fails the
// requests the connector used to send (a v1 OAuth path, a search without
// after, a batch read without propertiesWithHistory) and undocumented
// parameters.
func TestSpecRefusesUndocumentedRequests(t *testing.T) {
	spec := loadSpec(t, "https://api.hubapi.com")
	for _, tc := range []struct {
		name, method, url, ct, body string
	}{
		{"v1 token", "POST", "https://api.hubapi.com/oauth/v1/token", "application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token=x"},
		{"v1 token info", "GET", "https://api.hubapi.com/oauth/v1/access-tokens/abc", "", ""},
		{"undocumented query parameter", "GET", "https://api.hubapi.com/crm/v3/objects/contacts?archived=true&sort=archivedAt", "", ""},
		{"search without after", "POST", "https://api.hubapi.com/crm/v3/objects/contacts/search", "application/json",
			`{"filterGroups":[],"sorts":[],"properties":[],"limit":1}`},
		{"batch read without propertiesWithHistory", "POST", "https://api.hubapi.com/crm/v3/objects/deals/batch/read?archived=false", "application/json",
			`{"properties":["dealname"],"inputs":[{"id":"1"}]}`},
		{"undocumented body property", "POST", "https://api.hubapi.com/oauth/2026-03/token/revoke", "application/x-www-form-urlencoded", "token=x&everything=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := http.NewRequest(tc.method, tc.url, bytes.NewReader([]byte(tc.body)))
			require.NoError(t, err)
			if tc.ct != "" {
				r.Header.Set("Content-Type", tc.ct)
			}
			require.Error(t, spec.Check(t.Context(), r, []byte(tc.body)))
		})
	}
	ok, err := http.NewRequest("POST", "https://api.hubapi.com/crm/v3/objects/contacts/search", strings.NewReader(`{"after":"0","filterGroups":[],"sorts":[],"properties":[],"limit":1}`))
	require.NoError(t, err)
	ok.Header.Set("Content-Type", "application/json")
	require.NoError(t, spec.Check(t.Context(), ok, []byte(`{"after":"0","filterGroups":[],"sorts":[],"properties":[],"limit":1}`)))
}

// withBearer adds the connection's bearer token, then hands the request to
// next (the spec recorder).
type withBearer struct {
	bearer *conformance.Bearer
	next   http.RoundTripper
}

func (w *withBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+w.bearer.Token())
	return w.next.RoundTrip(r)
}
