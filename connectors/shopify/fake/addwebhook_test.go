package fake

import (
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAddWebhook: a subscription added through the Go API is the one the
// REST API lists, is deduplicated like POST webhooks.json, and receives the
// topic's deliveries.
func TestAddWebhook(t *testing.T) {
	s := New(WithoutDelivery())
	s.AddToken(SandboxShop, SandboxToken)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)

	id, err := s.AddWebhook(SandboxShop, "customers/create", "https://hooks.example/in")
	require.NoError(t, err)
	again, err := s.AddWebhook(SandboxShop, "customers/create", "https://hooks.example/in")
	require.NoError(t, err)
	require.Equal(t, id, again, "same topic and address: the same subscription")
	_, err = s.AddWebhook(SandboxShop, "customers/explode", "https://hooks.example/in")
	require.ErrorContains(t, err, "invalid topic")
	_, err = s.AddWebhook(SandboxShop, "customers/create", "")
	require.ErrorContains(t, err, "blank")

	st, body := call(t, srv, "GET", "webhooks.json", SandboxToken, nil)
	require.Equal(t, 200, st)
	hooks := body["webhooks"].([]any)
	require.Len(t, hooks, 1)
	require.Equal(t, "customers/create", hooks[0].(map[string]any)["topic"])

	s.Create(SandboxShop, Customers, map[string]any{"first_name": "Ada"})
	s.Create(SandboxShop, Products, map[string]any{"title": "Not subscribed"})
	ds := s.Deliveries(SandboxShop)
	require.Len(t, ds, 1)
	require.Equal(t, "https://hooks.example/in", ds[0].URL)
	require.Equal(t, "customers/create", ds[0].Header.Get("X-Shopify-Topic"))
	require.Equal(t, sign(s.ClientSecret(), ds[0].Body), ds[0].Header.Get("X-Shopify-Hmac-Sha256"))
}
