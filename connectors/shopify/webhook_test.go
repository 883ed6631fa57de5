package shopify

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

type hmacVectors struct {
	Official struct {
		Secret  string            `json:"secret"`
		RawBody string            `json:"raw_body"`
		Want    string            `json:"expected_x_shopify_hmac_sha256"`
		Headers map[string]string `json:"headers_used_in_that_test"`
	} `json:"official_vector"`
	Derived struct {
		Secret   string `json:"secret"`
		BodyFile string `json:"body_file"`
		Want     string `json:"expected_x_shopify_hmac_sha256"`
	} `json:"derived_vector_for_order_body"`
}

func loadVectors(t *testing.T) hmacVectors {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "hmac_test_vectors.json"))
	require.NoError(t, err)
	var v hmacVectors
	require.NoError(t, json.Unmarshal(b, &v))
	return v
}

func orderBody(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "webhook_orders_create_body.json"))
	require.NoError(t, err)
	return b
}

func TestSignVectors(t *testing.T) {
	v := loadVectors(t)
	require.Equal(t, v.Official.Want, Sign(v.Official.Secret, []byte(v.Official.RawBody)))
	require.Equal(t, v.Derived.Want, Sign(v.Derived.Secret, orderBody(t)))
}

func TestVerifyWebhook(t *testing.T) {
	v := loadVectors(t)
	body := orderBody(t)
	withSecret := func(secret, webhookSecret string) *Connector {
		return New(connectors.AppConfig{ClientSecret: secret, WebhookSecret: webhookSecret})
	}
	official := http.Header{}
	for k, val := range v.Official.Headers {
		official.Set(k, val)
	}
	cases := []struct {
		name   string
		k      *Connector
		header http.Header
		body   []byte
		ok     bool
	}{
		{"official vector", withSecret(v.Official.Secret, ""), official, []byte(v.Official.RawBody), true},
		{"order body", withSecret(v.Derived.Secret, ""), http.Header{"X-Shopify-Hmac-Sha256": {v.Derived.Want}}, body, true},
		{"webhook secret wins", withSecret("other", v.Derived.Secret), http.Header{"X-Shopify-Hmac-Sha256": {v.Derived.Want}}, body, true},
		{"lower-case header", withSecret(v.Derived.Secret, ""), http.Header{"x-shopify-hmac-sha256": {v.Derived.Want}}, body, true},
		{"unprefixed header", withSecret(v.Derived.Secret, ""), http.Header{"shopify-hmac-sha256": {v.Derived.Want}}, body, true},
		{"canonical unprefixed", withSecret(v.Derived.Secret, ""), http.Header{"Shopify-Hmac-Sha256": {v.Derived.Want}}, body, true},
		{"wrong secret", withSecret("nope", ""), http.Header{"X-Shopify-Hmac-Sha256": {v.Derived.Want}}, body, false},
		{"tampered body", withSecret(v.Derived.Secret, ""), http.Header{"X-Shopify-Hmac-Sha256": {v.Derived.Want}}, append([]byte(" "), body...), false},
		{"missing header", withSecret(v.Derived.Secret, ""), http.Header{}, body, false},
		{"hex instead of base64", withSecret(v.Derived.Secret, ""), http.Header{"X-Shopify-Hmac-Sha256": {"17b0b74977a93733d673d0650e624f2a"}}, body, false},
		{"not base64", withSecret(v.Derived.Secret, ""), http.Header{"X-Shopify-Hmac-Sha256": {"%%%"}}, body, false},
		{"no secret configured", withSecret("", ""), http.Header{"X-Shopify-Hmac-Sha256": {Sign("", body)}}, body, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.k.VerifyWebhook(&connectors.InboundRequest{Method: http.MethodPost, Header: tc.header, Body: tc.body})
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, connectors.ErrBadSignature)
			}
		})
	}
	require.ErrorIs(t, withSecret("x", "").VerifyWebhook(nil), connectors.ErrBadSignature)
}

func inbound(topic string, body []byte, extra map[string]string) *connectors.InboundRequest {
	h := http.Header{}
	h.Set(HeaderTopic, topic)
	h.Set(HeaderShopDomain, "jsmith.myshopify.com")
	h.Set(HeaderWebhookID, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
	h.Set(HeaderHmac, Sign("s", body))
	for k, v := range extra {
		h[k] = []string{v}
	}
	return &connectors.InboundRequest{Method: http.MethodPost, Header: h, Body: body, ReceivedAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func TestParseWebhook(t *testing.T) {
	k := New(connectors.AppConfig{ClientSecret: "s"})
	body := orderBody(t)

	t.Run("orders/create carries the full record", func(t *testing.T) {
		ns, err := k.ParseWebhook(inbound("orders/create", body, map[string]string{
			"X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5", "X-Shopify-Triggered-At": "2023-03-29T18:00:27.877041743Z",
		}))
		require.NoError(t, err)
		require.Len(t, ns, 1)
		n := ns[0]
		require.Equal(t, "jsmith.myshopify.com", n.ExternalID)
		require.Equal(t, models.ObjectOrders, n.Object)
		require.Equal(t, "450789469", n.RemoteID)
		require.Equal(t, "98880550-7158-44d4-b7cd-2c97c8a091b5:orders/create", n.EventID)
		require.False(t, n.Deleted)
		require.Equal(t, time.Date(2023, 3, 29, 18, 0, 27, 877041743, time.UTC), n.OccurredAt)
		require.NotNil(t, n.Record)
		require.Equal(t, "598.94", n.Record.Data.(*models.Order).TotalPrice)
		require.Equal(t, json.RawMessage(body), n.Record.Raw)
	})
	t.Run("webhook id fallback and updated_at time", func(t *testing.T) {
		ns, err := k.ParseWebhook(inbound("orders/updated", body, nil))
		require.NoError(t, err)
		require.Equal(t, "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", ns[0].EventID)
		require.Equal(t, time.Date(2008, 1, 10, 16, 0, 0, 0, time.UTC), ns[0].OccurredAt)
	})
	t.Run("unprefixed lower-case headers", func(t *testing.T) {
		r := &connectors.InboundRequest{Header: http.Header{
			"shopify-topic": {"customers/update"}, "shopify-shop-domain": {"JSmith.myshopify.com"},
			"shopify-event-id": {"e1"}, "shopify-triggered-at": {"2024-05-06T07:08:09Z"},
		}, Body: []byte(`{"id":207119551,"first_name":"Bob","updated_at":"2024-05-06T03:08:09-04:00"}`)}
		ns, err := k.ParseWebhook(r)
		require.NoError(t, err)
		require.Len(t, ns, 1)
		require.Equal(t, "jsmith.myshopify.com", ns[0].ExternalID)
		require.Equal(t, models.ObjectCustomers, ns[0].Object)
		require.Equal(t, "e1:customers/update", ns[0].EventID)
		require.Equal(t, "Bob", ns[0].Record.Data.(*models.Customer).FirstName)
	})
	for _, topic := range []string{"orders/delete", "customers/delete", "products/delete"} {
		t.Run(topic, func(t *testing.T) {
			ns, err := k.ParseWebhook(inbound(topic, []byte(`{"id":788032119674292922}`), nil))
			require.NoError(t, err)
			require.Len(t, ns, 1)
			require.True(t, ns[0].Deleted)
			require.Nil(t, ns[0].Record)
			require.Equal(t, "788032119674292922", ns[0].RemoteID, "ids beyond 2^53 must keep every digit")
			require.Equal(t, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), ns[0].OccurredAt, "falls back to ReceivedAt")
		})
	}
	t.Run("app/uninstalled and other resources yield no notice", func(t *testing.T) {
		for _, topic := range []string{"app/uninstalled", "shop/update", "fulfillments/create"} {
			ns, err := k.ParseWebhook(inbound(topic, []byte(`{"id":1}`), nil))
			require.NoError(t, err)
			require.Empty(t, ns)
		}
	})
	for name, r := range map[string]*connectors.InboundRequest{
		"no topic":       {Header: http.Header{HeaderShopDomain: {"a.myshopify.com"}, HeaderWebhookID: {"w"}}, Body: body},
		"bad shop":       inbound("orders/create", body, map[string]string{HeaderShopDomain: "evil.example.com"}),
		"no event id":    {Header: http.Header{HeaderTopic: {"orders/create"}, HeaderShopDomain: {"a.myshopify.com"}}, Body: body},
		"delete no id":   inbound("orders/delete", []byte(`{}`), nil),
		"delete garbage": inbound("orders/delete", []byte(`nope`), nil),
		"create garbage": inbound("orders/create", []byte(`{"id":`), nil),
		"create no id":   inbound("products/create", []byte(`{"title":"x"}`), nil),
	} {
		t.Run("error: "+name, func(t *testing.T) {
			_, err := k.ParseWebhook(r)
			require.Error(t, err)
		})
	}
}

// TestWebhookDeliveredOverHTTP checks that the fake POSTs signed webhooks to
// the address Subscribe registered and that they verify and parse there.
func TestWebhookDeliveredOverHTTP(t *testing.T) {
	b := setup(t)
	c := b.newConn(t)
	require.Len(t, strings.Split(c.Metadata[MetaWebhookIDs], ","), len(WebhookTopics))
	id := b.harness().create(t, c, models.ObjectOrders)
	var r *http.Request
	select {
	case r = <-b.received:
	default:
		t.Fatal("no webhook POSTed to the receiver")
	}
	require.Equal(t, "/inbound/shopify", r.URL.Path)
	d := b.fake.Deliveries(c.ExternalID)
	require.Len(t, d, 1)
	in := &connectors.InboundRequest{Method: r.Method, URL: d[0].URL, Header: r.Header, Body: d[0].Body}
	require.NoError(t, b.conn.VerifyWebhook(in))
	ns, err := b.conn.ParseWebhook(in)
	require.NoError(t, err)
	require.Equal(t, id, ns[0].RemoteID)
	for _, h := range []string{HeaderTopic, HeaderHmac, HeaderShopDomain, HeaderAPIVersion, HeaderWebhookID, HeaderEventID, HeaderTriggeredAt} {
		require.NotEmpty(t, r.Header.Get(h), h)
	}
}

func TestSubscribeUnsubscribe(t *testing.T) {
	b := setup(t)
	c := b.newConn(t)
	require.Len(t, b.fake.Webhooks(c.ExternalID), len(WebhookTopics))

	// Subscribing again adopts the existing subscriptions (422 "taken").
	md, err := b.conn.Subscribe(t.Context(), c, b.receiver.URL+"/inbound/shopify")
	require.NoError(t, err)
	require.Equal(t, c.Metadata[MetaWebhookIDs], md[MetaWebhookIDs])
	require.Len(t, b.fake.Webhooks(c.ExternalID), len(WebhookTopics))

	require.NoError(t, b.conn.Unsubscribe(t.Context(), c))
	require.Empty(t, b.fake.Webhooks(c.ExternalID))
	// Already gone: fine.
	require.NoError(t, b.conn.Unsubscribe(t.Context(), c))
}

// TestDeleteTopicMustMatchBody: the topic header is outside the HMAC, so a
// full resource body under a */delete topic is refused (ErrTopicMismatch);
// a delete-shaped body becomes a Deleted notice that asks sync to confirm
// the record is gone.
func TestDeleteTopicMustMatchBody(t *testing.T) {
	k := New(connectors.AppConfig{ClientSecret: "s"})
	order, err := os.ReadFile(filepath.Join("testdata", "webhook_orders_create_body.json"))
	require.NoError(t, err)
	for _, tc := range []struct {
		topic string
		body  string
	}{
		{"orders/delete", string(order)},
		{"customers/delete", `{"id":1,"email":"ada@example.com","created_at":"2026-01-01T00:00:00-05:00","updated_at":"2026-01-02T00:00:00-05:00"}`},
		{"products/delete", `{"id":1,"title":"Mug","variants":[{"id":2}]}`},
	} {
		_, err := k.ParseWebhook(inbound(tc.topic, []byte(tc.body), nil))
		require.ErrorIs(t, err, ErrTopicMismatch, tc.topic)
	}
	for topic, body := range map[string]string{
		"orders/delete":    `{"id":820982911946154508}`,
		"customers/delete": `{"id":706405506930370084,"phone":null,"addresses":[],"tax_exemptions":[],"email_marketing_consent":null,"sms_marketing_consent":null,"admin_graphql_api_id":"gid://shopify/Customer/706405506930370084"}`,
		"products/delete":  `{"id":788032119674292922}`,
	} {
		ns, err := k.ParseWebhook(inbound(topic, []byte(body), nil))
		require.NoError(t, err, topic)
		require.Len(t, ns, 1)
		require.True(t, ns[0].Deleted && ns[0].ConfirmDeletion, topic)
	}
}

// WebhookKeys gives the identity ParseWebhook gives, from the headers and
// the top-level id, without the record.
func TestWebhookKeysMatchParse(t *testing.T) {
	k := New(connectors.AppConfig{ClientSecret: "s"})
	body := orderBody(t)
	for name, r := range map[string]*connectors.InboundRequest{
		"orders/create":   inbound("orders/create", body, map[string]string{"X-Shopify-Event-Id": "e1"}),
		"orders/updated":  inbound("orders/updated", body, nil),
		"id not first":    inbound("customers/update", []byte(`{"first_name":"Bob","nested":{"id":9},"id":207119551}`), nil),
		"tricky strings":  inbound("customers/update", []byte(`{"note":"a \\\"}\" {\"id\":1","extra":[{"id":2},"]"], "id" : "207119551" }`), nil),
		"orders/delete":   inbound("orders/delete", []byte(`{"id":788032119674292922}`), nil),
		"other resources": inbound("app/uninstalled", []byte(`{"id":1}`), nil),
	} {
		t.Run(name, func(t *testing.T) {
			want, err := k.ParseWebhook(r)
			require.NoError(t, err)
			got, err := k.WebhookKeys(r)
			require.NoError(t, err)
			require.Len(t, got, len(want))
			for i := range want {
				require.Nil(t, got[i].Record)
				require.Equal(t, [5]any{want[i].EventID, want[i].ExternalID, want[i].Object, want[i].RemoteID, want[i].Deleted},
					[5]any{got[i].EventID, got[i].ExternalID, got[i].Object, got[i].RemoteID, got[i].Deleted})
			}
		})
	}
	for name, r := range map[string]*connectors.InboundRequest{
		"no topic":     {Header: http.Header{HeaderShopDomain: {"a.myshopify.com"}, HeaderWebhookID: {"w"}}, Body: body},
		"garbage":      inbound("orders/create", []byte(`{"id":`), nil),
		"not object":   inbound("orders/create", []byte(`[1]`), nil),
		"no id":        inbound("products/create", []byte(`{"title":"x"}`), nil),
		"object as id": inbound("products/create", []byte(`{"id":{"x":1}}`), nil),
	} {
		t.Run("error: "+name, func(t *testing.T) {
			_, err := k.WebhookKeys(r)
			require.Error(t, err)
		})
	}
}
