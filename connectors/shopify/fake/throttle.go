package fake

import (
	"fmt"
	"math"
	"net/http"
	"time"
)

// WithRateLimit turns on Shopify's REST Admin API throttling: per shop (per
// app and store), a leaky bucket of size requests leaking leak per second
// on the fake's clock; a request that would overflow it is answered 429
// with Retry-After and the body Shopify sends, and every answer carries
// X-Shopify-Shop-Api-Call-Limit ("used/size"). Shopify's standard plan is
// WithRateLimit(40, 2).
func WithRateLimit(size int, leak float64) Option {
	return func(s *Server) { s.throttle = &throttle{size: float64(size), leak: leak, level: map[string]*bucket{}} }
}

type throttle struct {
	size, leak float64
	level      map[string]*bucket
	throttled  int
	served     int
}

type bucket struct {
	level float64
	at    time.Time
}

// admitLocked fills shop's bucket with one request, or answers 429 and
// returns false. The caller holds s.mu.
func (s *Server) admitLocked(w http.ResponseWriter, shop string) bool {
	t := s.throttle
	if t == nil {
		w.Header().Set(callLimitHeader, "1/40")
		return true
	}
	now := s.now()
	b := t.level[shop]
	if b == nil {
		b = &bucket{at: now}
		t.level[shop] = b
	}
	b.level = math.Max(0, b.level-t.leak*now.Sub(b.at).Seconds())
	b.at = now
	if b.level+1 > t.size+1e-9 {
		t.throttled++
		w.Header().Set(callLimitHeader, fmt.Sprintf("%d/%d", int(t.size), int(t.size)))
		w.Header().Set("Retry-After", "2.0")
		writeJSON(w, http.StatusTooManyRequests, errRateLimited)
		return false
	}
	b.level++
	t.served++
	w.Header().Set(callLimitHeader, fmt.Sprintf("%d/%d", int(math.Ceil(b.level)), int(t.size)))
	return true
}

// Throttled returns how many requests the rate limit refused and served.
func (s *Server) Throttled() (refused, served int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.throttle == nil {
		return 0, 0
	}
	return s.throttle.throttled, s.throttle.served
}
