package fake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors/conformance"
)

// TestAnswersHaveTheDocumentedShape: the order, customer and product the
// fake serves carry every field the connector reads with the type Shopify's
// documented examples give it (../testdata/spec/read_fields_mask.json).
func TestAnswersHaveTheDocumentedShape(t *testing.T) {
	f := New(WithClock(NewClock(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)).Now), WithoutDelivery())
	srv := httptest.NewServer(f)
	defer srv.Close()
	shop := "shape.myshopify.com"
	f.AddToken(shop, "shpat_shape")
	var masks map[string]json.RawMessage
	data, err := os.ReadFile(filepath.Join("..", "testdata", "spec", "read_fields_mask.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &masks))
	for resource, fixture := range map[string]string{
		Orders: "order_get_450789469.json", Customers: "customer_207119551.json", Products: "product_632910392.json",
	} {
		id := f.Create(shop, resource, nil)
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/admin/api/"+DefaultAPIVersion+"/"+resource+"/"+strconv.FormatInt(id, 10)+".json", nil)
		require.NoError(t, err)
		req.Header.Set("X-Shopify-Access-Token", "shpat_shape")
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode, string(body))
		doc, err := os.ReadFile(filepath.Join("..", "testdata", fixture))
		require.NoError(t, err)
		diff, err := conformance.ShapeDiffMask(doc, body, masks[singular[resource]])
		require.NoError(t, err)
		require.Empty(t, diff, resource)
	}
}
