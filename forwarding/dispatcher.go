package forwarding

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	rand2 "math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/forwarding/signing"
	"github.com/tributary/tributary/internal/dbtext"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
)

// DefaultGrace is the default Dispatcher.Grace.
const DefaultGrace = 10 * time.Second

// leaseMargin is added to the longest HTTP timeout to form a claim's lease:
// a claim outlives any request it makes, so it expires only when its process died.
const leaseMargin = 30 * time.Second

// Dispatcher claims due deliveries, signs and POSTs them, and records each
// attempt together with the delivery's next state. Any number of dispatchers
// (goroutine pools in any number of processes) may share one database.
type Dispatcher struct {
	// Grace is how long Run lets in-flight requests finish after its
	// context ends (DefaultGrace).
	Grace time.Duration

	s      *Service
	client *http.Client
	slots  chan struct{}
	signs  *signCache
	m      *dispatchMetrics

	mu        sync.Mutex
	limiters  map[string]*rateEntry    // subscription → its rate limit, per process
	endpoints map[string]chan struct{} // origin → its concurrency slots
	circuits  map[string]time.Time     // subscription → open until (this process's view)
	busy      inflight                 // jobs claimed and not yet recorded, per account and subscription
}

// NewDispatcher builds a dispatcher; reg may be nil.
func (s *Service) NewDispatcher(reg prometheus.Registerer) *Dispatcher {
	return &Dispatcher{Grace: DefaultGrace, s: s, client: newHTTPClient(s.priv, s.cfg.MaxPerEndpoint),
		slots: make(chan struct{}, s.cfg.Workers), signs: newSignCache(), m: newDispatchMetrics(reg),
		endpoints: map[string]chan struct{}{}, circuits: map[string]time.Time{}, limiters: map[string]*rateEntry{},
		busy: newInflight()}
}

// job is one claimed delivery with what its attempt needs.
type job struct {
	d      models.Delivery
	event  *models.Event
	sub    *models.Subscription
	secret string
	// prevSecret signs too while a rotate-secret overlap lasts.
	prevSecret string
	token      string
	force      bool // test sends ignore the active flag and the circuit
	// local is set when the job cannot be attempted by this process (its
	// secret cannot be decrypted); it then ends with outLocal.
	local *LocalError
}

// outcome kinds of one job.
const (
	outAttempted  = iota // an HTTP attempt was made (or failed to connect)
	outRelease           // not attempted: put back until releaseAt
	outDeadNoSend        // not attempted: the subscription is gone or disabled
	outLocal             // not attempted: a local error (LocalError) before sending
)

type result struct {
	job        *job
	kind       int
	at         time.Time
	status     int
	elapsed    time.Duration
	body       string
	err        error // *AttemptError, *LocalError, or why a delivery was dropped
	retryAfter time.Duration
	releaseAt  time.Time
}

func (r *result) ok() bool {
	return r.kind == outAttempted && r.err == nil && r.status >= 200 && r.status < 300
}

// errText is the error as stored: valid UTF-8, capped to the column.
func (r *result) errText() string {
	if r.err == nil {
		return ""
	}
	return dbtext.CleanString(r.err.Error(), models.AttemptErrorSize)
}

// Run dispatches until ctx ends: claims as many due deliveries as it has free
// workers, POSTs them concurrently and writes results in small batches.
//
// When ctx ends it stops claiming and gives requests in flight up to Grace to
// finish and be recorded, so a graceful shutdown sends nothing twice; past
// Grace they are abandoned and their leases expire (at-least-once).
func (d *Dispatcher) Run(ctx context.Context) error {
	wake := d.s.subscribeWake()
	results := make(chan *result, d.s.cfg.Workers*2)
	flushed := make(chan struct{})
	// work outlives ctx by up to Grace.
	work, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stopped:
			return
		}
		t := time.NewTimer(d.Grace)
		defer t.Stop()
		select {
		case <-t.C:
			abandon()
		case <-stopped:
		}
	}()
	go func() { d.flushLoop(work, results); close(flushed) }()
	aux, stopAux := context.WithCancel(ctx)
	var auxDone sync.WaitGroup
	auxDone.Go(func() {
		d.s.listen(aux, func(on bool) {
			if on {
				d.m.listening.Set(1)
			} else {
				d.m.listening.Set(0)
			}
		})
	})
	auxDone.Go(func() { d.sampleQueue(aux) })
	defer func() { stopAux(); auxDone.Wait() }()
	var inflight sync.WaitGroup
	defer func() { inflight.Wait(); close(results); <-flushed; close(stopped) }()

	freed := make(chan struct{}, 1)
	tick := time.NewTimer(0)
	defer tick.Stop()
	retries := 0
	// Claim when at least a quarter of the workers are free, so each claim
	// query carries a useful batch.
	lowWater := max(1, min(d.s.cfg.BatchSize, cap(d.slots))/2)
	for {
		free := cap(d.slots) - len(d.slots)
		if free == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-freed:
			}
			continue
		}
		if free < lowWater {
			// Few workers free: wait for more, but not past a tick or a
			// wake-up, so deliveries of other accounts still start while
			// one account's slow requests hold the rest.
			tick.Reset(d.s.cfg.Tick)
			select {
			case <-ctx.Done():
				return nil
			case <-freed:
				continue
			case <-wake:
				retries = 2
			case <-tick.C:
			}
		}
		limit := min(free, d.s.cfg.BatchSize)
		jobs, err := d.claim(ctx, limit, nil)
		if err != nil && ctx.Err() == nil {
			d.s.log.Error("dispatcher: claim failed", "err", err)
		}
		for _, j := range jobs {
			d.slots <- struct{}{}
			inflight.Add(1)
			go func() {
				defer inflight.Done()
				r := d.attempt(work, j)
				// The slot is freed only once the result is queued: when
				// recording stalls, claiming stops instead of piling up
				// goroutines whose results cannot be written.
				select {
				case results <- r:
				case <-work.Done():
				}
				d.busy.done(j)
				<-d.slots
				select {
				case freed <- struct{}{}:
				default:
				}
			}()
		}
		if len(jobs) == limit {
			continue // more may be due
		}
		// Due work held back by an account, subscription or origin cap is
		// claimed as soon as one of its jobs ends.
		capped := d.busy.capped()
		wait := d.s.cfg.Tick
		if len(jobs) == 0 && retries > 0 {
			// Just woken: the publisher's commit may trail its wake by a moment.
			wait = min(wait, 10*time.Millisecond)
			retries--
		}
		tick.Reset(wait)
		var freedIfCapped <-chan struct{}
		if capped {
			freedIfCapped = freed
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
			retries = 2
		case <-freedIfCapped:
		case <-tick.C:
		}
	}
}

// DispatchDue claims one batch of due deliveries, attempts them concurrently
// and records the results before returning how many it handled. Tests and
// one-shot tools use it; Run is the long-lived loop.
func (d *Dispatcher) DispatchDue(ctx context.Context) (int, error) {
	jobs, err := d.claim(ctx, d.s.cfg.BatchSize, nil)
	if err != nil {
		return 0, err
	}
	return len(jobs), d.runJobs(ctx, jobs)
}

func (d *Dispatcher) runJobs(ctx context.Context, jobs []*job) error {
	out := make([]*result, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() { defer wg.Done(); out[i] = d.attempt(ctx, j); d.busy.done(j) }()
	}
	wg.Wait()
	return d.flush(ctx, out)
}

// claim leases up to limit due deliveries (or exactly ids, when given) by
// pushing their next attempt past the lease and stamping a fencing token.
//
// Claims are fair: it reads a window of the oldest due deliveries (locked,
// skipping rows other dispatchers hold), leaves out accounts and
// subscriptions this process already has at their in-flight cap, and takes
// from the rest round-robin across accounts, then across each account's
// subscriptions, so one busy or slow tenant cannot fill every worker.
func (d *Dispatcher) claim(ctx context.Context, limit int, ids []string) ([]*job, error) {
	now := d.s.Now()
	token := newToken()
	lease := now.Add(d.s.cfg.MaxTimeout + leaseMargin)
	var jobs []*job
	// The lease and the loading of what the attempts need share one
	// transaction: if loading fails, no lease is left behind.
	err := d.s.ddb.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		jobs = nil
		q := tx.Model(&models.Delivery{}).Select("id", "account_id", "subscription_id")
		excluded := false
		if ids != nil {
			q = q.Where("id IN ?", ids)
		} else {
			// Literal statuses: the planner can then match the partial index
			// idx_deliveries_queued (migration 5) even with a generic plan.
			q = q.Where("status IN ('pending', 'failed') AND next_attempt_at <= ?", now)
			// Per-record ordering: a record's later delivery waits while an
			// earlier one to the same subscription is pending or failed.
			q = q.Where(orderedReady)
			accounts, subs := d.busy.saturated(d.s.cfg.MaxPerAccount, claimPerEndpoint(d.s.cfg.MaxPerEndpoint))
			excluded = len(accounts)+len(subs) > 0
			if len(accounts) > 0 {
				q = q.Where("account_id NOT IN ?", accounts)
			}
			if len(subs) > 0 {
				q = q.Where("subscription_id NOT IN ?", subs)
			}
			q = q.Order("next_attempt_at").Limit(claimWindow(limit))
		}
		var window []models.Delivery
		if err := storage.SkipLocked(q).Find(&window).Error; err != nil {
			return fmt.Errorf("pick due deliveries: %w", err)
		}
		picked := window
		if ids == nil {
			picked = d.busy.fairPick(window, limit, d.s.cfg.MaxPerAccount, claimPerEndpoint(d.s.cfg.MaxPerEndpoint))
			d.busy.held.Store(excluded || len(picked) < min(limit, len(window)))
		}
		if len(picked) == 0 {
			return nil
		}
		pickedIDs := make([]string, len(picked))
		for i := range picked {
			pickedIDs[i] = picked[i].ID
		}
		if err := tx.Model(&models.Delivery{}).Where("id IN ?", pickedIDs).
			Updates(map[string]any{"next_attempt_at": lease, "lease_token": token}).Error; err != nil {
			return fmt.Errorf("lease deliveries: %w", err)
		}
		var claimed []models.Delivery
		if err := tx.Where("id IN ?", pickedIDs).Find(&claimed).Error; err != nil {
			return fmt.Errorf("load claimed deliveries: %w", err)
		}
		var err error
		jobs, err = d.load(tx, claimed, token)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, j := range jobs {
		d.busy.add(j)
	}
	return jobs, nil
}

// load fetches the events and subscriptions of claimed deliveries.
func (d *Dispatcher) load(db *gorm.DB, claimed []models.Delivery, token string) ([]*job, error) {
	evIDs := make([]string, 0, len(claimed))
	subIDs := make([]string, 0, 4)
	seenSub := map[string]bool{}
	for _, c := range claimed {
		evIDs = append(evIDs, c.EventID)
		if !seenSub[c.SubscriptionID] {
			seenSub[c.SubscriptionID] = true
			subIDs = append(subIDs, c.SubscriptionID)
		}
	}
	var events []models.Event
	if err := db.Where("id IN ?", evIDs).Find(&events).Error; err != nil {
		return nil, fmt.Errorf("load events: %w", err)
	}
	var subs []models.Subscription
	if err := db.Where("id IN ?", subIDs).Find(&subs).Error; err != nil {
		return nil, fmt.Errorf("load subscriptions: %w", err)
	}
	evBy := make(map[string]*models.Event, len(events))
	for i := range events {
		evBy[events[i].ID] = &events[i]
	}
	subBy := make(map[string]*models.Subscription, len(subs))
	secrets, prevSecrets := map[string]string{}, map[string]string{}
	// A secret this process cannot decrypt fails only that subscription's
	// jobs (as local errors), never the whole claim.
	broken := map[string]*LocalError{}
	for i := range subs {
		sub := &subs[i]
		subBy[sub.ID] = sub
		if len(sub.SecretEnc) > 0 {
			sec, err := d.s.box.OpenString(sub.SecretEnc, sub.ID)
			if err != nil {
				broken[sub.ID] = localErr(StageSecret, fmt.Errorf("open secret of %s: %w", sub.ID, err))
				continue
			}
			secrets[sub.ID] = sec
			if prev, err := d.s.previousSecret(sub, d.s.Now()); err != nil {
				broken[sub.ID] = localErr(StageSecret, fmt.Errorf("open previous secret of %s: %w", sub.ID, err))
			} else {
				prevSecrets[sub.ID] = prev
			}
		}
	}
	jobs := make([]*job, 0, len(claimed))
	for _, c := range claimed {
		jobs = append(jobs, &job{d: c, event: evBy[c.EventID], sub: subBy[c.SubscriptionID],
			secret: secrets[c.SubscriptionID], prevSecret: prevSecrets[c.SubscriptionID], token: token, local: broken[c.SubscriptionID]})
	}
	return jobs, nil
}

// attempt makes one HTTP attempt of j (or decides not to).
func (d *Dispatcher) attempt(ctx context.Context, j *job) *result {
	now := d.s.Now()
	switch {
	case j.sub == nil || j.event == nil:
		return &result{job: j, kind: outDeadNoSend, at: now, err: errGone}
	case !j.sub.Active && !j.force:
		return &result{job: j, kind: outDeadNoSend, at: now, err: errors.New("subscription disabled: " + j.sub.DisabledReason)}
	case j.local != nil:
		return d.local(j, now, j.local)
	}
	if until, open := d.circuitOpen(j.sub.ID, now); open && !j.force {
		return &result{job: j, kind: outRelease, at: now, releaseAt: until}
	}
	if delay, ok := d.rateWait(j.sub); !ok {
		return &result{job: j, kind: outRelease, at: now, releaseAt: now.Add(delay)}
	} else if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return &result{job: j, kind: outRelease, at: now, releaseAt: now}
		}
	}
	// An endpoint at its concurrency cap does not hold a worker for long:
	// after maxSlotWait the job is put back, without counting an attempt.
	release, ok := d.endpointSlot(ctx, j.sub.Address)
	if !ok {
		d.m.saturated.Inc()
		// Due again at once, behind what is already due; this process
		// claims no more for the endpoint until one of its requests ends.
		return &result{job: j, kind: outRelease, at: now, releaseAt: d.s.Now()}
	}
	defer release()

	at := d.s.Now()
	req, lerr := d.request(ctx, j, at)
	if lerr != nil {
		return d.local(j, at, lerr)
	}
	r := &result{job: j, kind: outAttempted, at: at}
	timeout := time.Duration(j.sub.TimeoutSeconds) * time.Second
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	resp, err := d.client.Do(req.WithContext(rctx))
	if err != nil {
		r.elapsed = time.Since(start)
		r.err = &AttemptError{Timeout: timeout, Err: err}
		d.m.observe(r)
		return r
	}
	// Keep at most what the attempt log's column holds.
	keep := min(d.s.cfg.MaxResponseBytes, models.AttemptResponseBodySize)
	body, _ := io.ReadAll(io.LimitReader(resp.Body, int64(keep)))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	resp.Body.Close()
	r.elapsed = time.Since(start)
	r.status, r.body = resp.StatusCode, dbtext.Clean(body, keep)
	if r.status == http.StatusTooManyRequests || r.status == http.StatusServiceUnavailable {
		r.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), r.at)
	}
	if r.status < 200 || r.status >= 300 {
		r.err = &AttemptError{Status: r.status}
	}
	d.m.observe(r)
	return r
}

// local ends j with a local error: logged, counted, rescheduled with backoff.
func (d *Dispatcher) local(j *job, now time.Time, le *LocalError) *result {
	d.s.log.Error("dispatcher: local error, delivery not attempted", "delivery", j.d.ID,
		"webhook", j.d.SubscriptionID, "stage", le.Stage, "err", le.Err)
	d.m.local.WithLabelValues(le.Stage).Inc()
	return &result{job: j, kind: outLocal, at: now, err: le, releaseAt: now.Add(localBackoff(now.Sub(j.d.CreatedAt)))}
}

// request builds the signed POST of j at ts.
func (d *Dispatcher) request(ctx context.Context, j *job, ts time.Time) (*http.Request, *LocalError) {
	body := j.event.Body
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.sub.Address, bytes.NewReader(body))
	if err != nil {
		return nil, localErr(StageRequest, err)
	}
	attempt := j.d.Attempts + 1
	switch j.sub.Scheme {
	case models.SchemeStandard:
		sig, err := signing.SignStandard(j.secret, j.event.ID, ts, body)
		if err != nil {
			return nil, localErr(StageSign, err)
		}
		if j.prevSecret != "" { // rotation overlap: both, space-separated
			prev, err := signing.SignStandard(j.prevSecret, j.event.ID, ts, body)
			if err != nil {
				return nil, localErr(StageSign, err)
			}
			sig += " " + prev
		}
		req.Header = signing.StandardHeaders(j.event.ID, ts, sig)
		req.Header.Set(signing.HeaderEventID, j.event.ID)
		req.Header.Set(signing.HeaderTopic, j.event.Topic)
		req.Header.Set(signing.HeaderDeliveryAttempt, strconv.Itoa(attempt))
	case models.SchemeHMAC:
		req.Header = signing.Headers(j.event.ID, j.event.Topic, ts, "", "", attempt)
		req.Header.Del(signing.HeaderKeyID)
		req.Header.Del(signing.HeaderSignature)
		req.Header.Set(signing.HeaderHMACSignature, signing.SignHMAC(j.secret, body))
		if j.prevSecret != "" { // rotation overlap
			req.Header.Set(signing.HeaderHMACSignaturePrevious, signing.SignHMAC(j.prevSecret, body))
		}
	default:
		signer, err := d.s.keys.signer(ctx, j.d.AccountID)
		if err != nil {
			return nil, localErr(StageSigningKey, err)
		}
		sig, err := d.signs.sign(signer, j.event.ID, ts, body)
		if err != nil {
			return nil, localErr(StageSign, err)
		}
		req.Header = signing.Headers(j.event.ID, j.event.Topic, ts, signer.KeyID(), sig, attempt)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Tributary-Webhooks/1")
	return req, nil
}

// errGone is why a delivery whose subscription or event was deleted is dropped.
var errGone = errors.New("subscription or event no longer exists")

// localBackoff is the wait after a local error of a delivery queued age ago:
// a quarter of its age, between 10s and 10m, with ±10% jitter. It grows
// without a counter, and costs the delivery no retry.
func localBackoff(age time.Duration) time.Duration {
	d := min(max(age/4, 10*time.Second), 10*time.Minute)
	return d + time.Duration(float64(d)*jitterFraction*(2*rand2.Float64()-1))
}

// parseRetryAfter reads seconds or an HTTP date; 0 when absent or invalid.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return min(time.Duration(n)*time.Second, MaxBackoff)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), MaxBackoff)
	}
	return 0
}

func newToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// DefaultLease is the claim lease with the default dispatcher settings.
func DefaultLease() time.Duration { return config.Default().Dispatcher.MaxTimeout + leaseMargin }
