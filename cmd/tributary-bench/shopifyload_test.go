package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/shopify"
)

// TestOrderTemplate: every rendered body is the full fixture order with its
// own id, number and timestamps, and parses as JSON.
func TestOrderTemplate(t *testing.T) {
	tmpl, err := newOrderTemplate()
	if err != nil {
		t.Fatal(err)
	}
	var fixture map[string]any
	if err := json.Unmarshal(orderFixture, &fixture); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 30, 1, 2, 3, 0, time.UTC)
	var o map[string]any
	if err := json.Unmarshal(tmpl.render(123456789012, 7, now), &o); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{"id": 123456789012.0, "admin_graphql_api_id": "gid://shopify/Order/123456789012", "name": "#1007",
		"number": 7.0, "order_number": 1007.0, "created_at": "2026-11-29T20:02:03-05:00", "updated_at": "2026-11-29T20:02:03-05:00"} {
		if o[k] != want {
			t.Errorf("%s = %v, want %v", k, o[k], want)
		}
	}
	if len(o) != len(fixture) {
		t.Errorf("%d fields, fixture has %d", len(o), len(fixture))
	}
	if o["line_items"] == nil || o["customer"] == nil {
		t.Error("nested objects lost")
	}
}

// TestShopifyHMAC checks the sender's signature against Shopify's own test
// vector (shopify-api-js validate.test.ts: secret "test_secret_key", body
// {"foo": "bar"}) and the engine's verifier accepting a rendered request.
func TestShopifyHMAC(t *testing.T) {
	if got := shopifyHMAC("test_secret_key", []byte(`{"foo": "bar"}`)); got != "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=" {
		t.Errorf("got %s", got)
	}
	tmpl, err := newOrderTemplate()
	if err != nil {
		t.Fatal(err)
	}
	body := tmpl.render(42, 1, time.Now())
	req, err := signedOrderRequest("http://127.0.0.1/inbound/shopify", "s3cret", "shop-1.myshopify.com", 42, body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	k := shopify.New(connectors.AppConfig{ClientSecret: "s3cret"})
	in := &connectors.InboundRequest{Method: "POST", Header: req.Header, Body: body}
	if err := k.VerifyWebhook(in); err != nil {
		t.Fatal(err)
	}
	notices, err := k.ParseWebhook(in)
	if err != nil || len(notices) != 1 {
		t.Fatalf("parse: %v %v", notices, err)
	}
	in.Header.Set("X-Shopify-Hmac-Sha256", shopifyHMAC("other", body))
	if k.VerifyWebhook(in) == nil {
		t.Fatal("a body signed with another secret verified")
	}
}
