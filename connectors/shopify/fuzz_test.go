package shopify

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

func seedFiles(f *testing.F, files ...string) [][]byte {
	var out [][]byte
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

var fuzzObjects = []string{models.ObjectOrders, models.ObjectCustomers, models.ObjectProducts}

// FuzzNormalize feeds arbitrary resource JSON to every object's normalizer.
func FuzzNormalize(f *testing.F) {
	for _, b := range seedFiles(f, "webhook_orders_create_body.json") {
		f.Add(uint8(0), b)
	}
	f.Add(uint8(1), unwrapF(f, "customer_207119551.json", "customer"))
	f.Add(uint8(2), unwrapF(f, "product_632910392.json", "product"))
	f.Add(uint8(0), []byte(`{"id":1,"total_price":1e400}`))
	f.Fuzz(func(t *testing.T, which uint8, raw []byte) {
		obj := fuzzObjects[int(which)%len(fuzzObjects)]
		rec, err := normalize(obj, raw)
		if err == nil && (rec.RemoteID == "" || rec.Data == nil) {
			t.Fatalf("accepted a record without id or data: %q", raw)
		}
	})
}

// unwrapF returns the inner object of a {"<key>": {...}} fixture.
func unwrapF(f *testing.F, file, key string) []byte {
	var env map[string]json.RawMessage
	if err := json.Unmarshal(seedFiles(f, file)[0], &env); err != nil {
		f.Fatal(err)
	}
	return env[key]
}

// FuzzParsePage feeds arbitrary list responses to the page parser.
func FuzzParsePage(f *testing.F) {
	for _, b := range seedFiles(f, "orders_list_updated_at_min.json") {
		f.Add(b)
	}
	f.Add([]byte(`{"orders":[]}`))
	f.Add([]byte(`{"orders":null}`))
	f.Add([]byte(`{"orders":[{"id":1,"updated_at":"2008-01-10T11:00:00-05:00","line_items":[{"id":2,"quantity":1,"price":"1.00"}],"customer":{"id":3}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		recs, err := parsePage(models.ObjectOrders, "orders", body)
		if err == nil {
			for _, r := range recs {
				if r.RemoteID == "" {
					t.Fatal("record without id")
				}
			}
		}
	})
}

// FuzzNextPageInfo feeds arbitrary Link headers to the paging parser.
func FuzzNextPageInfo(f *testing.F) {
	f.Add(`<https://test-shop.myshopify.com/path?limit=1&page_info=page-info>; rel="next"`)
	f.Add(`<https://test-shop.myshopify.com/path?limit=1&page_info=page-info>; rel="previous", <https://test-shop.myshopify.com/path?limit=1&page_info=other-page-info>; rel="next"`)
	f.Add(`<%zz>; rel="next"`)
	f.Fuzz(func(t *testing.T, link string) {
		_, _ = nextPageInfo(link)
	})
}

// FuzzWebhook feeds arbitrary topics, shops and bodies to Verify + Parse.
func FuzzWebhook(f *testing.F) {
	body := seedFiles(f, "webhook_orders_create_body.json")[0]
	f.Add("orders/create", "jsmith.myshopify.com", Sign("s", body), body)
	f.Add("orders/delete", "jsmith.myshopify.com", "", []byte(`{"id":450789469}`))
	f.Add("customers/update", "a.myshopify.com", "x", []byte(`{"id":"1","updated_at":null}`))
	f.Add("app/uninstalled", "a.myshopify.com", "", []byte(`{}`))
	k := New(connectors.AppConfig{ClientSecret: "s"})
	f.Fuzz(func(t *testing.T, topic, shop, sig string, body []byte) {
		r := &connectors.InboundRequest{Method: http.MethodPost, Body: body, Header: http.Header{
			"X-Shopify-Topic": {topic}, "X-Shopify-Shop-Domain": {shop}, "X-Shopify-Hmac-Sha256": {sig},
			"X-Shopify-Event-Id": {"e"},
		}}
		_ = k.VerifyWebhook(r)
		ns, err := k.ParseWebhook(r)
		if err != nil {
			return
		}
		for _, n := range ns {
			if n.RemoteID == "" || n.EventID == "" || n.ExternalID == "" {
				t.Fatalf("incomplete notice %+v", n)
			}
			if !n.Deleted && n.Record == nil {
				t.Fatal("create/update notice without record")
			}
		}
	})
}
