package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	shopifyfake "github.com/tributary/tributary/connectors/shopify/fake"
)

// wholeOptions are the shared settings of the whole-path scenarios.
type wholeOptions struct {
	baseURL     string // PostgreSQL server; each scenario gets a fresh schema
	bin, dir    string // the built tributary binary; scratch directory
	events      int    // events per scenario
	senders     int    // concurrent senders
	connections int    // provider connections (shops / sandbox connections)
	drainCap    time.Duration
	keep        bool // keep the scratch directory (engine logs, arrival files)
}

// wholeScenario is one whole-path run.
type wholeScenario struct {
	name    string
	source  string // "shopify" (native webhooks to /inbound/shopify) or "sandbox" (the sandbox API)
	scheme  string // subscription signing: hmac or rsa
	rate    int    // events/s offered; 0 = as fast as the senders go
	seconds int    // duration of a steady scenario
}

// send is one change the bench made: the key that identifies it in the
// forwarded event (dataPayload.remoteId), when it was offered (the steady
// scenario's schedule; the send time in a burst), when its request started
// and when it was acknowledged.
type send struct {
	key                   string
	offered, start, acked time.Time
	ok                    bool
}

// wholeResult is what one scenario measured.
type wholeResult struct {
	sent, acked, failed  int
	firstErr             string
	ingestStart          time.Time
	ingestEnd            time.Time // last acknowledgement
	ingestPerSec         float64
	delivered            int // distinct changes that reached the receiver
	lastArrival          time.Time
	e2ePerSec            float64
	duringIngest         int
	p50, p99             time.Duration // offered → first arrival
	p99Send              time.Duration // request start → first arrival
	lost, dupes, unknown int
	badSignatures        int
	redelivered, extra   int // duplicates: same event again; another event for the same change
	capped               bool
	queuedInbox          int64
	queuedDeliveries     int64
	engineCPU            float64
	wall                 time.Duration
}

const (
	benchClientID     = "bench-client-id"
	benchClientSecret = "bench-app-secret-0123456789abcdef"
)

// runWhole runs one scenario from a fresh schema and engine process to the
// receiver's file of arrivals.
func runWhole(ctx context.Context, o wholeOptions, sc wholeScenario) (*wholeResult, error) {
	setup := time.Now()
	sch, err := newSchema(ctx, o.baseURL)
	if err != nil {
		return nil, err
	}
	defer sch.drop()
	extra := map[string]string{}
	var shop *shopifyfake.Server
	if sc.source == "shopify" {
		// The provider: Shopify's fake for OAuth, shop.json, webhook
		// registration and the first sync. Webhooks are sent by the
		// bench, not by the fake.
		shop = shopifyfake.New(shopifyfake.WithClientCredentials(benchClientID, benchClientSecret), shopifyfake.WithoutDelivery())
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		srv := &http.Server{Handler: shop}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		base := "http://" + ln.Addr().String()
		extra["TRIBUTARY_APPS_SHOPIFY_CLIENT_ID"] = benchClientID
		extra["TRIBUTARY_APPS_SHOPIFY_CLIENT_SECRET"] = benchClientSecret // verifies the webhooks too
		extra["TRIBUTARY_APPS_SHOPIFY_BASE_URL"] = base
		extra["TRIBUTARY_APPS_SHOPIFY_AUTH_URL"] = base + "/admin/oauth/authorize"
		extra["TRIBUTARY_APPS_SHOPIFY_TOKEN_URL"] = base + "/admin/oauth/access_token"
	} else {
		extra["TRIBUTARY_SANDBOX"] = "true"
	}
	e, err := startEngineProc(ctx, o.bin, o.dir, sch.url, extra)
	if err != nil {
		return nil, err
	}
	defer e.stop()
	key, accountID, err := e.account(ctx)
	if err != nil {
		return nil, err
	}
	// The receiver verifies every delivery as the ISV's would.
	signing := map[string]string{"scheme": sc.scheme}
	verify := []string{"--jwks", e.url + "/.well-known/jwks/" + accountID + ".json"}
	if sc.scheme == "hmac" {
		signing["secret"] = "bench-hmac-secret-0123456789"
		verify = []string{"--hmac-secret", signing["secret"]}
	}
	rc, err := startReceiver(filepath.Join(o.dir, fmt.Sprintf("arrivals-%s-%s.tsv", sc.source, sc.scheme)), verify...)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_, _ = rc.stop()
		}
	}()
	if err := e.call(ctx, "POST", "/v1/webhooks", key, map[string]any{"address": rc.url + "/hook", "topic": []string{"commerce/orders"},
		"signing": signing}, http.StatusCreated, nil); err != nil {
		return nil, err
	}
	conns, err := connect(ctx, e, key, sc.source, o.connections)
	if err != nil {
		return nil, err
	}
	if err := e.waitSynced(ctx, key, len(conns)); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "    engine up, account, subscription and %d connections ready in %s\n", len(conns), time.Since(setup).Round(time.Millisecond))

	cpu0 := e.cpuSeconds()
	res := &wholeResult{}
	sends, err := drive(ctx, e, key, sc, o, conns, res)
	if err != nil {
		return nil, err
	}
	// Wait for the receiver to have every acknowledged change, for at most
	// drainCap after the last acknowledgement.
	want := res.acked
	deadline := res.ingestEnd.Add(o.drainCap)
	poll := &http.Client{Timeout: 5 * time.Second}
	for {
		n, err := rc.count(poll)
		if err == nil && n >= want {
			break
		}
		if time.Now().After(deadline) {
			res.capped = true
			break
		}
		select {
		case err := <-e.done:
			e.done <- err
			return nil, fmt.Errorf("the engine exited during the run (%v): %s", err, e.tail())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if res.capped {
		res.queuedInbox, res.queuedDeliveries, _ = queued(ctx, sch.url)
	}
	res.engineCPU = e.cpuSeconds() - cpu0
	// Anything late would show as a duplicate: give stragglers a moment.
	time.Sleep(300 * time.Millisecond)
	stopped = true
	arrivals, err := rc.stop()
	if err != nil {
		return nil, err
	}
	analyse(res, sends, arrivals)
	return res, nil
}

// conn is one connection the senders write through.
type conn struct{ id, shop string }

// connect creates n connections: Shopify shops through the engine's
// connect session, the fake's (auto-approving) authorize page and the
// engine's /oauth/callback, as an end user's browser would; or sandbox
// connections in webhook mode through POST /v1/connections.
func connect(ctx context.Context, e *engineProc, key, source string, n int) ([]conn, error) {
	out := make([]conn, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	// One cookie jar for all: each flow's binding cookie has its own name.
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Host == "localhost:1" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			user := fmt.Sprintf("user-%02d", i)
			if source == "sandbox" {
				var c struct {
					ID string `json:"id"`
				}
				err := e.call(ctx, "POST", "/v1/connections", key, map[string]any{"app": "sandbox", "userId": user, "userName": "Bench " + user,
					"credentials": map[string]string{"mode": "webhook"}}, http.StatusCreated, &c)
				if err != nil {
					errs <- err
					return
				}
				out[i] = conn{id: c.ID}
				return
			}
			shop := fmt.Sprintf("bench-shop-%02d.myshopify.com", i)
			var sess struct {
				ConnectURL string `json:"connectUrl"`
			}
			err := e.call(ctx, "POST", "/v1/connect-sessions", key, map[string]any{"app": "shopify", "userId": user, "userName": "Bench " + user,
				"redirectUrl": "http://localhost:1/connected", "params": map[string]string{"shop": shop}}, http.StatusCreated, &sess)
			if err != nil {
				errs <- err
				return
			}
			resp, err := browser.Get(sess.ConnectURL)
			if err != nil {
				errs <- fmt.Errorf("connect %s: %w", shop, err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil || resp.StatusCode != http.StatusFound || loc.Host != "localhost:1" || loc.Query().Get("connectionId") == "" {
				errs <- fmt.Errorf("connect %s: status %d, redirect %q", shop, resp.StatusCode, resp.Header.Get("Location"))
				return
			}
			out[i] = conn{id: loc.Query().Get("connectionId"), shop: shop}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return out, nil
}

// job is one change to send: its index and when it is offered.
type job struct {
	i       int
	offered time.Time
}

// drive sends the scenario's changes from o.senders goroutines; sender s
// writes through connection s mod connections. A burst offers everything at
// once; a steady scenario releases rate/100 changes every 10 ms.
func drive(ctx context.Context, e *engineProc, key string, sc wholeScenario, o wholeOptions, conns []conn, res *wholeResult) ([]send, error) {
	n := o.events
	if sc.rate > 0 {
		n = sc.rate * sc.seconds
	}
	tmpl, err := newOrderTemplate()
	if err != nil {
		return nil, err
	}
	sends := make([]send, n)
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.senders}}
	defer client.CloseIdleConnections()
	queues := make([]chan job, o.senders)
	for s := range queues {
		queues[s] = make(chan job, n/o.senders+2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	orderBase := time.Now().UnixMilli() * 1000 // distinct order ids run to run
	for s := range o.senders {
		c := conns[s%len(conns)]
		wg.Go(func() {
			for j := range queues[s] {
				sd := &sends[j.i]
				sd.offered = j.offered
				var req *http.Request
				var err error
				start := time.Now()
				if sc.source == "shopify" {
					id := orderBase + int64(j.i)
					sd.key = fmt.Sprint(id)
					req, err = signedOrderRequest(e.url+"/inbound/shopify", benchClientSecret, c.shop, id, tmpl.render(id, j.i, start), start)
				} else {
					req, err = sandboxOrderRequest(e.url+"/v1/sandbox/"+c.id+"/orders", key, j.i)
				}
				if err != nil {
					mu.Lock()
					res.failed++
					res.firstErr = err.Error()
					mu.Unlock()
					continue
				}
				sd.start = time.Now()
				if sc.rate == 0 {
					sd.offered = sd.start
				}
				remote, status, err := do(client, req)
				sd.acked = time.Now()
				if err == nil && status/100 == 2 {
					sd.ok = true
					if remote != "" {
						sd.key = remote
					}
					continue
				}
				mu.Lock()
				res.failed++
				if res.firstErr == "" {
					res.firstErr = fmt.Sprintf("status %d %v %s", status, err, remote)
				}
				mu.Unlock()
			}
		})
	}
	res.sent = n
	res.ingestStart = time.Now()
	if sc.rate == 0 {
		for i := range n {
			queues[i%o.senders] <- job{i: i, offered: res.ingestStart}
		}
	} else {
		const tick = 10 * time.Millisecond
		per := max(1, sc.rate*int(tick)/int(time.Second))
		t := time.NewTicker(tick)
		next := res.ingestStart
		for i := 0; i < n; {
			for k := 0; k < per && i < n; k++ {
				queues[i%o.senders] <- job{i: i, offered: next}
				i++
			}
			next = next.Add(tick)
			<-t.C
		}
		t.Stop()
	}
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	for _, s := range sends {
		if s.ok {
			res.acked++
			if s.acked.After(res.ingestEnd) {
				res.ingestEnd = s.acked
			}
		}
	}
	if res.acked == 0 {
		return nil, fmt.Errorf("%s: no change acknowledged (%d failed): %s", sc.name, res.failed, res.firstErr)
	}
	res.ingestPerSec = float64(res.acked) / res.ingestEnd.Sub(res.ingestStart).Seconds()
	return sends, nil
}

// do sends one request; for the sandbox API it returns the created
// record's remoteId (for errors: the answer's start).
func do(hc *http.Client, req *http.Request) (string, int, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return string(raw[:min(len(raw), 300)]), resp.StatusCode, nil
	}
	if resp.StatusCode == http.StatusCreated {
		var out struct {
			RemoteID string `json:"remoteId"`
		}
		if jsonUnmarshal(raw, &out) == nil {
			return out.RemoteID, resp.StatusCode, nil
		}
	}
	return "", resp.StatusCode, nil
}

// analyse joins sends and arrivals by change key.
func analyse(res *wholeResult, sends []send, arrivals []arrival) {
	byKey := make(map[string]*send, len(sends))
	for i := range sends {
		if sends[i].ok {
			byKey[sends[i].key] = &sends[i]
		}
	}
	first := map[string]time.Time{}
	events := map[string]string{}  // key → first event id
	seenEvent := map[string]bool{} // event ids
	for _, a := range arrivals {
		if a.bad {
			res.badSignatures++
			continue
		}
		if _, ok := byKey[a.remoteID]; !ok {
			res.unknown++
			continue
		}
		if seenEvent[a.eventID] {
			res.redelivered++
			continue
		}
		seenEvent[a.eventID] = true
		if ev, ok := events[a.remoteID]; ok && ev != a.eventID {
			res.extra++
			continue
		}
		events[a.remoteID] = a.eventID
		first[a.remoteID] = a.at
	}
	res.dupes = res.redelivered + res.extra
	res.delivered = len(first)
	var lat, latSend []time.Duration
	for k, at := range first {
		s := byKey[k]
		lat = append(lat, at.Sub(s.offered))
		latSend = append(latSend, at.Sub(s.start))
		if !at.After(res.ingestEnd) {
			res.duringIngest++
		}
		if at.After(res.lastArrival) {
			res.lastArrival = at
		}
	}
	slices.Sort(lat)
	slices.Sort(latSend)
	if len(lat) > 0 {
		res.p50, res.p99 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
		res.p99Send = latSend[min(len(latSend)-1, len(latSend)*99/100)]
		res.e2ePerSec = float64(res.delivered) / res.lastArrival.Sub(res.ingestStart).Seconds()
	}
	missing := res.acked - res.delivered
	if q := int(res.queuedInbox + res.queuedDeliveries); missing > q {
		res.lost = missing - q
	} else if !res.capped {
		res.lost = missing
	}
	res.wall = res.lastArrival.Sub(res.ingestStart)
}

// benchDir is the scratch directory of one run.
func benchDir() (string, error) { return os.MkdirTemp("", "tributary-bench-") }

// runWholeScenarios builds the engine once and runs the whole-path
// scenarios want selects, returning their rows.
func runWholeScenarios(ctx context.Context, baseURL string, want func(string) bool, loopOrder float64) ([]row, error) {
	scs := []struct {
		sc     wholeScenario
		target float64 // deliveries/s wanted
	}{
		{wholeScenario{name: "whole path: /inbound/shopify (hmac)", source: "shopify", scheme: "hmac"}, 3000},
		{wholeScenario{name: "whole path: /inbound/shopify (rsa)", source: "shopify", scheme: "rsa"}, 1500},
		{wholeScenario{name: "whole path: sandbox API (hmac)", source: "sandbox", scheme: "hmac"}, 2000},
		{wholeScenario{name: fmt.Sprintf("whole path: steady %d/s /inbound/shopify (hmac)", steadyRate), source: "shopify", scheme: "hmac",
			rate: steadyRate, seconds: steadySeconds}, 0},
	}
	any := false
	for _, s := range scs {
		any = any || want(s.sc.name)
	}
	if !any {
		return nil, nil
	}
	o := whole
	o.baseURL = baseURL
	dir, err := benchDir()
	if err != nil {
		return nil, err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "engine logs and arrival files kept in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	o.dir = dir
	if o.bin == "" {
		fmt.Fprintln(os.Stderr, "building tributary…")
		if o.bin, err = buildEngine(ctx, dir); err != nil {
			return nil, err
		}
	}
	var rows []row
	for _, s := range scs {
		if !want(s.sc.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "  %s…\n", s.sc.name)
		r, err := runWhole(ctx, o, s.sc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.sc.name, err)
		}
		rows = append(rows, wholeRows(s.sc, r, s.target, loopOrder, o)...)
		fmt.Fprintf(os.Stderr, "    ingest %.0f/s, end to end %.0f/s, during ingest %d, p50 %s p99 %s, lost %d dup %d%s\n",
			r.ingestPerSec, r.e2ePerSec, r.duringIngest, r.p50.Round(time.Millisecond), r.p99.Round(time.Millisecond), r.lost, r.dupes,
			map[bool]string{true: " (drain cap reached)", false: ""}[r.capped])
	}
	return rows, nil
}

// verdict marks a figure against its target.
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// wholeRows turns one scenario's result into table rows.
func wholeRows(sc wholeScenario, r *wholeResult, target, loopOrder float64, o wholeOptions) []row {
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	pct := func(n int) float64 { return 100 * float64(n) / float64(max(1, r.acked)) }
	capNote := ""
	if r.capped {
		capNote = fmt.Sprintf("; INCOMPLETE: %d of %d delivered when the %s drain cap ended the wait (%d inbox items, %d deliveries still queued)",
			r.delivered, r.acked, o.drainCap, r.queuedInbox, r.queuedDeliveries)
	}
	lostTarget := "0 / 0 " + verdict(r.lost == 0 && r.dupes == 0 && !r.capped && r.failed == 0 && r.badSignatures == 0)
	lostNote := fmt.Sprintf("duplicates: %d same event again, %d extra events for one change; %d arrivals of unknown changes; %d bad signatures; %d sends failed",
		r.redelivered, r.extra, r.unknown, r.badSignatures, r.failed)
	if r.firstErr != "" {
		lostNote += " (first: " + r.firstErr + ")"
	}
	lostValue := fmt.Sprintf("%d / %d", r.lost, r.dupes)
	if r.failed > 0 || r.badSignatures > 0 {
		lostValue += fmt.Sprintf(" (%d sends refused, %d bad signatures)", r.failed, r.badSignatures)
	}
	if sc.rate > 0 {
		return []row{
			{name: sc.name + ": p50 / p99 offered→delivered", value: ms(r.p50) + " / " + ms(r.p99), target: "p99 < 500ms " + verdict(r.p99 < 500*time.Millisecond && !r.capped),
				note: fmt.Sprintf("%d changes offered over %ds, acknowledged at %.0f/s; p99 from request start %s; end to end %.0f/s%s",
					r.sent, sc.seconds, r.ingestPerSec, ms(r.p99Send), r.e2ePerSec, capNote)},
			{name: sc.name + ": lost / duplicates", value: lostValue, target: lostTarget, note: lostNote},
		}
	}
	return []row{
		{name: sc.name + ": ingest/s", value: fmt.Sprintf("%.0f", r.ingestPerSec), ceiling: fmt.Sprintf("%.2f× of loopback", r.ingestPerSec/loopOrder),
			note: fmt.Sprintf("%d changes acknowledged in %s by %d senders over %d connections", r.acked, ms(r.ingestEnd.Sub(r.ingestStart)), o.senders, o.connections)},
		{name: sc.name + ": deliveries/s end to end", value: fmt.Sprintf("%.0f", r.e2ePerSec),
			target: fmt.Sprintf("≥ %.0f %s", target, verdict(r.e2ePerSec >= target && !r.capped)), ceiling: fmt.Sprintf("%.2f× of loopback", r.e2ePerSec/loopOrder),
			note: fmt.Sprintf("%d delivered, last %s after the first send; engine CPU %.1fs%s", r.delivered, ms(r.wall), r.engineCPU, capNote)},
		{name: sc.name + ": delivered before ingest ended", value: fmt.Sprintf("%d (%.0f%%)", r.duringIngest, pct(r.duringIngest)),
			target: "≥ 40% " + verdict(pct(r.duringIngest) >= 40)},
		{name: sc.name + ": p50 / p99 inbound→delivered", value: ms(r.p50) + " / " + ms(r.p99), note: "request start at the sender → first arrival at the receiver"},
		{name: sc.name + ": lost / duplicates", value: lostValue, target: lostTarget, note: lostNote},
	}
}
