package shopify

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

var update = flag.Bool("update", false, "rewrite testdata/golden files")

// unwrap reads a fixture {"<key>": {...}} and returns the inner raw object.
func unwrap(t *testing.T, file, key string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	require.NoError(t, err)
	var env map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &env))
	require.Contains(t, env, key)
	return env[key]
}

func TestGolden(t *testing.T) {
	k := New(connectors.AppConfig{})
	cases := []struct{ object, file, key string }{
		{models.ObjectOrders, "order_get_450789469.json", "order"},
		{models.ObjectCustomers, "customer_207119551.json", "customer"},
		{models.ObjectProducts, "product_632910392.json", "product"},
	}
	for _, tc := range cases {
		t.Run(tc.object, func(t *testing.T) {
			raw := unwrap(t, tc.file, tc.key)
			rec, err := k.Normalize(tc.object, raw)
			require.NoError(t, err)
			require.JSONEq(t, string(raw), string(rec.Raw), "Raw must be the provider JSON as received")
			got, err := json.MarshalIndent(map[string]any{
				"object": rec.Object, "remoteId": rec.RemoteID, "remoteUpdatedAt": rec.RemoteUpdatedAt,
				"deleted": rec.Deleted, "data": rec.Data,
			}, "", "  ")
			require.NoError(t, err)
			path := filepath.Join("testdata", "golden", tc.object+".json")
			if *update {
				require.NoError(t, os.WriteFile(path, append(got, '\n'), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test -run Golden -update")
			require.JSONEq(t, string(want), string(got))
		})
	}
}

// TestNormalizeOrderFixture pins the order fields the brief names.
func TestNormalizeOrderFixture(t *testing.T) {
	rec, err := normalize(models.ObjectOrders, unwrap(t, "order_get_450789469.json", "order"))
	require.NoError(t, err)
	o := rec.Data.(*models.Order)
	require.Equal(t, "450789469", o.RemoteID)
	require.Equal(t, "1001", o.OrderNumber)
	require.Equal(t, "207119551", o.CustomerID)
	require.Equal(t, "598.94", o.TotalPrice)
	require.Equal(t, "partially_refunded", o.FinancialStatus)
	require.Empty(t, o.FulfillmentStatus)
	require.Nil(t, o.CancelledAt)
	require.NotEmpty(t, o.LineItems)
	require.Equal(t, "199.00", o.LineItems[0].Price)
	require.Equal(t, "2008-01-10T16:00:00Z", rec.RemoteUpdatedAt.Format("2006-01-02T15:04:05Z07:00"))

	// The webhook body is the same resource, unwrapped.
	body, err := os.ReadFile(filepath.Join("testdata", "webhook_orders_create_body.json"))
	require.NoError(t, err)
	wh, err := normalize(models.ObjectOrders, body)
	require.NoError(t, err)
	require.Equal(t, o, wh.Data.(*models.Order))
}

func TestNormalizeEdgeCases(t *testing.T) {
	for name, tc := range map[string]struct {
		object, body string
		ok           bool
	}{
		"cancelled order":       {models.ObjectOrders, `{"id":1,"cancelled_at":"2025-01-02T03:04:05-05:00","updated_at":"2025-01-02T03:04:05-05:00"}`, true},
		"money as number":       {models.ObjectOrders, `{"id":1,"total_price":12.5}`, true},
		"string id":             {models.ObjectCustomers, `{"id":"42"}`, true},
		"no id":                 {models.ObjectProducts, `{"title":"x"}`, false},
		"not an object":         {models.ObjectOrders, `[1,2]`, false},
		"bad time":              {models.ObjectOrders, `{"id":1,"updated_at":"yesterday"}`, false},
		"unsupported object":    {"contacts", `{"id":1}`, false},
		"object as money":       {models.ObjectOrders, `{"id":1,"total_price":{"a":1}}`, false},
		"huge quantity":         {models.ObjectOrders, `{"id":1,"line_items":[{"quantity":1e300}]}`, false},
		"null inventory":        {models.ObjectProducts, `{"id":1,"variants":[{"id":2,"inventory_quantity":null}]}`, true},
		"null fulfillment etc.": {models.ObjectOrders, `{"id":1,"fulfillment_status":null,"customer":null,"line_items":null}`, true},
	} {
		t.Run(name, func(t *testing.T) {
			rec, err := normalize(tc.object, []byte(tc.body))
			if !tc.ok {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, rec.Data)
		})
	}
	rec, err := normalize(models.ObjectOrders, []byte(`{"id":1,"cancelled_at":"2025-01-02T03:04:05-05:00"}`))
	require.NoError(t, err)
	require.Equal(t, "2025-01-02T08:04:05Z", rec.Data.(*models.Order).CancelledAt.Format("2006-01-02T15:04:05Z07:00"))
}
