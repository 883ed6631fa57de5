package fake

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// WithRateLimits turns on HubSpot's per-account limits on the fake's clock:
// the CRM search endpoints take search requests per rolling second, and
// every API request counts against burst requests per rolling 10 seconds.
// A request over either answers 429 with the body and headers HubSpot sends
// (errorType RATE_LIMIT, policyName SECONDLY or TEN_SECONDLY_ROLLING).
// HubSpot's documented figures are WithRateLimits(4, 100).
func WithRateLimits(search, burst int) Option {
	return func(s *Server) { s.limits = &limits{search: search, burst: burst, log: map[int64]*requestLog{}} }
}

type limits struct {
	search, burst int
	log           map[int64]*requestLog
	throttled     int
	served        int
}

// requestLog keeps a portal's recent request times.
type requestLog struct{ all, search []time.Time }

// within keeps the times after now−window and returns them.
func within(ts []time.Time, now time.Time, window time.Duration) []time.Time {
	i := 0
	for i < len(ts) && !ts[i].After(now.Add(-window)) {
		i++
	}
	return ts[i:]
}

// admitLocked counts one request of portal, or answers 429 and returns
// false. The caller holds s.mu.
func (s *Server) admitLocked(w http.ResponseWriter, r *http.Request, portal int64) bool {
	l := s.limits
	if l == nil {
		return true
	}
	now := s.nowLocked()
	rl := l.log[portal]
	if rl == nil {
		rl = &requestLog{}
		l.log[portal] = rl
	}
	rl.all = within(rl.all, now, 10*time.Second)
	rl.search = within(rl.search, now, time.Second)
	isSearch := r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/search")
	switch {
	case len(rl.all) >= l.burst:
		l.throttled++
		writeRateLimit(w, "TEN_SECONDLY_ROLLING", "You have reached your ten_secondly_rolling limit.", l.burst, 0)
		return false
	case isSearch && len(rl.search) >= l.search:
		l.throttled++
		writeRateLimit(w, "SECONDLY", "You have reached your secondly limit.", l.search, 0)
		return false
	}
	rl.all = append(rl.all, now)
	if isSearch {
		rl.search = append(rl.search, now)
	}
	l.served++
	w.Header().Set("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")
	w.Header().Set("X-HubSpot-RateLimit-Max", strconv.Itoa(l.burst))
	w.Header().Set("X-HubSpot-RateLimit-Remaining", strconv.Itoa(l.burst-len(rl.all)))
	return true
}

func writeRateLimit(w http.ResponseWriter, policy, message string, max, remaining int) {
	w.Header().Set("Retry-After", "1")
	w.Header().Set("X-HubSpot-RateLimit-Max", strconv.Itoa(max))
	w.Header().Set("X-HubSpot-RateLimit-Remaining", strconv.Itoa(remaining))
	writeJSON(w, http.StatusTooManyRequests, map[string]any{
		"status": "error", "message": message, "errorType": "RATE_LIMIT",
		"correlationId": correlationID(), "policyName": policy,
	})
}

// Throttled returns how many requests the limits refused and served.
func (s *Server) Throttled() (refused, served int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.limits == nil {
		return 0, 0
	}
	return s.limits.throttled, s.limits.served
}
