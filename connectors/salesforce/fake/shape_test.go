package fake

import (
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors/conformance"
)

// TestAnswersHaveTheDocumentedShape: the fake's query, getDeleted and
// getUpdated answers carry every field of Salesforce's documented example
// responses (../testdata/*_docs.json, sources inside) with the same types.
func TestAnswersHaveTheDocumentedShape(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	f := New(WithClock(func() time.Time { return now }), WithPageSize(1))
	srv := httptest.NewServer(f)
	defer srv.Close()
	org := f.DefaultOrg()
	access, _, err := f.Tokens(org)
	require.NoError(t, err)
	bearer := "Bearer " + access
	for _, n := range []string{"Smith", "Brown", "Jones"} {
		id, err := f.Create(org, "Contact", map[string]any{"LastName": n})
		require.NoError(t, err)
		if n == "Jones" {
			require.NoError(t, f.Delete(org, "Contact", id))
		}
	}
	window := url.Values{"start": {now.Add(-time.Hour).Format(time.RFC3339)}, "end": {now.Format(time.RFC3339)}}.Encode()
	for fixture, path := range map[string]string{
		"query_response_docs.json": "/services/data/v60.0/query?q=" + url.QueryEscape("SELECT Id, Name FROM Contact"),
		"get_deleted_docs.json":    "/services/data/v60.0/sobjects/Contact/deleted/?" + window,
		"get_updated_docs.json":    "/services/data/v60.0/sobjects/Contact/updated/?" + window,
	} {
		doc, err := os.ReadFile(filepath.Join("..", "testdata", fixture))
		require.NoError(t, err)
		st, body := do(t, srv, "GET", path, bearer)
		require.Equal(t, 200, st, string(body))
		diff, err := conformance.ShapeDiff(doc, body)
		require.NoError(t, err)
		require.Empty(t, diff, fixture)
	}
}
