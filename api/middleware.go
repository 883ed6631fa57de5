package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

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

// securityHeaders sets the standard protective headers on every answer, and
// Cache-Control: no-store (API answers may carry secrets: webhook secrets,
// new API keys) unless a handler sets its own (the public JWKS).
func (s *Server) securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	c.Next()
}

// validInput refuses NUL bytes and invalid UTF-8 in the path, the query
// (keys and values, after decoding) and the request headers (names and
// values; inbound webhooks store theirs in the inbox) with 400 before any
// handler or database sees them; bindJSON does the same for bodies.
func (s *Server) validInput(c *gin.Context) {
	if !cleanString(c.Request.URL.Path) {
		fail(c, models.Errorf(models.ErrCodeInvalid, "the path holds a NUL byte or invalid UTF-8"))
		return
	}
	for k, vs := range c.Request.Header {
		if !cleanString(k) {
			fail(c, models.Errorf(models.ErrCodeInvalid, "a request header name holds a NUL byte or invalid UTF-8"))
			return
		}
		for _, v := range vs {
			if !cleanString(v) {
				fail(c, models.Errorf(models.ErrCodeInvalid, "request header %s holds a NUL byte or invalid UTF-8", k))
				return
			}
		}
	}
	q, err := url.ParseQuery(c.Request.URL.RawQuery)
	if err != nil {
		fail(c, models.Errorf(models.ErrCodeInvalid, "malformed query string"))
		return
	}
	for k, vs := range q {
		if !cleanString(k) {
			fail(c, models.Errorf(models.ErrCodeInvalid, "a query parameter name holds a NUL byte or invalid UTF-8"))
			return
		}
		for _, v := range vs {
			if !cleanString(v) {
				fail(c, &models.Error{Code: models.ErrCodeInvalid, Field: k, Message: "query parameter " + k + " holds a NUL byte or invalid UTF-8"})
				return
			}
		}
	}
	c.Next()
}

// cleanString reports whether s is valid UTF-8 without NUL bytes: what both
// databases store in a text column.
func cleanString(s string) bool { return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) }

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
	// Labels are bounded: route templates (or "unmatched"), a fixed set of
	// methods and the status code.
	method := methodLabel(c.Request.Method)
	s.metrics.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	s.metrics.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())
	if route == "/healthz" || route == "/readyz" || route == "/metrics" {
		return
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	s.deps.Logger.LogAttrs(c.Request.Context(), level, "http request",
		slog.String("requestId", c.GetString(ctxRequestID)), slog.String("method", method),
		slog.String("route", route), slog.Int("status", status), slog.Duration("elapsed", elapsed),
		slog.String("account", principalOf(c).AccountID))
}

// authenticate checks the bearer key, its role and its rate limit. Failed
// authentications are rate limited per source IP (api.auth_failure_rate):
// past the burst, that IP gets 429 without a key lookup.
func (s *Server) authenticate(role string) gin.HandlerFunc {
	return func(c *gin.Context) {
		ip, now := sourceIP(c), time.Now()
		if wait, blocked := s.authFails.blocked(ip, now); blocked {
			rateLimited(c, wait, "too many failed authentications from this address")
			return
		}
		h := c.GetHeader("Authorization")
		key, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || key == "" {
			s.authFails.failed(ip, now)
			c.Header("WWW-Authenticate", `Bearer realm="tributary"`)
			fail(c, models.Errorf(models.ErrCodeUnauthorized, "missing bearer API key in the Authorization header"))
			return
		}
		p, err := s.deps.Accounts.Authenticate(c.Request.Context(), strings.TrimSpace(key))
		if err != nil {
			var e *models.Error
			if errors.As(err, &e) && e.Code == models.ErrCodeUnauthorized {
				s.authFails.failed(ip, now)
			}
			fail(c, err)
			return
		}
		if p.Role != role {
			fail(c, models.Errorf(models.ErrCodeForbidden, "this endpoint needs an %s key", role))
			return
		}
		if wait, ok := s.limiter.allow(p.KeyID); !ok {
			rateLimited(c, wait, "rate limit exceeded for this API key")
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
