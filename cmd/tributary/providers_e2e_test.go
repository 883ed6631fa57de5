package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/hubspot"
	"github.com/tributary/tributary/connectors/shopify"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// TestProviderFakesEndToEnd proves that a hand-run provider fake can be
// connected to a running engine: it runs `tributary sandbox` (the command a
// person runs), starts the engine with exactly the settings it printed,
// connects an end user through POST /v1/connect-sessions and the fake's
// authorize redirect, changes records through the provider's own API as
// printed, and checks that a receiver verifying with the JWKS gets exactly
// one event per change — at once by native webhook, or after "sync now"
// when the provider (or --no-webhooks) leaves polling as the only path.
func TestProviderFakesEndToEnd(t *testing.T) {
	t.Parallel()
	for _, pc := range providerCases {
		for _, d := range storagetest.Dialects {
			t.Run(pc.name+"/"+d, func(t *testing.T) {
				t.Parallel()
				runProviderCase(t, d, pc)
			})
		}
	}
}

// providerCase is one provider in one capture mode.
type providerCase struct {
	name, app string
	args      []string // extra `tributary sandbox` flags
	webhooks  bool     // changes arrive by native webhook (else by poll)
	params    map[string]string
	topic     string
	// create, update and remove change a record through the provider's
	// API as a person would with the printed curl commands; create returns
	// its id. remove is nil for Salesforce: getDeleted works in whole
	// minutes (seconds are ignored), so a deletion is only listed by a poll
	// after the minute it happened in — too slow for this test; the
	// connector's own tests cover it with a fake clock.
	create         func(t *testing.T, f *fakeAPI) string
	update, remove func(t *testing.T, f *fakeAPI, id string)
}

var providerCases = []providerCase{
	{name: "hubspot/webhook", app: "hubspot", webhooks: true, topic: "crm/contacts", create: hubspotCreate, update: hubspotUpdate, remove: hubspotRemove},
	{name: "hubspot/polling", app: "hubspot", args: []string{"--no-webhooks"}, topic: "crm/contacts", create: hubspotCreate, update: hubspotUpdate, remove: hubspotRemove},
	{name: "shopify/webhook", app: "shopify", webhooks: true, params: map[string]string{"shop": "tributary-demo.myshopify.com"},
		topic: "commerce/customers", create: shopifyCreate, update: shopifyUpdate, remove: shopifyRemove},
	{name: "shopify/polling", app: "shopify", args: []string{"--no-webhooks"}, params: map[string]string{"shop": "tributary-demo.myshopify.com"},
		topic: "commerce/customers", create: shopifyCreate, update: shopifyUpdate, remove: shopifyRemove},
	{name: "salesforce/polling", app: "salesforce", topic: "crm/contacts", create: salesforceCreate, update: salesforceUpdate},
}

func runProviderCase(t *testing.T, dialect string, pc providerCase) {
	engineAddr := freeAddr(t)
	engineURL := "http://" + engineAddr
	f := startSandboxCmd(t, append([]string{"--provider", pc.app, "--listen", "127.0.0.1:0", "--engine-url", engineURL}, pc.args...)...)

	// The engine runs with exactly what the sandbox printed, read as
	// TRIBUTARY_* variables by the real configuration loader.
	printed, err := config.Load(nil, f.env)
	require.NoError(t, err, "the printed settings load")
	require.Equal(t, engineURL, printed.PublicURL)
	e := startEngine(t, dialect, allowPrivate, func(c *config.Config) {
		c.ListenAddr = engineAddr
		c.PublicURL = printed.PublicURL
		c.Apps[pc.app] = printed.Apps[pc.app]
		c.Scheduler.Tick = 50 * time.Millisecond
		c.Dispatcher.Tick = 20 * time.Millisecond
		// Shopify cannot list deletions: a poll finds them by a full scan,
		// by default at most once a day; here every poll scans.
		c.Scheduler.FullScanEvery = 0
	})
	key := e.account(t, "Acme")
	rc := newJWKSReceiver(t, e.url+"/.well-known/jwks.json")
	st, body := e.do(t, "POST", "/v1/webhooks", key, map[string]any{"address": rc.URL, "topic": []string{"crm/*", "commerce/*"}})
	require.Equal(t, 201, st, "%v", body)

	// Connect: session → the fake's authorize (auto-approves) → the
	// engine's /oauth/callback → the ISV's redirectUrl with connectionId.
	sess := map[string]any{"app": pc.app, "userId": "u1", "userName": "Demo user", "redirectUrl": "http://localhost:1/connected"}
	if pc.params != nil {
		sess["params"] = pc.params
	}
	st, body = e.do(t, "POST", "/v1/connect-sessions", key, sess)
	require.Equal(t, 201, st, "%v", body)
	conID := followConnect(t, body["connectUrl"].(string))
	require.Eventually(t, func() bool {
		_, c := e.do(t, "GET", "/v1/connections/"+conID, key, nil)
		return c["lastSyncAt"] != nil && c["status"] == "active"
	}, 20*time.Second, 20*time.Millisecond, "silent first sync of %s", conID)

	syncNow := func() {
		_, before := e.do(t, "GET", "/v1/connections/"+conID, key, nil)
		st, body := e.do(t, "POST", "/v1/connections/"+conID+"/sync", key, nil)
		require.Equal(t, 202, st, "%v", body)
		require.Eventually(t, func() bool {
			_, c := e.do(t, "GET", "/v1/connections/"+conID, key, nil)
			return c["lastSyncAt"] != before["lastSyncAt"] && c["status"] == "active"
		}, 20*time.Second, 20*time.Millisecond, "poll of %s", conID)
	}
	count := func(remoteID, updateType string) int {
		n := 0
		for _, ev := range rc.verified() {
			p, _ := ev["dataPayload"].(map[string]any)
			if ev["connectionId"] == conID && ev["topic"] == pc.topic && ev["updateType"] == updateType && fmt.Sprint(p["remoteId"]) == remoteID {
				n++
			}
		}
		return n
	}
	arrives := func(remoteID, updateType string) {
		if !pc.webhooks {
			syncNow()
		}
		require.Eventually(t, func() bool { return count(remoteID, updateType) >= 1 }, 20*time.Second, 20*time.Millisecond,
			"%s %s of %s", pc.topic, updateType, remoteID)
	}

	id := pc.create(t, f)
	arrives(id, "created")
	pc.update(t, f, id)
	arrives(id, "updated")
	want := map[string]int{id + "/created": 1, id + "/updated": 1}
	if pc.remove != nil {
		pc.remove(t, f, id)
		arrives(id, "deleted")
		want[id+"/deleted"] = 1
	}
	// A poll after the webhooks sees the same changes again: nothing new.
	syncNow()
	drained(t, e)
	got := map[string]int{}
	source := models.SourcePoll
	if pc.webhooks {
		source = models.SourceWebhook
	}
	for _, ev := range rc.verified() {
		p, _ := ev["dataPayload"].(map[string]any)
		require.Equal(t, conID, ev["connectionId"])
		require.Equal(t, pc.topic, ev["topic"])
		require.Equal(t, source, ev["source"], "%v", ev)
		got[fmt.Sprintf("%v/%v", p["remoteId"], ev["updateType"])]++
	}
	require.Equal(t, want, got, "exactly one signed event per change, none for anything else")
	rc.mu.Lock()
	require.Empty(t, rc.bad, "every delivery verified with the JWKS")
	rc.mu.Unlock()
}

// drained waits until no inbound webhook is unprocessed and no delivery is queued.
func drained(t *testing.T, e *engine) {
	t.Helper()
	require.Eventually(t, func() bool {
		var inbox, queued int64
		require.NoError(t, e.db.Model(&models.InboxItem{}).Where("processed_at IS NULL").Count(&inbox).Error)
		require.NoError(t, e.db.Model(&models.Delivery{}).Where("status IN ?", []string{"pending", "failed"}).Count(&queued).Error)
		return inbox == 0 && queued == 0
	}, 20*time.Second, 20*time.Millisecond)
}

// followConnect plays the end user's browser: it opens the session's
// connectUrl (which binds the flow to its cookie) and follows the fake's
// authorize page and the engine's callback, and returns the connection id
// the engine hands the ISV's redirectUrl.
func followConnect(t *testing.T, connectURL string) string {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Host == "localhost:1" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := hc.Get(connectURL)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusFound, resp.StatusCode, "%s", raw)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, "localhost:1", loc.Host)
	require.Empty(t, loc.Query().Get("error"), "connect failed: %s", loc)
	id := loc.Query().Get("connectionId")
	require.True(t, strings.HasPrefix(id, "con_"), "redirect %s", loc)
	return id
}

// freeAddr picks a free loopback port, so the engine's public URL is known
// before it starts (the fake signs webhooks for that URL).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// syncBuffer is an io.Writer safe to read while the command writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeAPI is a running `tributary sandbox`, as its printed guide describes it.
type fakeAPI struct {
	url  string   // where it listens
	env  []string // the printed TRIBUTARY_* settings, as KEY=VALUE
	auth [2]string
}

var (
	listeningRE = regexp.MustCompile(`fake listening on (http://\S+)`)
	exportRE    = regexp.MustCompile(`(?m)^\s+export (TRIBUTARY_[A-Z_]+)=(\S+)$`)
	authRE      = regexp.MustCompile(`(?m)^\s+H='([A-Za-z-]+): ([^']+)'$`)
)

// startSandboxCmd runs `tributary sandbox args…` until the test ends and
// reads what it printed.
func startSandboxCmd(t *testing.T, args ...string) *fakeAPI {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	cmd := newRoot()
	cmd.SetArgs(append([]string{"sandbox"}, args...))
	cmd.SetOut(out)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "3. Change records") }, 10*time.Second, 10*time.Millisecond)
	text := out.String()
	f := &fakeAPI{}
	m := listeningRE.FindStringSubmatch(text)
	require.NotNil(t, m, text)
	f.url = m[1]
	for _, kv := range exportRE.FindAllStringSubmatch(text, -1) {
		f.env = append(f.env, kv[1]+"="+kv[2])
	}
	a := authRE.FindStringSubmatch(text)
	require.NotNil(t, a, text)
	f.auth = [2]string{a[1], a[2]}
	return f
}

// do calls the fake's API with the printed credentials; numbers stay
// json.Number so 64-bit ids survive.
func (f *fakeAPI) do(t *testing.T, method, path string, body any, want int) map[string]any {
	t.Helper()
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, f.url+path, r)
	require.NoError(t, err)
	req.Header.Set(f.auth[0], f.auth[1])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	require.Equal(t, want, resp.StatusCode, "%s %s: %s", method, path, raw)
	var out map[string]any
	if len(raw) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		require.NoError(t, dec.Decode(&out), "%s", raw)
	}
	return out
}

func hubspotCreate(t *testing.T, f *fakeAPI) string {
	out := f.do(t, "POST", "/crm/v3/objects/contacts", map[string]any{"properties": map[string]string{
		"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.com"}}, 201)
	return out["id"].(string)
}

func hubspotUpdate(t *testing.T, f *fakeAPI, id string) {
	f.do(t, "PATCH", "/crm/v3/objects/contacts/"+id, map[string]any{"properties": map[string]string{"email": "ada@lovelace.dev"}}, 200)
}

func shopifyCreate(t *testing.T, f *fakeAPI) string {
	out := f.do(t, "POST", "/admin/api/2025-01/customers.json", map[string]any{"customer": map[string]any{
		"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}}, 201)
	return out["customer"].(map[string]any)["id"].(json.Number).String()
}

func shopifyUpdate(t *testing.T, f *fakeAPI, id string) {
	f.do(t, "PUT", "/admin/api/2025-01/customers/"+id+".json", map[string]any{"customer": map[string]any{"email": "ada@lovelace.dev"}}, 200)
}

func salesforceCreate(t *testing.T, f *fakeAPI) string {
	out := f.do(t, "POST", "/services/data/v60.0/sobjects/Contact", map[string]any{
		"FirstName": "Ada", "LastName": "Lovelace", "Email": "ada@example.com"}, 201)
	require.Equal(t, true, out["success"])
	return out["id"].(string)
}

func salesforceUpdate(t *testing.T, f *fakeAPI, id string) {
	f.do(t, "PATCH", "/services/data/v60.0/sobjects/Contact/"+id, map[string]any{"Email": "ada@lovelace.dev"}, 204)
}

func hubspotRemove(t *testing.T, f *fakeAPI, id string) {
	f.do(t, "DELETE", "/crm/v3/objects/contacts/"+id, nil, 204)
}

func shopifyRemove(t *testing.T, f *fakeAPI, id string) {
	f.do(t, "DELETE", "/admin/api/2025-01/customers/"+id+".json", nil, 200)
}

// TestShopifyConnectSessionWithoutShop: a Shopify connect session needs
// params.shop; without one (or with an invalid one) the answer must be a
// 422 naming the field, not a server error.
func TestShopifyConnectSessionWithoutShop(t *testing.T) {
	t.Parallel()
	e := startEngine(t, storagetest.Dialects[0], func(c *config.Config) {
		c.Apps["shopify"] = config.App{ClientID: "id", ClientSecret: "secret", BaseURL: "http://127.0.0.1:1"}
	})
	key := e.account(t, "Acme")
	for _, params := range []map[string]string{nil, {"shop": "not a shop"}} {
		st, body := e.do(t, "POST", "/v1/connect-sessions", key, map[string]any{"app": "shopify", "userId": "u1",
			"userName": "Demo", "redirectUrl": "http://localhost:1/connected", "params": params})
		requireError(t, st, body, 422, "invalid_field")
		require.Equal(t, "params", body["error"].(map[string]any)["field"])
	}
}

// TestSandboxWebhookURL: with --webhook-url the HubSpot fake POSTs every
// change there, and the Shopify fake's seeded shop is subscribed there; each
// request verifies with the connector's own signature check and the
// secret the sandbox printed.
func TestSandboxWebhookURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		app    string
		verify func(secret string, r *connectors.InboundRequest) error
		change func(t *testing.T, f *fakeAPI) string
		check  func(t *testing.T, r *connectors.InboundRequest, id string)
	}{
		{app: "hubspot",
			verify: func(secret string, r *connectors.InboundRequest) error {
				return hubspot.New(connectors.AppConfig{ClientSecret: secret}).VerifyWebhook(r)
			},
			change: hubspotCreate,
			check: func(t *testing.T, r *connectors.InboundRequest, id string) {
				var notices []map[string]any
				require.NoError(t, json.Unmarshal(r.Body, &notices))
				require.Len(t, notices, 1)
				require.Equal(t, "contact.creation", notices[0]["subscriptionType"])
				require.Equal(t, id, fmt.Sprint(notices[0]["objectId"]))
			}},
		{app: "shopify",
			verify: func(secret string, r *connectors.InboundRequest) error {
				return shopify.New(connectors.AppConfig{ClientSecret: secret}).VerifyWebhook(r)
			},
			change: shopifyCreate,
			check: func(t *testing.T, r *connectors.InboundRequest, id string) {
				require.Equal(t, "customers/create", r.Header.Get("X-Shopify-Topic"))
				require.Equal(t, "tributary-demo.myshopify.com", r.Header.Get("X-Shopify-Shop-Domain"))
				require.NotEmpty(t, r.Header.Get("X-Shopify-Event-Id"))
				dec := json.NewDecoder(bytes.NewReader(r.Body))
				dec.UseNumber()
				var body map[string]any
				require.NoError(t, dec.Decode(&body))
				require.Equal(t, id, body["id"].(json.Number).String())
			}},
	} {
		t.Run(c.app, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var reqs []*connectors.InboundRequest
			hook := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				reqs = append(reqs, &connectors.InboundRequest{Method: r.Method, URL: "http://" + r.Host + r.URL.RequestURI(),
					Header: r.Header.Clone(), Body: body, ReceivedAt: time.Now()})
				mu.Unlock()
			})
			f := startSandboxCmd(t, "--provider", c.app, "--listen", "127.0.0.1:0", "--webhook-url", hook+"/hook")
			secret := ""
			for _, kv := range f.env {
				if k, v, _ := strings.Cut(kv, "="); strings.HasSuffix(k, "_WEBHOOK_SECRET") {
					secret = v
				}
			}
			require.NotEmpty(t, secret)
			id := c.change(t, f)
			require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(reqs) > 0 }, 10*time.Second, 10*time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, reqs, 1, "one signed request per change")
			require.NoError(t, c.verify(secret, reqs[0]))
			require.ErrorIs(t, c.verify("another-secret", reqs[0]), connectors.ErrBadSignature)
			c.check(t, reqs[0], id)
		})
	}
}

func httptestServer(t *testing.T, h http.HandlerFunc) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestSandboxFlagErrors: bad flags are errors naming the flag, before
// anything listens.
func TestSandboxFlagErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--provider", "pipedrive"}, `provider: unknown "pipedrive"`},
		{[]string{"--provider", "salesforce", "--webhook-url", "http://127.0.0.1:8080/inbound/salesforce"}, "webhook-url: Salesforce has no native webhooks"},
		{[]string{"--provider", "hubspot", "--engine-url", "127.0.0.1:8080"}, "engine-url:"},
		{[]string{"--provider", "hubspot", "--listen", "nonsense"}, "listen:"},
	} {
		cmd := newRoot()
		cmd.SetArgs(append([]string{"sandbox"}, c.args...))
		cmd.SetOut(io.Discard)
		err := cmd.ExecuteContext(t.Context())
		require.ErrorContains(t, err, c.want, "%v", c.args)
	}
}
