package schedule

import (
	"context"
	"time"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/sync/poll"
)

// run polls one claimed connection, renewing its lease while the poll runs,
// and then records the outcome and the next poll time.
func (s *Scheduler) run(parent context.Context, c *models.Connection) {
	ctx, cancel := context.WithTimeout(parent, s.cfg.RunTimeout)
	defer cancel()
	stop := s.heartbeat(ctx, c)
	start := time.Now()
	res, err := s.runSafely(ctx, c)
	stop()
	if err != nil && res.Status == "" {
		res.Status, res.Error = poll.RunFailed, err.Error()
	}
	if s.cfg.Observe != nil {
		s.cfg.Observe(res.Status, time.Since(start))
	}
	// The finish ends the lease; a transient failure (a dropped connection)
	// is retried, otherwise the connection would stay "syncing" until the
	// lease expires.
	fctx := context.WithoutCancel(ctx)
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := s.finish(fctx, c, res)
		if err == nil {
			return
		}
		if attempt == finishAttempts {
			s.cfg.Logger.Error("schedule: finish poll failed; the lease will expire", "connection", c.ID, "err", err)
			return
		}
		s.cfg.Logger.Warn("schedule: finish poll, retrying", "connection", c.ID, "err", err)
		time.Sleep(backoff)
		backoff *= 2
	}
}

// finishAttempts bounds the retries of a failed finish (about 3 s in all).
const finishAttempts = 6

// runSafely turns a panicking poll into a failed one, so its slot and lease
// are released.
func (s *Scheduler) runSafely(ctx context.Context, c *models.Connection) (res poll.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Logger.Error("schedule: poll panicked", "connection", c.ID, "panic", p)
			res = poll.Result{Status: poll.RunFailed, Error: "internal error: poll panicked"}
		}
	}()
	return s.cfg.Runner.Run(ctx, c)
}

// heartbeat renews the lease every Lease/3 until the returned stop is called.
func (s *Scheduler) heartbeat(ctx context.Context, c *models.Connection) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(max(s.cfg.Lease/3, time.Second))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				err := s.cfg.DB.WithContext(ctx).Exec(`UPDATE connections SET next_sync_at = ? WHERE id = ? AND lease_token = ?`,
					s.now().Add(s.cfg.Lease), c.ID, c.LeaseToken).Error
				if err != nil && ctx.Err() == nil {
					s.cfg.Logger.Warn("schedule: renew lease", "connection", c.ID, "err", err)
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

// finish ends the lease (fenced by its token): status, last error and the
// next poll time. A connection marked needs_reauth meanwhile keeps that status.
func (s *Scheduler) finish(ctx context.Context, c *models.Connection, res poll.Result) error {
	now := s.now()
	interval := s.interval(ctx, c)
	status, lastErr := models.ConnectionActive, ""
	var next time.Time
	switch res.Status {
	case poll.RunCompleted:
		next = now.Add(s.jitter(interval))
	case poll.RunDeferred:
		lastErr, next = res.Error, now.Add(res.RetryAfter)
	case poll.RunAborted:
		// The connection vanished or another run holds the lease: the fenced
		// update below changes nothing, unless the lease is still ours.
		next = now
	default: // failed
		status, lastErr = models.ConnectionError, res.Error
		if res.NeedsReauth {
			status = models.ConnectionNeedsReauth
		}
		next = now.Add(s.jitter(min(interval, s.cfg.FailureRetry)))
	}
	if len(lastErr) > 1000 {
		lastErr = lastErr[:1000]
	}
	return s.cfg.DB.WithContext(ctx).Exec(`UPDATE connections
SET status = CASE WHEN status = ? THEN status ELSE ? END, lease_token = '', next_sync_at = ?, last_error = ?, updated_at = ?
WHERE id = ? AND lease_token = ?`,
		models.ConnectionNeedsReauth, status, next, lastErr, now, c.ID, c.LeaseToken).Error
}

// interval is the connection's poll interval under pollinterval's rule:
// an admin-set override as given (down to AdminMinInterval), an ISV-set one
// at least the account's floor (else MinInterval), else the account
// default, else DefaultInterval.
func (s *Scheduler) interval(ctx context.Context, c *models.Connection) time.Duration {
	var acc *models.Account
	if s.cfg.Accounts != nil {
		a, err := s.cfg.Accounts.Get(ctx, c.AccountID)
		if err != nil {
			s.cfg.Logger.Warn("schedule: read account", "account", c.AccountID, "err", err)
		} else {
			acc = a
		}
	}
	return s.policy.Effective(c, acc)
}

// jitter spreads d by ±Jitter×d.
func (s *Scheduler) jitter(d time.Duration) time.Duration {
	if s.cfg.Jitter <= 0 {
		return d
	}
	return d + time.Duration(float64(d)*s.cfg.Jitter*(2*s.cfg.Rand()-1))
}
