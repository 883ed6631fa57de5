package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary/connectors/shopify"
)

// orderFixture is Shopify's orders/create webhook body (the shopify-api-ruby
// fixture order, compact; see testdata/README.md).
//
//go:embed testdata/shopify_orders_create.json
var orderFixture []byte

// orderTemplate renders full orders/create bodies, each a distinct order:
// the fixture with its top-level id, admin_graphql_api_id, name, number,
// order_number, created_at, updated_at and processed_at replaced. It is
// split once at placeholders so rendering is a few appends, not a JSON
// encode of 17 kB per request.
type orderTemplate struct {
	parts [][]byte
	holes []int // holes[i] (an index of orderHoles) follows parts[i]
}

// placeholders, in the order render fills them.
var orderHoles = []string{"@ID@", "@GID@", "@NAME@", "@NUMBER@", "@ORDERNUMBER@", "@CREATED@", "@UPDATED@", "@PROCESSED@"}

func newOrderTemplate() (*orderTemplate, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(orderFixture))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("order fixture: %w", err)
	}
	// Strings hold the holes; numbers are unquoted after rendering.
	for k, hole := range map[string]string{"id": "@ID@", "admin_graphql_api_id": "@GID@", "name": "@NAME@", "number": "@NUMBER@",
		"order_number": "@ORDERNUMBER@", "created_at": "@CREATED@", "updated_at": "@UPDATED@", "processed_at": "@PROCESSED@"} {
		if _, ok := m[k]; !ok {
			return nil, fmt.Errorf("order fixture: no top-level %q", k)
		}
		m[k] = hole
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	s := string(raw)
	t := &orderTemplate{}
	type at struct{ pos, hole int }
	var found []at
	for h, name := range orderHoles {
		q := `"` + name + `"`
		if strings.Count(s, q) != 1 {
			return nil, fmt.Errorf("order fixture: placeholder %s not unique", name)
		}
		found = append(found, at{strings.Index(s, q), h})
	}
	slices.SortFunc(found, func(a, b at) int { return a.pos - b.pos })
	prev := 0
	for _, f := range found {
		t.parts = append(t.parts, []byte(s[prev:f.pos]))
		t.holes = append(t.holes, f.hole)
		prev = f.pos + len(orderHoles[f.hole]) + 2
	}
	t.parts = append(t.parts, []byte(s[prev:]))
	return t, nil
}

// render returns the body of order id, created (and updated) at now.
func (t *orderTemplate) render(id int64, n int, now time.Time) []byte {
	ts := strconv.Quote(now.In(shopifyZone).Format(time.RFC3339))
	idS := strconv.FormatInt(id, 10)
	vals := []string{idS, strconv.Quote("gid://shopify/Order/" + idS), strconv.Quote("#" + strconv.Itoa(1000+n)),
		strconv.Itoa(n), strconv.Itoa(1000 + n), ts, ts, ts}
	b := make([]byte, 0, len(orderFixture)+256)
	for i, h := range t.holes {
		b = append(b, t.parts[i]...)
		b = append(b, vals[h]...)
	}
	return append(b, t.parts[len(t.parts)-1]...)
}

// shopifyZone is the shop's zone: Shopify renders times with its offset.
var shopifyZone = time.FixedZone("EST", -5*3600)

// signedOrderRequest builds one native orders/create webhook exactly as
// Shopify sends it: the raw body, X-Shopify-Hmac-Sha256 (base64 HMAC-SHA256
// of the body with the app's client secret), topic, shop domain, API
// version, webhook id (unique per delivery), event id and triggered-at.
func signedOrderRequest(url, secret, shop string, orderID int64, body []byte, now time.Time) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Shopify-Captain-Hook")
	h.Set(shopify.HeaderTopic, "orders/create")
	h.Set(shopify.HeaderHmac, shopifyHMAC(secret, body))
	h.Set(shopify.HeaderShopDomain, shop)
	h.Set(shopify.HeaderAPIVersion, shopify.DefaultAPIVersion)
	h.Set(shopify.HeaderWebhookID, fmt.Sprintf("b54557e4-bdd9-4b37-8a5f-%012d", orderID))
	h.Set(shopify.HeaderEventID, fmt.Sprintf("98880550-7158-44d4-b7cd-%012d", orderID))
	h.Set(shopify.HeaderTriggeredAt, now.UTC().Format(time.RFC3339Nano))
	return req, nil
}

// shopifyHMAC is Shopify's webhook signature, written here from Shopify's
// documentation rather than taken from the connector under test: base64
// (standard) of HMAC-SHA256 over the raw body, keyed with the app secret.
func shopifyHMAC(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// sandboxOrderRequest creates one order in the sandbox app's own shape
// through POST /v1/sandbox/{connectionId}/orders with the account's key.
func sandboxOrderRequest(url, key string, n int) (*http.Request, error) {
	body := fmt.Sprintf(`{"order_number":%d,"email":"buyer%d@example.com","currency":"usd","financial_status":"paid",`+
		`"subtotal_price":"597.00","total_tax":"11.94","total_price":"598.94","line_items":[`+
		`{"sku":"IPOD2008GREEN","name":"IPod Nano - 8gb - green","quantity":1,"unit_price":199},`+
		`{"sku":"IPOD2008BLACK","name":"IPod Nano - 8gb - black","quantity":2,"unit_price":199}]}`, 1000+n, n)
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

func jsonUnmarshal(raw []byte, v any) error { return json.Unmarshal(raw, v) }
