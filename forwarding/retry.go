package forwarding

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"time"

	"github.com/tributary/tributary/models"
)

// DefaultSchedule is the retry schedule of a subscription that sets none:
// about 1m, 5m, 15m, 1h, 4h, 12h, then daily up to its retry budget.
var DefaultSchedule = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute,
	time.Hour, 4 * time.Hour, 12 * time.Hour, 24 * time.Hour}

// Retry bounds accepted from the API.
const (
	DefaultMaxRetries = 8
	MaxRetriesLimit   = 30
	MaxScheduleLen    = 30
	MaxBackoff        = 24 * time.Hour
	minBackoff        = time.Second
	jitterFraction    = 0.1
)

// retryPolicy is a subscription's retry schedule.
type retryPolicy struct {
	maxRetries int
	multiplier float64         // > 0: 1m × multiplier^n
	schedule   []time.Duration // explicit; the last entry repeats
}

func policyOf(s *models.Subscription) retryPolicy {
	p := retryPolicy{maxRetries: s.MaxRetries, multiplier: s.BackoffMultiplier}
	if s.Schedule != "" {
		var strs []string
		_ = json.Unmarshal([]byte(s.Schedule), &strs)
		for _, str := range strs {
			if d, err := time.ParseDuration(str); err == nil {
				p.schedule = append(p.schedule, d)
			}
		}
	}
	return p
}

// delay is the wait before retry n (1-based), before jitter.
func (p retryPolicy) delay(n int) time.Duration {
	switch {
	case len(p.schedule) > 0:
		return p.schedule[min(n, len(p.schedule))-1]
	case p.multiplier > 0:
		d := float64(time.Minute) * math.Pow(p.multiplier, float64(n-1))
		if d > float64(MaxBackoff) {
			return MaxBackoff
		}
		return time.Duration(d)
	default:
		return DefaultSchedule[min(n, len(DefaultSchedule))-1]
	}
}

// next returns when retry n (1-based) is due, with ±10% jitter so a burst of
// failures does not come back as a burst; ok is false when the budget is spent.
func (p retryPolicy) next(now time.Time, n int) (time.Time, bool) {
	if n > p.maxRetries {
		return time.Time{}, false
	}
	d := float64(p.delay(n))
	d += d * jitterFraction * (2*rand.Float64() - 1)
	return now.Add(time.Duration(d)), true
}
