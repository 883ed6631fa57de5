package forwarding

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/tributary/tributary/internal/dbtext"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
)

// flushLoop writes results in small batches (up to 200, or whatever arrived
// within 5 ms) so one transaction carries many attempt logs and states.
//
// A batch the database refuses is recorded row by row (flush), so one bad
// row never holds back the others. The results that could not be written
// for a reason that may pass (the database unreachable, a connection
// terminated) are retried, a bounded number of times: then they are
// dropped, and their leases expire so the deliveries are attempted again
// under the same event ids. Nothing is retried forever, nothing is lost.
func (d *Dispatcher) flushLoop(ctx context.Context, in <-chan *result) {
	const maxBatch = 200
	const maxTries = 8 // about 13 s of backoff in all
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
		backoff := 50 * time.Millisecond
		for try := 1; ; try++ {
			err := d.flush(ctx, batch)
			if err == nil {
				break
			}
			if uw := (*unwrittenError)(nil); errors.As(err, &uw) {
				batch = uw.rows // the others are recorded
			}
			if ctx.Err() != nil {
				d.s.log.Warn("dispatcher: results not recorded at shutdown; their leases will expire and they will be retried", "n", len(batch))
				return
			}
			if try == maxTries {
				d.s.log.Error("dispatcher: results dropped after repeated recording failures; their leases will expire and they will be retried",
					"err", err, "n", len(batch))
				d.m.unrecorded.Add(float64(len(batch)))
				break
			}
			d.s.log.Error("dispatcher: recording results failed, retrying", "err", err, "n", len(batch))
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}
}

// unwrittenError is flush's error when some results could not be written
// for a reason that may pass (a terminated connection, a serialization
// failure, a deadlock): rows are the results still to record.
type unwrittenError struct {
	rows []*result
	err  error
}

func (e *unwrittenError) Error() string {
	return fmt.Sprintf("%d results not recorded: %v", len(e.rows), e.err)
}

func (e *unwrittenError) Unwrap() error { return e.err }

// flush records results: in one transaction when it can; when that fails,
// row by row. A row the database refuses for its content
// (storage.IsRefusal) is ended dead with the reason (recordRefused); a row
// that failed for any other reason is never ended: flush then returns an
// *unwrittenError holding the rows still to record, so they are retried.
func (d *Dispatcher) flush(ctx context.Context, results []*result) error {
	if len(results) == 0 {
		return nil
	}
	err := d.flushBatch(ctx, results)
	if err == nil || ctx.Err() != nil {
		return err
	}
	d.s.log.Warn("dispatcher: recording a batch failed; recording row by row", "err", err, "n", len(results))
	var unwritten []*result
	var last error
	for _, r := range results {
		// Alone, a row that failed only with its batch (a deadlock victim,
		// a neighbour's bad row) is recorded normally.
		if err = d.flushBatch(ctx, []*result{r}); err == nil {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !storage.IsRefusal(err) {
			// The database did not refuse this row, it failed to write it:
			// ending the delivery would lose a change the receiver never got.
			unwritten, last = append(unwritten, r), fmt.Errorf("record %s: %w", r.job.d.ID, err)
			continue
		}
		if rerr := d.recordRefused(ctx, r, err); rerr != nil {
			unwritten, last = append(unwritten, r), fmt.Errorf("record %s: %w (after: %v)", r.job.d.ID, rerr, err)
		}
	}
	if len(unwritten) > 0 {
		return &unwrittenError{rows: unwritten, err: last}
	}
	return nil
}

// recordRefused ends a delivery whose result the database refused: dead,
// with the reason in last_error (visible in history and dead letters, where
// it can be replayed), without its attempt log. The cause may be the row
// itself, so it is never retried as it was.
func (d *Dispatcher) recordRefused(ctx context.Context, r *result, cause error) error {
	j := r.job
	now := d.s.Now()
	upd := map[string]any{"status": models.DeliveryDead, "lease_token": "", "updated_at": now,
		"last_error": dbtext.CleanString("result could not be recorded: "+cause.Error(), models.AttemptErrorSize)}
	if r.kind == outAttempted {
		upd["attempts"], upd["last_status_code"], upd["last_attempt_at"] = gorm.Expr("attempts + 1"), r.status, r.at
	}
	res := d.s.ddb.WithContext(ctx).Model(&models.Delivery{}).Where("id = ? AND lease_token = ?", j.d.ID, j.token).Updates(upd)
	if res.Error != nil {
		return res.Error
	}
	d.s.log.Error("dispatcher: result refused by the database; delivery dead", "delivery", j.d.ID, "webhook", j.d.SubscriptionID, "err", cause)
	d.m.outcomes.WithLabelValues("unrecordable").Inc()
	return nil
}

// subHealth is one subscription's share of a batch.
type subHealth struct {
	account             string
	successes, failures int
	gone                bool
}

// flushBatch records results in one transaction: the attempt log, each
// delivery's next state (fenced by its lease token) and endpoint health.
// Subscription rows are locked in id order, and webhook/disabled notices
// published last in (account, id) order, so that concurrent flushes of
// several processes never deadlock.
func (d *Dispatcher) flushBatch(ctx context.Context, results []*result) error {
	now := d.s.Now()
	bySub := map[string]*subHealth{}
	var opened []string
	// Delivery rows too are written in id order.
	results = slices.Clone(results)
	slices.SortFunc(results, func(a, b *result) int { return cmp.Compare(a.job.d.ID, b.job.d.ID) })
	err := d.s.ddb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var attempts []models.Attempt
		okIDs := map[int][]string{} // status code → delivery ids
		for _, r := range results {
			j := r.job
			if r.kind == outAttempted {
				attempts = append(attempts, models.Attempt{ID: models.NewID(models.PrefixAttempt), DeliveryID: j.d.ID,
					SubscriptionID: j.d.SubscriptionID, AccountID: j.d.AccountID, Number: j.d.Attempts + 1,
					AttemptedAt: r.at, StatusCode: r.status, ResponseTimeMs: r.elapsed.Milliseconds(),
					ResponseBody: dbtext.CleanString(r.body, models.AttemptResponseBodySize), Error: r.errText()})
				h := bySub[j.d.SubscriptionID]
				if h == nil {
					h = &subHealth{account: j.d.AccountID}
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
		for _, code := range slices.Sorted(maps.Keys(okIDs)) {
			if err := d.markSucceeded(tx, results, code, okIDs[code], now); err != nil {
				return err
			}
		}
		type disabling struct{ account, sub, reason string }
		var disables []disabling
		for _, subID := range slices.Sorted(maps.Keys(bySub)) {
			h := bySub[subID]
			open, reason, err := d.recordHealth(tx, subID, h, now)
			if err != nil {
				return err
			}
			if open {
				opened = append(opened, subID)
			}
			if reason != "" {
				disables = append(disables, disabling{h.account, subID, reason})
			}
		}
		slices.SortFunc(disables, func(a, b disabling) int {
			return cmp.Or(cmp.Compare(a.account, b.account), cmp.Compare(a.sub, b.sub))
		})
		for _, x := range disables {
			if err := d.disable(tx, x.sub, x.reason, now); err != nil {
				return err
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
		if r.ok() && r.job.event != nil && !r.job.event.CreatedAt.IsZero() {
			d.m.e2e.Observe(max(0, now.Sub(r.job.event.CreatedAt).Seconds()))
		}
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
	for _, token := range slices.Sorted(maps.Keys(byToken)) {
		ids := byToken[token]
		slices.Sort(ids)
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
	case outLocal:
		// Not attempted: no retry consumed, status unchanged, the reason visible.
		upd = map[string]any{"next_attempt_at": r.releaseAt, "lease_token": "", "last_error": r.errText(), "updated_at": now}
	case outDeadNoSend:
		upd = map[string]any{"status": models.DeliveryDead, "lease_token": "", "last_error": r.errText(), "updated_at": now}
	default:
		retries := j.d.Retries + 1
		upd = map[string]any{"attempts": gorm.Expr("attempts + 1"), "retries": retries, "lease_token": "",
			"last_status_code": r.status, "last_error": r.errText(), "last_attempt_at": r.at, "updated_at": now}
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
// the threshold and reports whether it did, and returns a reason when the
// subscription must be disabled (410, or failing for DisableAfter). A
// subscription deleted meanwhile is skipped.
func (d *Dispatcher) recordHealth(tx *gorm.DB, subID string, h *subHealth, now time.Time) (bool, string, error) {
	q := tx.Model(&models.Subscription{}).Where("id = ?", subID)
	if h.gone {
		return false, "endpoint answered 410 Gone", nil
	}
	if h.successes > 0 {
		err := q.Where("consecutive_failures <> 0 OR circuit_open_until IS NOT NULL").
			Updates(map[string]any{"consecutive_failures": 0, "failing_since": nil, "circuit_open_until": nil}).Error
		if err != nil {
			return false, "", fmt.Errorf("record success of %s: %w", subID, err)
		}
		return false, "", nil
	}
	res := q.Updates(map[string]any{"consecutive_failures": gorm.Expr("consecutive_failures + ?", h.failures),
		"failing_since": gorm.Expr("COALESCE(failing_since, ?)", now)})
	if res.Error != nil {
		return false, "", fmt.Errorf("record failures of %s: %w", subID, res.Error)
	}
	if res.RowsAffected == 0 {
		return false, "", nil // deleted while its delivery was in flight
	}
	var subs []models.Subscription
	if err := tx.Select("id", "consecutive_failures", "failing_since", "circuit_open_until", "active").
		Where("id = ?", subID).Limit(1).Find(&subs).Error; err != nil {
		return false, "", fmt.Errorf("load health of %s: %w", subID, err)
	}
	if len(subs) == 0 {
		return false, "", nil
	}
	sub := subs[0]
	if d.s.cfg.DisableAfter > 0 && sub.Active && sub.FailingSince != nil && now.Sub(*sub.FailingSince) >= d.s.cfg.DisableAfter {
		d.s.log.Warn("webhook disabled: endpoint failing too long", "webhook", subID, "since", sub.FailingSince)
		return false, fmt.Sprintf("endpoint failing without success since %s", sub.FailingSince.UTC().Format(time.RFC3339)), nil
	}
	if sub.ConsecutiveFailures < d.s.cfg.CircuitThreshold || (sub.CircuitOpenUntil != nil && sub.CircuitOpenUntil.After(now)) {
		return false, "", nil
	}
	until := now.Add(d.s.cfg.CircuitCooldown)
	if err := tx.Model(&models.Subscription{}).Where("id = ?", subID).Update("circuit_open_until", until).Error; err != nil {
		return false, "", fmt.Errorf("open circuit of %s: %w", subID, err)
	}
	// Rest the whole endpoint: due (or abandoned) deliveries wait for the cooldown.
	err := tx.Model(&models.Delivery{}).
		Where("subscription_id = ? AND status IN ? AND next_attempt_at < ? AND (lease_token = '' OR next_attempt_at <= ?)",
			subID, []string{models.DeliveryPending, models.DeliveryFailed}, until, now).
		Update("next_attempt_at", until).Error
	if err != nil {
		return false, "", fmt.Errorf("rest deliveries of %s: %w", subID, err)
	}
	d.s.log.Warn("webhook circuit open", "webhook", subID, "failures", sub.ConsecutiveFailures, "until", until)
	return true, "", nil
}

// dispatchMetrics are the dispatcher's Prometheus series.
type dispatchMetrics struct {
	outcomes   *prometheus.CounterVec
	local      *prometheus.CounterVec
	unrecorded prometheus.Counter
	saturated  prometheus.Counter
	latency    prometheus.Histogram
	e2e        prometheus.Histogram
	depth      prometheus.Gauge
	due        prometheus.Gauge
	oldest     prometheus.Gauge
	listening  prometheus.Gauge
}

func newDispatchMetrics(reg prometheus.Registerer) *dispatchMetrics {
	m := &dispatchMetrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tributary_delivery_attempts_total",
			Help: "Delivery attempts by outcome."}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tributary_delivery_attempt_seconds",
			Help: "Receiver response time.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		local: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tributary_delivery_local_errors_total",
			Help: "Deliveries not attempted because of a local error (no retry consumed, endpoint health untouched), by stage."},
			[]string{"stage"}),
		unrecorded: prometheus.NewCounter(prometheus.CounterOpts{Name: "tributary_delivery_results_unrecorded_total",
			Help: "Attempt results dropped because the database could not be written; their leases expire and they are retried."}),
		saturated: prometheus.NewCounter(prometheus.CounterOpts{Name: "tributary_delivery_endpoint_saturated_total",
			Help: "Claimed deliveries put back for about a second because their endpoint origin was at dispatcher.max_per_endpoint."}),
		e2e: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tributary_delivery_capture_to_delivered_seconds",
			Help:    "From the event's creation (the capture transaction) to its 2xx being recorded, per delivery.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 16)}),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tributary_delivery_queue_depth",
			Help: "Queued deliveries (pending or failed awaiting a retry), sampled every few seconds."}),
		due: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tributary_delivery_queue_due",
			Help: "Queued deliveries due now and not claimed, sampled every few seconds."}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tributary_delivery_queue_oldest_due_seconds",
			Help: "How long the most overdue unclaimed delivery has been due (0 when none is), sampled every few seconds."}),
		listening: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tributary_dispatcher_listening",
			Help: "1 while the dispatcher LISTENs for deliveries queued by other replicas (PostgreSQL)."}),
	}
	if reg != nil {
		reg.MustRegister(m.outcomes, m.latency, m.local, m.unrecorded, m.saturated, m.e2e, m.depth, m.due, m.oldest, m.listening)
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
	case r.kind == outLocal:
		m.outcomes.WithLabelValues("local_error").Inc()
	case r.ok():
		m.outcomes.WithLabelValues("succeeded").Inc()
	default:
		m.outcomes.WithLabelValues("failed").Inc()
	}
}

// disable turns a subscription off with reason and, in the same transaction,
// publishes webhook/disabled to the account's other subscriptions.
func (d *Dispatcher) disable(tx *gorm.DB, subID, reason string, now time.Time) error {
	var subs []models.Subscription
	if err := tx.Select("id", "account_id", "address", "active").Where("id = ?", subID).Limit(1).Find(&subs).Error; err != nil {
		return fmt.Errorf("disable %s: %w", subID, err)
	}
	if len(subs) == 0 || !subs[0].Active {
		return nil // deleted, or already disabled (by another process or the ISV)
	}
	sub := subs[0]
	if err := tx.Model(&models.Subscription{}).Where("id = ?", subID).Updates(map[string]any{"active": false,
		"disabled_reason": reason, "disabled_at": now, "updated_at": now}).Error; err != nil {
		return fmt.Errorf("disable %s: %w", subID, err)
	}
	payload, _ := json.Marshal(map[string]any{"webhookId": sub.ID, "address": sub.Address, "reason": reason, "disabledAt": now})
	_, err := d.s.publish(tx.Statement.Context, tx, sub.AccountID, "", []*models.Envelope{{Topic: models.TopicWebhookDisabled,
		UpdateType: models.UpdateUpdated, Source: models.SourceSystem, DataPayload: payload}})
	return err
}
