package salesforce_test

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/conformance"
	"github.com/tributary/tributary/connectors/salesforce/fake"
)

// TestRequestsFollowSalesforceDocs runs the connector's listings (query,
// queryAll full scans and their paging), getDeleted windows and a token
// refresh through a recorder that refuses any path, query parameter or form
// field the Salesforce documentation (testdata/spec/rest_resources.json)
// does not list.
func TestRequestsFollowSalesforceDocs(t *testing.T) {
	docs, err := conformance.LoadResources(filepath.Join("testdata", "spec", "rest_resources.json"))
	require.NoError(t, err)
	b := setup(t, fake.WithPageSize(2)) // so that listings page (query/{locator})
	c := b.newConn(t)
	rec := &conformance.SpecRecorder{Docs: docs, Next: c.HTTP.Transport}
	c.HTTP = &http.Client{Transport: rec}
	for _, obj := range b.conn.Info().Objects {
		for i := range 3 {
			v, _ := sample(obj, i)
			_, err := b.fake.Create(c.ExternalID, sobjectOf[obj], v)
			require.NoError(t, err)
		}
	}
	b.clock.Advance(time.Hour)
	cursors := map[string]string{}
	for _, full := range []bool{true, false} {
		for _, obj := range b.conn.Info().Objects {
			err := b.conn.ListChanges(t.Context(), c, connectors.ListRequest{Object: obj, FullScan: full, Cursor: cursors[obj], PageSize: 200},
				func(p connectors.Page) error { cursors[obj] = p.Cursor; return nil })
			require.NoError(t, err, obj)
		}
	}
	now := b.clock.Now()
	for _, obj := range b.conn.Info().Objects {
		_, _, _ = b.conn.ListDeletedCovered(t.Context(), c, obj, now.Add(-time.Hour), now, "")
	}
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, &http.Client{Transport: rec})
	cfg := b.conn.OAuthConfig("http://localhost/oauth/callback", nil)
	_, err = cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: c.Credentials["refresh_token"]}).Token()
	require.NoError(t, err)

	require.Empty(t, rec.Violations())
	require.GreaterOrEqual(t, rec.Checked(), 10)

	// The checker refuses what the documentation does not list.
	for _, u := range []string{
		b.srv.URL + "/services/data/v60.0/query?q=SELECT+Id+FROM+Account&limit=5",
		b.srv.URL + "/services/data/v60.0/sobjects/Account/deleted/?start=a&end=b&since=c",
		b.srv.URL + "/services/data/v60.0/search?q=FIND",
	} {
		r, err := http.NewRequest(http.MethodGet, u, bytes.NewReader(nil))
		require.NoError(t, err)
		require.Error(t, docs.Check(r, nil), u)
	}
}
