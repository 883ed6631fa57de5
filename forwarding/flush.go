package forwarding

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
)

// flushLoop writes results in small batches (up to 200, or whatever arrived
// within 5 ms) so one transaction carries many attempt logs and states.
// Failed writes are retried; if the process dies first, the leases expire
// and the deliveries are attempted again under the same event ids.
func (d *Dispatcher) flushLoop(ctx context.Context, in <-chan *result) {
	const maxBatch = 200
	batch := make([]*result, 0, maxBatch)
	for r := range in {
		batch = append(batch[:0], r)
		timer := time.NewTimer(5 * time.Millisecond)
	fill:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-in:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		for backoff := 50 * time.Millisecond; ; backoff = min(backoff*2, 5*time.Second) {
			err := d.flush(ctx, batch)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				d.s.log.Warn("dispatcher: results not recorded at shutdown; their leases will expire and they will be retried", "n", len(batch))
				return
			}
			d.s.log.Error("dispatcher: recording results failed, retrying", "err", err, "n", len(batch))
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
		}
	}
}

// flush records results in one transaction: the attempt log, each
// delivery's next state (fenced by its lease token) and endpoint health.
func (d *Dispatcher) flush(ctx context.Context, results []*result) error {
	if len(results) == 0 {
		return nil
	}
	now := d.s.Now()
	type health struct {
		successes, failures int
		gone                bool
	}
	bySub := map[string]*health{}
	var opened []string
	err := d.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var attempts []models.Attempt
		okIDs := map[int][]string{} // status code → delivery ids
		for _, r := range results {
			j := r.job
			if r.kind == outAttempted {
				attempts = append(attempts, models.Attempt{ID: models.NewID(models.PrefixAttempt), DeliveryID: j.d.ID,
					SubscriptionID: j.d.SubscriptionID, AccountID: j.d.AccountID, Number: j.d.Attempts + 1,
					AttemptedAt: r.at, StatusCode: r.status, ResponseTimeMs: r.elapsed.Milliseconds(),
					ResponseBody: r.body, Error: truncate(r.err, 1000)})
				h := bySub[j.d.SubscriptionID]
				if h == nil {
					h = &health{}
					bySub[j.d.SubscriptionID] = h
				}
				if r.ok() {
					h.successes++
					okIDs[r.status] = append(okIDs[r.status], j.d.ID)
					continue
				}
				h.failures++
				h.gone = h.gone || r.status == 410
			}
			if err := d.recordOne(tx, r, now); err != nil {
				return err
			}
		}
		if len(attempts) > 0 {
			if err := tx.CreateInBatches(attempts, 200).Error; err != nil {
				return fmt.Errorf("log attempts: %w", err)
			}
		}
		for code, ids := range okIDs {
			if err := d.markSucceeded(tx, results, code, ids, now); err != nil {
				return err
			}
		}
		for subID, h := range bySub {
			open, err := d.recordHealth(tx, subID, h.successes, h.failures, h.gone, now)
			if err != nil {
				return err
			}
			if open {
				opened = append(opened, subID)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for subID, h := range bySub {
		if h.successes > 0 {
			d.setCircuit(subID, time.Time{})
		}
	}
	for _, subID := range opened {
		d.setCircuit(subID, now.Add(d.s.cfg.CircuitCooldown))
	}
	for _, r := range results {
		d.m.outcome(r)
	}
	return nil
}

// markSucceeded ends the successful deliveries of one status code with one
// statement per lease token.
func (d *Dispatcher) markSucceeded(tx *gorm.DB, results []*result, code int, ids []string, now time.Time) error {
	byToken := map[string][]string{}
	set := map[string]bool{}
	for _, id := range ids {
		set[id] = true
	}
	for _, r := range results {
		if set[r.job.d.ID] {
			byToken[r.job.token] = append(byToken[r.job.token], r.job.d.ID)
		}
	}
	for token, ids := range byToken {
		err := tx.Model(&models.Delivery{}).Where("id IN ? AND lease_token = ?", ids, token).Updates(map[string]any{
			"status": models.DeliverySucceeded, "attempts": gorm.Expr("attempts + 1"), "lease_token": "",
			"last_status_code": code, "last_error": "", "last_attempt_at": now, "updated_at": now}).Error
		if err != nil {
			return fmt.Errorf("mark delivered: %w", err)
		}
	}
	return nil
}

// recordOne writes the next state of a delivery that did not succeed.
func (d *Dispatcher) recordOne(tx *gorm.DB, r *result, now time.Time) error {
	j := r.job
	q := tx.Model(&models.Delivery{}).Where("id = ? AND lease_token = ?", j.d.ID, j.token)
	var upd map[string]any
	switch r.kind {
	case outRelease:
		upd = map[string]any{"next_attempt_at": r.releaseAt, "lease_token": ""}
	case outDeadNoSend:
		upd = map[string]any{"status": models.DeliveryDead, "lease_token": "", "last_error": truncate(r.err, 1000), "updated_at": now}
	default:
		retries := j.d.Retries + 1
		upd = map[string]any{"attempts": gorm.Expr("attempts + 1"), "retries": retries, "lease_token": "",
			"last_status_code": r.status, "last_error": truncate(r.err, 1000), "last_attempt_at": r.at, "updated_at": now}
		if j.force { // a test send is one attempt, never retried
			upd["status"] = models.DeliveryDead
			break
		}
		next, ok := policyOf(j.sub).next(r.at, retries)
		if r.retryAfter > 0 && ok {
			next = r.at.Add(r.retryAfter)
		}
		switch {
		case r.status == 410:
			upd["status"], upd["last_error"] = models.DeliveryDead, "endpoint answered 410 Gone; subscription disabled"
		case !ok:
			upd["status"] = models.DeliveryDead
		default:
			upd["status"], upd["next_attempt_at"] = models.DeliveryFailed, next
		}
	}
	if err := q.Updates(upd).Error; err != nil {
		return fmt.Errorf("record delivery %s: %w", j.d.ID, err)
	}
	return nil
}

// recordHealth updates an endpoint's failure streak; it opens the circuit at
// the threshold, disables the subscription on 410 or after failing for
// DisableAfter, and reports whether it opened the circuit.
func (d *Dispatcher) recordHealth(tx *gorm.DB, subID string, successes, failures int, gone bool, now time.Time) (bool, error) {
	q := tx.Model(&models.Subscription{}).Where("id = ?", subID)
	if gone {
		return false, d.disable(tx, subID, "endpoint answered 410 Gone", now)
	}
	if successes > 0 {
		return false, q.Where("consecutive_failures <> 0 OR circuit_open_until IS NOT NULL").
			Updates(map[string]any{"consecutive_failures": 0, "failing_since": nil, "circuit_open_until": nil}).Error
	}
	if err := q.Updates(map[string]any{"consecutive_failures": gorm.Expr("consecutive_failures + ?", failures),
		"failing_since": gorm.Expr("COALESCE(failing_since, ?)", now)}).Error; err != nil {
		return false, fmt.Errorf("record failures of %s: %w", subID, err)
	}
	var sub models.Subscription
	if err := tx.Select("id", "consecutive_failures", "failing_since", "circuit_open_until", "active").
		Take(&sub, "id = ?", subID).Error; err != nil {
		return false, fmt.Errorf("load health of %s: %w", subID, err)
	}
	if d.s.cfg.DisableAfter > 0 && sub.Active && sub.FailingSince != nil && now.Sub(*sub.FailingSince) >= d.s.cfg.DisableAfter {
		d.s.log.Warn("webhook disabled: endpoint failing too long", "webhook", subID, "since", sub.FailingSince)
		return false, d.disable(tx, subID,
			fmt.Sprintf("endpoint failing without success since %s", sub.FailingSince.UTC().Format(time.RFC3339)), now)
	}
	if sub.ConsecutiveFailures < d.s.cfg.CircuitThreshold || (sub.CircuitOpenUntil != nil && sub.CircuitOpenUntil.After(now)) {
		return false, nil
	}
	until := now.Add(d.s.cfg.CircuitCooldown)
	if err := tx.Model(&models.Subscription{}).Where("id = ?", subID).Update("circuit_open_until", until).Error; err != nil {
		return false, fmt.Errorf("open circuit of %s: %w", subID, err)
	}
	// Rest the whole endpoint: due (or abandoned) deliveries wait for the cooldown.
	err := tx.Model(&models.Delivery{}).
		Where("subscription_id = ? AND status IN ? AND next_attempt_at < ? AND (lease_token = '' OR next_attempt_at <= ?)",
			subID, []string{models.DeliveryPending, models.DeliveryFailed}, until, now).
		Update("next_attempt_at", until).Error
	if err != nil {
		return false, fmt.Errorf("rest deliveries of %s: %w", subID, err)
	}
	d.s.log.Warn("webhook circuit open", "webhook", subID, "failures", sub.ConsecutiveFailures, "until", until)
	return true, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// dispatchMetrics are the dispatcher's Prometheus series.
type dispatchMetrics struct {
	outcomes *prometheus.CounterVec
	latency  prometheus.Histogram
}

func newDispatchMetrics(reg prometheus.Registerer) *dispatchMetrics {
	m := &dispatchMetrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tributary_delivery_attempts_total",
			Help: "Delivery attempts by outcome."}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tributary_delivery_attempt_seconds",
			Help: "Receiver response time.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
	}
	if reg != nil {
		reg.MustRegister(m.outcomes, m.latency)
	}
	return m
}

func (m *dispatchMetrics) observe(r *result) { m.latency.Observe(r.elapsed.Seconds()) }

func (m *dispatchMetrics) outcome(r *result) {
	switch {
	case r.kind == outRelease:
		m.outcomes.WithLabelValues("released").Inc()
	case r.kind == outDeadNoSend:
		m.outcomes.WithLabelValues("dropped").Inc()
	case r.ok():
		m.outcomes.WithLabelValues("succeeded").Inc()
	default:
		m.outcomes.WithLabelValues("failed").Inc()
	}
}

// disable turns a subscription off with reason and, in the same transaction,
// publishes webhook/disabled to the account's other subscriptions.
func (d *Dispatcher) disable(tx *gorm.DB, subID, reason string, now time.Time) error {
	var sub models.Subscription
	if err := tx.Select("id", "account_id", "address", "active").Take(&sub, "id = ?", subID).Error; err != nil {
		return fmt.Errorf("disable %s: %w", subID, err)
	}
	if !sub.Active {
		return nil // already disabled (by another process or the ISV)
	}
	if err := tx.Model(&models.Subscription{}).Where("id = ?", subID).Updates(map[string]any{"active": false,
		"disabled_reason": reason, "disabled_at": now, "updated_at": now}).Error; err != nil {
		return fmt.Errorf("disable %s: %w", subID, err)
	}
	payload, _ := json.Marshal(map[string]any{"webhookId": sub.ID, "address": sub.Address, "reason": reason, "disabledAt": now})
	_, err := d.s.publish(tx.Statement.Context, tx, sub.AccountID, "", []*models.Envelope{{Topic: models.TopicWebhookDisabled,
		UpdateType: models.UpdateUpdated, Source: models.SourceSystem, DataPayload: payload}})
	return err
}
