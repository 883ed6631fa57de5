package fake

import (
	"fmt"
	"net/http"
	"time"
)

// WithDailyLimit turns on Salesforce's total API request allocation: per
// org, at most n API requests in any rolling 24 hours on the fake's clock.
// A request over it answers 403 REQUEST_LIMIT_EXCEEDED ("TotalRequests
// Limit exceeded.") as Salesforce does, and every answer's Sforce-Limit-Info
// header carries the usage against n.
func WithDailyLimit(n int) Option { return func(f *Fake) { f.dailyLimit = n } }

// admitLocked counts one API request of t against the daily allocation, or
// answers 403 and returns false. f.mu is held.
func (f *Fake) admitLocked(w http.ResponseWriter, t *tenant) bool {
	limit := f.dailyLimit
	if limit <= 0 {
		t.apiCalls++
		w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/15000", t.apiCalls))
		return true
	}
	now := f.clock()
	i := 0
	for i < len(t.window) && !t.window[i].After(now.Add(-24*time.Hour)) {
		i++
	}
	t.window = t.window[i:]
	if len(t.window) >= limit {
		t.refused++
		w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/%d", len(t.window), limit))
		writeError(w, http.StatusForbidden, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
		return false
	}
	t.window = append(t.window, now)
	t.apiCalls++
	w.Header().Set("Sforce-Limit-Info", fmt.Sprintf("api-usage=%d/%d", len(t.window), limit))
	return true
}

// Refused returns how many requests of org the daily allocation refused.
func (f *Fake) Refused(org string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tenants[org]; t != nil {
		return t.refused
	}
	return 0
}
