package chaos

import (
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	hubspotfake "github.com/tributary/tributary/connectors/hubspot/fake"
	shopifyfake "github.com/tributary/tributary/connectors/shopify/fake"
	"github.com/tributary/tributary/storage/storagetest"
)

// faultyProvider fronts a provider fake and, on API paths, answers at random
// (seeded) 429 with Retry-After, 500, or a malformed page: the fake's real
// answer cut in half.
type faultyProvider struct {
	*httptest.Server
	mu       sync.Mutex
	rnd      *rand.Rand
	rate     int // percent of API requests that fail
	prefix   string
	counts   map[string]int
	disabled atomic.Bool
}

func newFaultyProvider(t *testing.T, upstream http.Handler, prefix string, seed uint64, rate int) *faultyProvider {
	p := &faultyProvider{rnd: rand.New(rand.NewPCG(seed, 11)), rate: rate, prefix: prefix, counts: map[string]int{}}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fault := "ok"
		if strings.HasPrefix(r.URL.Path, p.prefix) && !p.disabled.Load() {
			p.mu.Lock()
			if p.rnd.IntN(100) < p.rate {
				fault = []string{"429", "500", "malformed"}[p.rnd.IntN(3)]
			}
			p.counts[fault]++
			p.mu.Unlock()
		}
		switch fault {
		case "429":
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"status":"error","message":"You have reached your secondly limit.","category":"RATE_LIMITS"}`))
		case "500":
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"status":"error","message":"internal error","category":"INTERNAL_ERROR"}`))
		case "malformed":
			rec := httptest.NewRecorder()
			upstream.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body[:len(body)/2])
		default:
			upstream.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *faultyProvider) summary() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]int{}
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// providerRig adapts one provider fake to runProviderFaults.
type providerRig struct {
	app, prefix, topic string
	rate               int // percent of API requests failed (default 10, 15 in long runs)
	handler            http.Handler
	env                func(base string) []string
	params             map[string]string
	start              func(engineURL string) // after the engine runs
	create             func(marker string) string
	update             func(id, marker string)
	remove             func(id string)
}

// runProviderFaults connects the provider (its fake on the real clock)
// through the OAuth flow of a `tributary serve` subprocess, with the fake's
// API behind a proxy answering 429, 500 and malformed pages at random; the
// fake also sends its signed native webhooks, whose records the engine may
// fetch through the same faulty API. Records are created, updated and
// deleted in rounds; each round ends with a completed poll. The audit must
// be clean.
func runProviderFaults(t *testing.T, d string, s uint64, rg providerRig) {
	rounds, writes, rate := 3, 6, 10
	if long() {
		rounds, writes, rate = 10, 20, 15
	}
	rate = max(rate, rg.rate)
	prov := newFaultyProvider(t, rg.handler, rg.prefix, s, rate)
	prov.disabled.Store(true) // a fault during the OAuth callback fails the connect: faults start after it
	e := NewEngineEnv(t, d, rg.env(prov.URL), "--scheduler-full-scan-every", "0s")
	if rg.start != nil {
		rg.start(e.URL)
	}
	key := e.Account(rg.app + " chaos")
	rc := NewReceiver(e.URL+"/.well-known/jwks.json", s, time.Second, DefaultWeights)
	t.Cleanup(rc.Close)
	e.Must("POST", "/v1/webhooks", key, subscription(rc.URL), 201)
	require.NoError(t, rc.Prefetch())

	// OAuth: connect session → fake authorize → engine callback → redirectUrl.
	sess := map[string]any{"app": rg.app, "userId": "u1", "userName": "Chaos", "redirectUrl": "http://localhost:1/done"}
	if rg.params != nil {
		sess["params"] = rg.params
	}
	out := e.Must("POST", "/v1/connect-sessions", key, sess, 201)
	// The end user's browser opens connectUrl, which binds the flow to its cookie.
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	noFollow := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	next := out["connectUrl"].(string)
	var done *url.URL
	for range 5 {
		resp, err := noFollow.Get(next)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusFound, resp.StatusCode, "GET %s", next)
		next = resp.Header.Get("Location")
		if done, err = url.Parse(next); err == nil && done.Host == "localhost:1" {
			break
		}
	}
	conn := done.Query().Get("connectionId")
	require.NotEmpty(t, conn, "redirected to %s", done)
	w := NewWorld(e, e.DB, key, s)
	w.Conns = append(w.Conns, conn)
	w.Mode[conn] = rg.app
	require.NoError(t, w.Settle(60*time.Second), "first sync")
	prov.disabled.Store(false)

	rnd := rand.New(rand.NewPCG(s, 13))
	var live []string
	change := func(rid, kind, m string) {
		w.Record(Change{ConnectionID: conn, Topic: rg.topic, RemoteID: rid, Kind: kind, Marker: m})
	}
	for round := range rounds {
		touched := map[string]bool{}
		for range writes {
			op := rnd.IntN(10)
			if len(live) == 0 || op < 5 {
				m := w.Marker()
				id := rg.create(m)
				live = append(live, id)
				touched[id] = true
				change(id, "created", m)
				continue
			}
			id := live[rnd.IntN(len(live))]
			if touched[id] {
				continue
			}
			touched[id] = true
			if op < 8 {
				m := w.Marker()
				rg.update(id, m)
				change(id, "updated", m)
			} else {
				rg.remove(id)
				live = removeString(live, id)
				change(id, "deleted", "")
			}
		}
		require.NoError(t, w.Settle(60*time.Second), "round %d", round)
	}
	prov.disabled.Store(true) // let retries converge
	require.NoError(t, w.Settle(60*time.Second))
	finish(t, e, rc, w, true, nil)
	sum := prov.summary()
	t.Logf("provider answers: %v", sum)
	require.NotZero(t, sum["429"]+sum["500"]+sum["malformed"], "the provider failed")
}

// TestHubSpotFaults: HubSpot contacts (webhooks are thin notices: every
// record is fetched through the faulty API).
func TestHubSpotFaults(t *testing.T) {
	t.Parallel()
	for i, d := range storagetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			// The portal (and its deal stages) exists an hour before the
			// connection: the first sync's baseline is silent only for what
			// changed before connecting.
			var offset atomic.Int64
			offset.Store(int64(-time.Hour))
			hs := hubspotfake.New(hubspotfake.WithClock(func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }))
			portal := hs.CreatePortal()
			offset.Store(0)
			runProviderFaults(t, d, seed(20261150+uint64(i)), providerRig{app: "hubspot", prefix: "/crm/", topic: "crm/contacts",
				handler: hs,
				env: func(base string) []string {
					return []string{"TRIBUTARY_APPS_HUBSPOT_CLIENT_ID=" + hs.ClientID(), "TRIBUTARY_APPS_HUBSPOT_CLIENT_SECRET=" + hs.ClientSecret(),
						"TRIBUTARY_APPS_HUBSPOT_BASE_URL=" + base, "TRIBUTARY_APPS_HUBSPOT_AUTH_URL=" + base + "/oauth/authorize",
						"TRIBUTARY_APPS_HUBSPOT_TOKEN_URL=" + base + "/oauth/2026-03/token"}
				},
				start: func(engineURL string) { hs.SetWebhookTarget(engineURL + "/inbound/hubspot") },
				create: func(m string) string {
					id, err := hs.Create(portal, "contacts", map[string]string{"email": m, "firstname": "Chaos"})
					require.NoError(t, err)
					return id
				},
				update: func(id, m string) {
					require.NoError(t, hs.Update(portal, "contacts", id, map[string]string{"email": m}))
				},
				remove: func(id string) { require.NoError(t, hs.Delete(portal, "contacts", id)) },
			})
		})
	}
}

// TestShopifyFaults: Shopify customers (webhooks carry the full record;
// deletions are found by full scans, here on every poll).
func TestShopifyFaults(t *testing.T) {
	t.Parallel()
	for i, d := range storagetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			const shop = "chaos.myshopify.com"
			sf := shopifyfake.New(shopifyfake.WithClock(time.Now))
			sf.AddShop(shop)
			// Few API requests (webhooks carry whole records): more faults.
			runProviderFaults(t, d, seed(20261160+uint64(i)), providerRig{app: "shopify", prefix: "/admin/api/", topic: "commerce/customers", rate: 30,
				handler: sf, params: map[string]string{"shop": shop},
				env: func(base string) []string {
					return []string{"TRIBUTARY_APPS_SHOPIFY_CLIENT_ID=" + shopifyfake.DefaultClientID,
						"TRIBUTARY_APPS_SHOPIFY_CLIENT_SECRET=" + sf.ClientSecret(), "TRIBUTARY_APPS_SHOPIFY_WEBHOOK_SECRET=" + sf.ClientSecret(),
						"TRIBUTARY_APPS_SHOPIFY_BASE_URL=" + base, "TRIBUTARY_APPS_SHOPIFY_AUTH_URL=" + base + "/admin/oauth/authorize",
						"TRIBUTARY_APPS_SHOPIFY_TOKEN_URL=" + base + "/admin/oauth/access_token"}
				},
				create: func(m string) string {
					return strconv.FormatInt(sf.Create(shop, "customers", map[string]any{"first_name": "Chaos", "email": m}), 10)
				},
				update: func(id, m string) {
					n, _ := strconv.ParseInt(id, 10, 64)
					require.True(t, sf.Update(shop, "customers", n, map[string]any{"email": m}))
				},
				remove: func(id string) {
					n, _ := strconv.ParseInt(id, 10, 64)
					require.True(t, sf.Delete(shop, "customers", n))
				},
			})
		})
	}
}

func removeString(s []string, v string) []string {
	out := s[:0]
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}
