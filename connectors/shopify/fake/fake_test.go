package fake

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func call(t *testing.T, srv *httptest.Server, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, srv.URL+"/admin/api/2025-01/"+path, rd)
	require.NoError(t, err)
	req.Header.Set("X-Shopify-Access-Token", token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestRESTCrudSendsSignedWebhooks(t *testing.T) {
	clock := NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	f := New(WithClock(clock.Now), WithoutDelivery())
	srv := httptest.NewServer(f)
	defer srv.Close()
	tok, _ := f.IssueToken("crud", false)

	st, out := call(t, srv, http.MethodPost, "webhooks.json", tok, map[string]any{"webhook": map[string]any{"topic": "products/update", "address": "https://example.com/in", "format": "json"}})
	require.Equal(t, http.StatusCreated, st)
	require.NotNil(t, out["webhook"])
	st, out = call(t, srv, http.MethodPost, "webhooks.json", tok, map[string]any{"webhook": map[string]any{"topic": "products/update", "address": "https://example.com/in"}})
	require.Equal(t, http.StatusUnprocessableEntity, st)
	require.Contains(t, out["errors"], "address")
	st, _ = call(t, srv, http.MethodPost, "webhooks.json", tok, map[string]any{"webhook": map[string]any{"topic": "nope/never", "address": "https://example.com/in"}})
	require.Equal(t, http.StatusUnprocessableEntity, st)

	st, out = call(t, srv, http.MethodPost, "products.json", tok, map[string]any{"product": map[string]any{"title": "Burton Custom Freestyle 151"}})
	require.Equal(t, http.StatusCreated, st)
	p := out["product"].(map[string]any)
	id := int64(p["id"].(float64))
	require.Equal(t, "2025-03-01T07:00:00-05:00", p["updated_at"], "times in the shop's zone")

	clock.Advance(time.Minute)
	st, out = call(t, srv, http.MethodPut, "products/"+itoa(id)+".json", tok, map[string]any{"product": map[string]any{"title": "Renamed"}})
	require.Equal(t, http.StatusOK, st)
	require.Equal(t, "Renamed", out["product"].(map[string]any)["title"])
	ds := f.Deliveries("crud.myshopify.com")
	require.Len(t, ds, 1)
	require.Equal(t, "products/update", ds[0].Header.Get("X-Shopify-Topic"))
	require.Equal(t, sign(DefaultClientSecret, ds[0].Body), ds[0].Header.Get("X-Shopify-Hmac-Sha256"))

	st, _ = call(t, srv, http.MethodDelete, "products/"+itoa(id)+".json", tok, nil)
	require.Equal(t, http.StatusOK, st)
	st, out = call(t, srv, http.MethodGet, "products/"+itoa(id)+".json", tok, nil)
	require.Equal(t, http.StatusNotFound, st)
	require.Equal(t, "Not Found", out["errors"])
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestFailNextKinds(t *testing.T) {
	f := New()
	srv := httptest.NewServer(f)
	defer srv.Close()
	tok, _ := f.IssueToken("fail", true)
	f.FailNext("fail.myshopify.com", "rate_limit", 1)
	f.FailNext("fail.myshopify.com", "server_error", 1)
	f.FailNext("fail.myshopify.com", "expired_token", 1)
	st, _ := call(t, srv, http.MethodGet, "orders.json", tok, nil)
	require.Equal(t, http.StatusTooManyRequests, st)
	st, _ = call(t, srv, http.MethodGet, "orders.json", tok, nil)
	require.Equal(t, http.StatusInternalServerError, st)
	st, _ = call(t, srv, http.MethodGet, "orders.json", tok, nil)
	require.Equal(t, http.StatusUnauthorized, st)
	st, _ = call(t, srv, http.MethodGet, "orders.json", tok, nil)
	require.Equal(t, http.StatusUnauthorized, st, "the token stays expired until refreshed")
}

func TestListenAndServeSeeded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln) }()
	req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/admin/api/2025-01/orders.json?status=any", nil)
	req.Header.Set("X-Shopify-Access-Token", SandboxToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var out map[string][]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	resp.Body.Close()
	require.Len(t, out["orders"], 3)
	cancel()
	require.NoError(t, <-done)
}
