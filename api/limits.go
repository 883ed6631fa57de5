package api

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"

	"github.com/tributary/tributary/models"
)

// methodLabels is the fixed set of HTTP methods used as metric labels; any
// other method is "OTHER", so made-up methods cannot grow /metrics.
var methodLabels = map[string]string{
	http.MethodGet: http.MethodGet, http.MethodHead: http.MethodHead, http.MethodPost: http.MethodPost,
	http.MethodPut: http.MethodPut, http.MethodPatch: http.MethodPatch, http.MethodDelete: http.MethodDelete,
	http.MethodOptions: http.MethodOptions,
}

// methodLabel is the bounded label of method.
func methodLabel(method string) string {
	if m, ok := methodLabels[method]; ok {
		return m
	}
	return "OTHER"
}

// sourceIP is the client address rate limits are kept by: the peer address,
// or what the trusted proxies (api.trusted_proxies) say it forwarded for.
func sourceIP(c *gin.Context) string {
	ip := c.ClientIP()
	if ip == "" {
		ip, _, _ = net.SplitHostPort(c.Request.RemoteAddr)
	}
	return ip
}

// authFailures rate limits failed authentications per source IP: once an IP
// spent its burst of failures, every authenticated route answers it 429
// without looking the key up, until the bucket refills.
type authFailures struct {
	buckets *buckets
}

func (a *authFailures) blocked(ip string, now time.Time) (time.Duration, bool) {
	l := a.buckets.get(ip, now)
	if l.TokensAt(now) >= 1 {
		return 0, false
	}
	r := l.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return d, true
}

func (a *authFailures) failed(ip string, now time.Time) { a.buckets.get(ip, now).AllowN(now, 1) }

// buckets is a token bucket per key (API key id, source IP), pruned of full
// buckets so it stays bounded.
type buckets struct {
	mu     sync.Mutex
	r      rate.Limit
	burst  int
	by     map[string]*rate.Limiter
	pruned time.Time
}

func newBuckets(perSecond float64, burst int) *buckets {
	return &buckets{r: rate.Limit(perSecond), burst: burst, by: map[string]*rate.Limiter{}, pruned: time.Now()}
}

func (b *buckets) get(key string, now time.Time) *rate.Limiter {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.by[key]
	if !ok {
		l = rate.NewLimiter(b.r, b.burst)
		b.by[key] = l
	}
	if len(b.by) > 10000 && now.Sub(b.pruned) > time.Minute {
		for k, l := range b.by {
			if l.TokensAt(now) >= float64(b.burst) {
				delete(b.by, k)
			}
		}
		b.pruned = now
	}
	return l
}

// allow takes a token for key, or says how long until one is free.
func (b *buckets) allow(key string) (time.Duration, bool) {
	now := time.Now()
	r := b.get(key, now).ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

// rateLimited answers 429 with Retry-After.
func rateLimited(c *gin.Context, wait time.Duration, what string) {
	c.Header("Retry-After", strconv.Itoa(max(1, int(math.Ceil(wait.Seconds())))))
	fail(c, models.Errorf(models.ErrCodeRateLimited, "%s; retry in %s", what, wait.Round(time.Millisecond)))
}

// inboundGate bounds unauthenticated provider webhook load before any body
// byte is read: a per-source-IP rate limit, the declared Content-Length
// against api.max_body_bytes, and a cap on requests handled at once.
func (s *Server) inboundGate(c *gin.Context) {
	if c.Request.ContentLength > s.deps.Config.API.MaxBodyBytes {
		c.Header("Connection", "close") // do not drain what we refuse
		fail(c, models.Errorf(models.ErrCodeTooLarge, "request body exceeds %d bytes", s.deps.Config.API.MaxBodyBytes))
		return
	}
	if wait, ok := s.inboundRate.allow(sourceIP(c)); !ok {
		rateLimited(c, wait, "too many webhook requests from this address")
		return
	}
	select {
	case s.inboundSlots <- struct{}{}:
		defer func() { <-s.inboundSlots }()
	default:
		c.Header("Retry-After", "1")
		fail(c, models.Errorf(models.ErrCodeUnavailable, "too many webhook requests in progress; retry shortly"))
		return
	}
	c.Next()
}
