package shopify

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/conformance"
	"github.com/tributary/tributary/models"
)

// TestRequestsFollowShopifyDocs runs webhook subscription, listings (first
// pages with filters, then page_info pages), fetches, a token refresh and
// unsubscription through a recorder that refuses any path or query
// parameter Shopify's REST reference does not list
// (testdata/spec/rest_resources.json).
func TestRequestsFollowShopifyDocs(t *testing.T) {
	docs, err := conformance.LoadResources(filepath.Join("testdata", "spec", "rest_resources.json"))
	require.NoError(t, err)
	b := setup(t)
	rec := &conformance.SpecRecorder{Docs: docs, Next: b.srv.Client().Transport}
	b.conn.httpClient = &http.Client{Transport: rec}
	c := b.newConn(t)
	c.HTTP = &http.Client{Transport: rec}
	for _, obj := range []string{models.ObjectOrders, models.ObjectCustomers, models.ObjectProducts} {
		var ids []string
		for range 3 {
			ids = append(ids, b.harness().create(t, c, obj))
		}
		for _, full := range []bool{true, false} {
			require.NoError(t, b.conn.ListChanges(t.Context(), c, connectors.ListRequest{Object: obj, FullScan: full, Cursor: formatCursor(t0), PageSize: 2},
				func(connectors.Page) error { return nil }))
		}
		_, err := b.conn.FetchRecords(t.Context(), c, obj, ids)
		require.NoError(t, err)
	}
	// Subscribing again adopts the existing subscriptions (POST answered
	// 422 "taken", then GET webhooks.json?topic&address).
	_, err = b.conn.Subscribe(t.Context(), c, b.receiver.URL+"/inbound/shopify")
	require.NoError(t, err)
	require.NoError(t, b.conn.Unsubscribe(t.Context(), c))

	require.Empty(t, rec.Violations())
	require.GreaterOrEqual(t, rec.Checked(), 8)

	// The checker refuses what the reference does not list — such as the
	// "order" parameter the connector used to send.
	r, err := http.NewRequest(http.MethodGet, b.srv.URL+"/admin/api/2026-10/orders.json?limit=2&order=updated_at+asc", nil)
	require.NoError(t, err)
	require.Error(t, docs.Check(r, nil))
	r, err = http.NewRequest(http.MethodGet, b.srv.URL+"/admin/api/2026-10/orders/count.json?status=any", nil)
	require.NoError(t, err)
	require.Error(t, docs.Check(r, nil))
}
