package api

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
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

// Attack: a provider-signed webhook replayed with a header holding invalid
// UTF-8 (or NUL) reached the inbox, whose header column keeps every request
// header; it must be a 400 before anything is stored.
func TestSecurityInvalidRequestHeadersAre400BeforeStorage(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		hs := hsfake.New()
		hsSrv := httptest.NewServer(hs)
		t.Cleanup(hsSrv.Close)
		app := hubspot.New(connectors.AppConfig{ClientID: hs.ClientID(), ClientSecret: hs.ClientSecret(), BaseURL: hsSrv.URL},
			hubspot.WithClock(hs.Now))
		recv := &inbound.Receiver{DB: db, Apps: connectors.NewRegistry(app)}
		cfg := config.Default()
		// The server first only captures (the signature covers its URL),
		// then serves the API.
		var h atomic.Pointer[http.Handler]
		capture := http.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		h.Store(&capture)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			(*h.Load()).ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		cfg.PublicURL = srv.URL
		hs.SetWebhookTarget(srv.URL + "/inbound/hubspot")
		portal := hs.CreatePortal()
		_, err := hs.Create(portal, "contacts", map[string]string{"email": "ada@example.com"})
		require.NoError(t, err)
		reqs := hs.Webhooks(portal)
		require.Len(t, reqs, 1)
		api := New(Deps{Config: &cfg, Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
			Ready: func(context.Context) error { return nil }, Inbound: recv}).Handler()
		h.Store(&api)
		count := func() int64 {
			var n int64
			require.NoError(t, db.Model(&models.InboxItem{}).Count(&n).Error)
			return n
		}

		for _, tc := range []struct{ name, header, value string }{
			{"value invalid UTF-8", "X-Note", "caf\xe9"},
			{"value truncated rune", "User-Agent", "agent \xe2\x82"},
		} {
			hdr := flat(reqs[0].Header)
			hdr[tc.header] = tc.value
			status, out := post(t, srv.URL+"/inbound/hubspot", reqs[0].Body, hdr)
			require.Equal(t, http.StatusBadRequest, status, tc.name)
			require.Equal(t, "invalid_request", errCode(out), tc.name)
			require.Zero(t, count(), "%s: nothing stored", tc.name)
		}

		// A NUL (or a header name that is not a token) never reaches a handler:
		// the HTTP server itself refuses the request.
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		require.NoError(t, err)
		defer conn.Close()
		_, err = conn.Write([]byte("POST /inbound/hubspot HTTP/1.1\r\nHost: x\r\nX-Note: a\x00b\r\nContent-Length: 2\r\n\r\n[]"))
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		require.Zero(t, count())

		// The same delivery with clean headers is stored: the 400s were the headers'.
		status, _ := post(t, srv.URL+"/inbound/hubspot", reqs[0].Body, flat(reqs[0].Header))
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, int64(1), count())
	})
}
