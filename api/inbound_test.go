package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/hubspot"
	hsfake "github.com/tributary/tributary/connectors/hubspot/fake"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
	"github.com/tributary/tributary/sync/inbound"
)

// fakeInbound records what Receive got and answers err.
type fakeInbound struct {
	app string
	got *connectors.InboundRequest
	n   int
	err error
}

func (f *fakeInbound) Receive(_ context.Context, app string, r *connectors.InboundRequest) error {
	f.n++
	f.app, f.got = app, r
	return f.err
}

func inboundServer(t *testing.T, in Inbound) *httptest.Server {
	t.Helper()
	cfg := config.Default()
	cfg.PublicURL = "https://tributary.example/"
	cfg.API.MaxBodyBytes = 1024
	d := Deps{Config: &cfg, Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		Ready: func(context.Context) error { return nil }}
	if in != nil {
		d.Inbound = in
	}
	srv := httptest.NewServer(New(d).Handler())
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, url string, body []byte, header map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := apiClient(t).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	require.NoError(t, json.Unmarshal(raw, &out), string(raw))
	return resp.StatusCode, out
}

func TestInboundPassesTheRawRequest(t *testing.T) {
	f := &fakeInbound{}
	srv := inboundServer(t, f)
	// Not canonical JSON on purpose: bytes must reach Receive untouched.
	body := []byte("[ {\"objectId\" : 1,\n\"x\":\"\\u00e9\"} ]\r\n")
	status, out := post(t, srv.URL+"/inbound/hubspot?a=b%3Ac", body, map[string]string{
		"X-HubSpot-Signature-v3": "sig", "Content-Type": "application/json"})
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, map[string]any{"received": true}, out)
	require.Equal(t, 1, f.n)
	require.Equal(t, "hubspot", f.app)
	require.Equal(t, body, f.got.Body)
	require.Equal(t, http.MethodPost, f.got.Method)
	require.Equal(t, "https://tributary.example/inbound/hubspot?a=b%3Ac", f.got.URL)
	require.Equal(t, "sig", f.got.Header.Get("X-HubSpot-Signature-v3"))
	require.False(t, f.got.ReceivedAt.IsZero())
}

func TestInboundErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		body     []byte
		status   int
		code     string
		received int
	}{
		{"bad signature", models.Errorf(models.ErrCodeUnauthorized, "invalid webhook signature"), []byte(`[]`), http.StatusUnauthorized, models.ErrCodeUnauthorized, 1},
		{"unknown app", models.Errorf(models.ErrCodeNotFound, "no app"), []byte(`[]`), http.StatusNotFound, models.ErrCodeNotFound, 1},
		{"too large", nil, bytes.Repeat([]byte("x"), 1025), http.StatusRequestEntityTooLarge, models.ErrCodeTooLarge, 0},
		{"internal", io.ErrUnexpectedEOF, []byte(`[]`), http.StatusInternalServerError, models.ErrCodeInternal, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeInbound{err: tc.err}
			srv := inboundServer(t, f)
			status, out := post(t, srv.URL+"/inbound/hubspot", tc.body, nil)
			require.Equal(t, tc.status, status)
			require.Equal(t, tc.code, out["error"].(map[string]any)["code"])
			require.Equal(t, tc.received, f.n)
		})
	}
}

func TestInboundUnavailableWithoutService(t *testing.T) {
	srv := inboundServer(t, nil)
	status, out := post(t, srv.URL+"/inbound/hubspot", []byte(`[]`), nil)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "unavailable", out["error"].(map[string]any)["code"])
}

// The provider's signature covers the URL it called: a real HubSpot
// delivery to PublicURL + /inbound/hubspot verifies and is stored once.
func TestInboundEndToEndHubSpot(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		hs := hsfake.New()
		hsSrv := httptest.NewServer(hs)
		t.Cleanup(hsSrv.Close)
		app := hubspot.New(connectors.AppConfig{ClientID: hs.ClientID(), ClientSecret: hs.ClientSecret(), BaseURL: hsSrv.URL},
			hubspot.WithClock(hs.Now))
		recv := &inbound.Receiver{DB: db, Apps: connectors.NewRegistry(app)}

		cfg := config.Default()
		var h http.Handler
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
		t.Cleanup(srv.Close)
		cfg.PublicURL = srv.URL
		h = New(Deps{Config: &cfg, Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
			Ready: func(context.Context) error { return nil }, Inbound: recv}).Handler()

		hs.SetWebhookTarget(srv.URL + "/inbound/hubspot")
		portal := hs.CreatePortal()
		_, err := hs.Create(portal, "contacts", map[string]string{"email": "ada@example.com"})
		require.NoError(t, err)
		reqs := hs.Webhooks(portal) // the fake also POSTed them to the target
		require.Len(t, reqs, 1)
		var n int64
		require.NoError(t, db.Model(&models.InboxItem{}).Count(&n).Error)
		require.Equal(t, int64(1), n)

		// Replayed by hand: accepted, still stored once. Tampered: 401.
		status, _ := post(t, srv.URL+"/inbound/hubspot", reqs[0].Body, flat(reqs[0].Header))
		require.Equal(t, http.StatusOK, status)
		hdr := flat(reqs[0].Header)
		status, _ = post(t, srv.URL+"/inbound/hubspot", append(reqs[0].Body, ' '), hdr)
		require.Equal(t, http.StatusUnauthorized, status)
		require.NoError(t, db.Model(&models.InboxItem{}).Count(&n).Error)
		require.Equal(t, int64(1), n)
	})
}

func flat(h http.Header) map[string]string {
	out := map[string]string{}
	for k := range h {
		out[k] = h.Get(k)
	}
	return out
}
