package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// opsServer is the API with no domain services, on a real socket.
func opsServer(t *testing.T, tune func(*Deps)) (*httptest.Server, *Server) {
	t.Helper()
	cfg := config.Default()
	d := Deps{Config: &cfg, Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry(),
		Ready: func(context.Context) error { return nil }}
	if tune != nil {
		tune(&d)
	}
	s := New(d)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return srv, s
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// Attack: 70,000 made-up HTTP methods before authentication grew /metrics
// to 98 MB and the heap by 380 MB, permanently (the raw method was a label).
func TestSecurityMadeUpMethodsDoNotGrowMetrics(t *testing.T) {
	t.Parallel()
	srv, s := opsServer(t, nil)
	h := s.Handler()
	send := func(method, path string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	}
	send("GET", "/healthz")
	send("BREW", "/v1/webhooks")
	_, before := get(t, srv.URL+"/metrics")
	// The full gin stack in process (70,000 socket round trips would take
	// minutes under -race on 2 cores); the sockets serve /metrics.
	for i := range 70000 {
		send(fmt.Sprintf("M%05d", i), fmt.Sprintf("/made/up/%d", i))
	}
	st, after := get(t, srv.URL+"/metrics")
	require.Equal(t, http.StatusOK, st)
	series := func(m string) int { return strings.Count(m, "tributary_http_requests_total{") }
	require.LessOrEqual(t, series(after), series(before)+2, "made-up methods and paths add at most one series each")
	require.Less(t, len(after), len(before)+4096)
	t.Logf("/metrics: %d bytes, %d request series before; %d bytes, %d series after 70,000 made-up methods", len(before), series(before), len(after), series(after))
	require.Contains(t, after, `method="OTHER"`)
	require.Contains(t, after, `route="unmatched"`)
	require.NotContains(t, after, "M00001")
	require.NotContains(t, after, "/made/up/")
}

// Attack: 1,000 concurrent 1 MiB bodies to the unauthenticated /inbound were
// read before the signature check (RSS 413 MB, API p90 3.3 s). Bodies
// declaring more than api.max_body_bytes are refused before a byte is read:
// each client sends only its headers and 16 body bytes, so a server that
// tried to read the body would never answer.
func TestSecurityOversizedInboundRefusedBeforeReading(t *testing.T) {
	t.Parallel()
	in := &countingInbound{}
	srv, _ := opsServer(t, func(d *Deps) {
		d.Inbound = in
		d.Config.API.InboundRateBurst = 10000
	})
	addr := strings.TrimPrefix(srv.URL, "http://")
	const n = 1000
	start := time.Now()
	var wg sync.WaitGroup
	statuses := make([]int, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			statuses[i], errs[i] = oversizedPost(addr, 1<<20+1)
		})
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "request %d", i)
		require.Equal(t, http.StatusRequestEntityTooLarge, statuses[i], "request %d", i)
	}
	require.Zero(t, in.calls.Load(), "nothing reached the receiver")
	t.Logf("%d concurrent oversized bodies (each declaring %d bytes) answered 413 in %s", n, 1<<20+1, time.Since(start).Round(time.Millisecond))
}

// oversizedPost declares a body of size bytes, sends 16 of them and reads
// the answer's status line with a deadline.
func oversizedPost(addr string, size int) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(conn, "POST /inbound/hubspot HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n[{\"objectId\": 1,", size); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// countingInbound counts calls and, when hold is set, blocks each until
// released.
type countingInbound struct {
	calls   atomic.Int64
	hold    chan struct{}
	entered chan struct{}
}

func (c *countingInbound) Receive(ctx context.Context, _ string, _ *connectors.InboundRequest) error {
	c.calls.Add(1)
	if c.hold != nil {
		c.entered <- struct{}{}
		<-c.hold
	}
	return nil
}

// Inbound handles at most api.inbound_concurrency requests at once (503
// beyond) and api.inbound_rate_burst per source IP (429 beyond).
func TestSecurityInboundConcurrencyAndRateLimits(t *testing.T) {
	t.Parallel()
	t.Run("concurrency", func(t *testing.T) {
		t.Parallel()
		in := &countingInbound{hold: make(chan struct{}), entered: make(chan struct{}, 4)}
		srv, _ := opsServer(t, func(d *Deps) { d.Inbound = in; d.Config.API.InboundConcurrency = 4 })
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				st, _ := post(t, srv.URL+"/inbound/hubspot", []byte(`[]`), nil)
				require.Equal(t, http.StatusOK, st)
			})
		}
		for range 4 {
			<-in.entered
		}
		st, out := post(t, srv.URL+"/inbound/hubspot", []byte(`[]`), nil)
		require.Equal(t, http.StatusServiceUnavailable, st)
		require.Equal(t, "unavailable", errCode(out))
		close(in.hold)
		wg.Wait()
		st, _ = post(t, srv.URL+"/inbound/hubspot", []byte(`[]`), nil)
		require.Equal(t, http.StatusOK, st, "slots are freed")
	})
	t.Run("rate per source", func(t *testing.T) {
		t.Parallel()
		in := &countingInbound{}
		srv, _ := opsServer(t, func(d *Deps) {
			d.Inbound = in
			d.Config.API.InboundRateLimit, d.Config.API.InboundRateBurst = 0.001, 5
		})
		for range 5 {
			st, _ := post(t, srv.URL+"/inbound/hubspot", []byte(`[]`), nil)
			require.Equal(t, http.StatusOK, st)
		}
		st, out := post(t, srv.URL+"/inbound/hubspot", []byte(`[]`), nil)
		require.Equal(t, http.StatusTooManyRequests, st)
		require.Equal(t, "rate_limited", errCode(out))
		require.EqualValues(t, 5, in.calls.Load())
	})
}

// countingAccounts counts key lookups.
type countingAccounts struct {
	Accounts
	lookups atomic.Int64
}

func (c *countingAccounts) Authenticate(ctx context.Context, key string) (accounts.Principal, error) {
	c.lookups.Add(1)
	return c.Accounts.Authenticate(ctx, key)
}

// rejectAll is an Accounts whose every key is invalid.
type rejectAll struct{ Accounts }

func (rejectAll) Authenticate(context.Context, string) (accounts.Principal, error) {
	return accounts.Principal{}, models.Errorf(models.ErrCodeUnauthorized, "invalid API key")
}

// Attack: a flood of invalid API keys was never rate limited (2,880 key
// lookups per second). After api.auth_failure_burst failures a source IP
// gets 429 without any lookup.
func TestSecurityInvalidKeyFloodIsRateLimited(t *testing.T) {
	t.Parallel()
	acc := &countingAccounts{Accounts: rejectAll{}}
	srv, _ := opsServer(t, func(d *Deps) {
		d.Accounts = acc
		d.Config.API.AuthFailureRate, d.Config.API.AuthFailureBurst = 0.001, 20
	})
	codes := map[int]int{}
	for i := range 500 {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/webhooks", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", fmt.Sprintf("Bearer trb_guess%04d", i))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		codes[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests {
			require.NotEmpty(t, resp.Header.Get("Retry-After"))
		}
	}
	require.Equal(t, 20, codes[http.StatusUnauthorized])
	require.Equal(t, 480, codes[http.StatusTooManyRequests])
	require.EqualValues(t, 20, acc.lookups.Load(), "refused requests cost no lookup")
}

// Attack: a client that never reads its answer held a goroutine forever (no
// write timeout). The server built from config (HTTPServer) cuts it off
// after api.write_timeout.
func TestSecuritySlowReaderHitsTheWriteTimeout(t *testing.T) {
	t.Parallel()
	cfg := config.Default().API
	cfg.WriteTimeout = 300 * time.Millisecond
	done := make(chan error, 1)
	big := strings.Repeat("x", 1<<20)
	e := gin.New()
	e.GET("/big", func(c *gin.Context) {
		var err error
		for range 64 { // 64 MiB: far more than socket buffers hold
			if _, err = io.WriteString(c.Writer, big); err != nil {
				break
			}
		}
		done <- err
	})
	hs := HTTPServer(cfg, e)
	require.Equal(t, cfg.ReadHeaderTimeout, hs.ReadHeaderTimeout)
	require.Equal(t, cfg.ReadTimeout, hs.ReadTimeout)
	require.Equal(t, cfg.IdleTimeout, hs.IdleTimeout)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	conn, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	// Never read. The handler must give up by itself.
	select {
	case err := <-done:
		require.Error(t, err, "the write failed at the deadline")
	case <-time.After(20 * time.Second):
		t.Fatal("handler still writing to a client that never reads")
	}
}

// Roles: a process without the api role serves only health, readiness and
// metrics (--roles dispatcher served the whole API).
func TestSecurityOpsOnlyWithoutAPIRole(t *testing.T) {
	t.Parallel()
	srv, _ := opsServer(t, func(d *Deps) { d.OpsOnly = true; d.Inbound = &countingInbound{}; d.Accounts = rejectAll{} })
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		st, _ := get(t, srv.URL+p)
		require.Equal(t, http.StatusOK, st, p)
	}
	for _, p := range []string{"/v1/webhooks", "/v1/admin/accounts", "/.well-known/jwks.json", "/oauth/callback?state=x"} {
		st, body := get(t, srv.URL+p)
		require.Equal(t, http.StatusNotFound, st, p+": "+body)
		require.Contains(t, body, `"not_found"`)
	}
	st, out := post(t, srv.URL+"/inbound/hubspot", []byte(`[]`), nil)
	require.Equal(t, http.StatusNotFound, st, out)
}

// Every answer carries the standard protective headers; API answers are
// never cached (webhook secrets and new keys travel in them).
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	srv, _ := opsServer(t, nil)
	for _, p := range []string{"/healthz", "/v1/webhooks", "/nope"} {
		resp, err := http.Get(srv.URL + p)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), p)
		require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"), p)
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'", p)
		require.Equal(t, "no-referrer", resp.Header.Get("Referrer-Policy"), p)
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), p)
	}
}

// A forged X-Forwarded-For does not buy a fresh failed-authentication
// bucket: without api.trusted_proxies the peer address is the client.
func TestSecurityForwardedForIsNotTrustedByDefault(t *testing.T) {
	t.Parallel()
	acc := &countingAccounts{Accounts: rejectAll{}}
	srv, _ := opsServer(t, func(d *Deps) {
		d.Accounts = acc
		d.Config.API.AuthFailureRate, d.Config.API.AuthFailureBurst = 0.001, 3
	})
	for i := range 10 {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/v1/webhooks", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer trb_nope")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	require.EqualValues(t, 3, acc.lookups.Load())
}
