package forwarding

// Per-endpoint protections of the dispatcher: the concurrency cap, the
// in-process view of open circuits, and subscription rate limits.

import (
	"context"
	"time"

	"golang.org/x/time/rate"

	"github.com/tributary/tributary/models"
)

// endpointSlot takes one of the address's concurrency slots, waiting at most wait.
func (d *Dispatcher) endpointSlot(ctx context.Context, addr string, wait time.Duration) (func(), bool) {
	d.mu.Lock()
	sem, ok := d.endpoints[addr]
	if !ok {
		sem = make(chan struct{}, d.s.cfg.MaxPerEndpoint)
		d.endpoints[addr] = sem
	}
	d.mu.Unlock()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, true
	default:
	}
	t := time.NewTimer(max(wait, time.Second))
	defer t.Stop()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}

func (d *Dispatcher) circuitOpen(subID string, now time.Time) (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	until, ok := d.circuits[subID]
	if ok && !now.Before(until) {
		delete(d.circuits, subID)
		return time.Time{}, false
	}
	return until, ok
}

func (d *Dispatcher) setCircuit(subID string, until time.Time) {
	d.mu.Lock()
	if until.IsZero() {
		delete(d.circuits, subID)
	} else {
		d.circuits[subID] = until
	}
	d.mu.Unlock()
}

// maxRateWait is how long a delivery may wait for its subscription's rate
// limit in memory; a longer wait puts it back in the queue instead.
const maxRateWait = 2 * time.Second

type rateEntry struct {
	limit   int
	limiter *rate.Limiter
}

// rateWait reserves a slot of the subscription's rate limit: the delay to
// wait before sending, or ok false (with the delay) when it is too long to
// hold a worker for.
func (d *Dispatcher) rateWait(sub *models.Subscription) (time.Duration, bool) {
	if sub.RateLimit <= 0 {
		return 0, true
	}
	d.mu.Lock()
	e, ok := d.limiters[sub.ID]
	if !ok || e.limit != sub.RateLimit {
		e = &rateEntry{limit: sub.RateLimit, limiter: rate.NewLimiter(rate.Limit(sub.RateLimit), max(1, sub.RateLimit/10))}
		d.limiters[sub.ID] = e
	}
	d.mu.Unlock()
	r := e.limiter.Reserve()
	delay := r.Delay()
	if delay > maxRateWait {
		r.Cancel()
		return delay, false
	}
	return delay, true
}
