package api

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/models"
)

const (
	ctxRequestID = "requestId"
	ctxPrincipal = "principal"
	roleISV      = models.RoleISV
	roleAdmin    = models.RoleAdmin
)

// requestID takes X-Request-Id from the caller (when sane) or makes one, and
// echoes it on the response.
func (s *Server) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-Id")
	if id == "" || len(id) > 64 || strings.ContainsAny(id, " \t\r\n") {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		id = "req_" + hex.EncodeToString(b)
	}
	c.Set(ctxRequestID, id)
	c.Header("X-Request-Id", id)
	c.Next()
}

// recover turns a panic into a logged 500 with the contract's body.
func (s *Server) recover(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			fail(c, fmt.Errorf("panic: %v", r))
		}
	}()
	c.Next()
}

// limitBody caps request bodies at api.max_body_bytes.
func (s *Server) limitBody(c *gin.Context) {
	if c.Request.Body != nil {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.deps.Config.API.MaxBodyBytes)
	}
	c.Next()
}

// logAndMeasure logs each request with slog and records Prometheus metrics.
func (s *Server) logAndMeasure(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	status := c.Writer.Status()
	elapsed := time.Since(start)
	s.metrics.requests.WithLabelValues(c.Request.Method, route, strconv.Itoa(status)).Inc()
	s.metrics.duration.WithLabelValues(c.Request.Method, route).Observe(elapsed.Seconds())
	if route == "/healthz" || route == "/readyz" || route == "/metrics" {
		return
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	s.deps.Logger.LogAttrs(c.Request.Context(), level, "http request",
		slog.String("requestId", c.GetString(ctxRequestID)), slog.String("method", c.Request.Method),
		slog.String("route", route), slog.Int("status", status), slog.Duration("elapsed", elapsed),
		slog.String("account", principalOf(c).AccountID))
}

// authenticate checks the bearer key, its role and its rate limit.
func (s *Server) authenticate(role string) gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.GetHeader("Authorization")
		key, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || key == "" {
			c.Header("WWW-Authenticate", `Bearer realm="tributary"`)
			fail(c, models.Errorf(models.ErrCodeUnauthorized, "missing bearer API key in the Authorization header"))
			return
		}
		p, err := s.deps.Accounts.Authenticate(c.Request.Context(), strings.TrimSpace(key))
		if err != nil {
			fail(c, err)
			return
		}
		if p.Role != role {
			fail(c, models.Errorf(models.ErrCodeForbidden, "this endpoint needs an %s key", role))
			return
		}
		if wait, ok := s.limiter.allow(p.KeyID); !ok {
			c.Header("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			fail(c, models.Errorf(models.ErrCodeRateLimited, "rate limit exceeded for this API key; retry in %s", wait.Round(time.Millisecond)))
			return
		}
		c.Set(ctxPrincipal, p)
		c.Next()
	}
}

// principalOf returns the authenticated principal (zero when none).
func principalOf(c *gin.Context) accounts.Principal {
	p, _ := c.Get(ctxPrincipal)
	pr, _ := p.(accounts.Principal)
	return pr
}

// accountID is the authenticated ISV's account; every ISV query is scoped by it.
func accountID(c *gin.Context) string { return principalOf(c).AccountID }

// keyLimiter is a token bucket per API key.
type keyLimiter struct {
	mu     sync.Mutex
	r      rate.Limit
	burst  int
	byKey  map[string]*rate.Limiter
	pruned time.Time
}

func newKeyLimiter(perSecond float64, burst int) *keyLimiter {
	return &keyLimiter{r: rate.Limit(perSecond), burst: burst, byKey: map[string]*rate.Limiter{}, pruned: time.Now()}
}

// allow takes a token for key, or says how long until one is free.
func (k *keyLimiter) allow(key string) (time.Duration, bool) {
	now := time.Now()
	k.mu.Lock()
	l, ok := k.byKey[key]
	if !ok {
		l = rate.NewLimiter(k.r, k.burst)
		k.byKey[key] = l
	}
	if now.Sub(k.pruned) > 10*time.Minute && len(k.byKey) > 10000 {
		for key, l := range k.byKey {
			if l.TokensAt(now) >= float64(k.burst) {
				delete(k.byKey, key)
			}
		}
		k.pruned = now
	}
	k.mu.Unlock()
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg *prometheus.Registry) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tributary_http_requests_total",
			Help: "HTTP requests served, by method, route and status."}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tributary_http_request_duration_seconds",
			Help: "HTTP request latency.", Buckets: prometheus.DefBuckets}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}
