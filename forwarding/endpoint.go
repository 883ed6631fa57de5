package forwarding

// Per-endpoint protections of the dispatcher: the concurrency cap, the
// in-process view of open circuits, and subscription rate limits.

import (
	"context"
	"net"
	"net/url"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/tributary/tributary/models"
)

// maxSlotWait bounds how long a claimed job waits for a slot of its
// endpoint's origin before it is put back in the queue: long enough to ride
// over the turnover of a fast endpoint, short enough that a saturated or
// hanging one never holds workers.
const maxSlotWait = time.Second

// endpointSlot takes one of the concurrency slots of the address's origin
// (scheme, host, port: a query string or path does not make a new endpoint),
// waiting at most maxSlotWait; false when none came free.
func (d *Dispatcher) endpointSlot(ctx context.Context, addr string) (func(), bool) {
	key := originOf(addr)
	d.mu.Lock()
	sem, ok := d.endpoints[key]
	if !ok {
		sem = make(chan struct{}, d.s.cfg.MaxPerEndpoint)
		d.endpoints[key] = sem
	}
	d.mu.Unlock()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, true
	default:
	}
	t := time.NewTimer(maxSlotWait)
	defer t.Stop()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}

// originOf is the scheme://host:port of addr, lower-cased, with the scheme's
// default port filled in; addr itself when it does not parse.
func originOf(addr string) string {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return addr
	}
	scheme := strings.ToLower(u.Scheme)
	port := u.Port()
	if port == "" {
		port = "443"
		if scheme == "http" {
			port = "80"
		}
	}
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
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
