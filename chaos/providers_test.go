package chaos

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors/hubspot/fake"
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

// TestHubSpotFaults connects a HubSpot portal (the provider fake, on the
// real clock) through the OAuth flow of a `tributary serve` subprocess, with
// the fake's API behind a proxy that answers 429, 500 and malformed pages at
// random; the fake also sends its signed native webhooks (thin notices the
// engine must fetch through the same faulty API). Contacts are created,
// updated and deleted; the audit must be clean.
func TestHubSpotFaults(t *testing.T) {
	t.Parallel()
	rounds, writes, rate := 3, 6, 10
	if long() {
		rounds, writes, rate = 10, 20, 15
	}
	for i, d := range storagetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			s := seed(20261150 + uint64(i))
			hs := fake.New(fake.WithClock(time.Now))
			portal := hs.CreatePortal()
			prov := newFaultyProvider(t, hs, "/crm/", s, rate)
			e := NewEngineEnv(t, d, []string{
				"TRIBUTARY_APPS_HUBSPOT_CLIENT_ID=" + hs.ClientID(), "TRIBUTARY_APPS_HUBSPOT_CLIENT_SECRET=" + hs.ClientSecret(),
				"TRIBUTARY_APPS_HUBSPOT_BASE_URL=" + prov.URL, "TRIBUTARY_APPS_HUBSPOT_AUTH_URL=" + prov.URL + "/oauth/authorize",
				"TRIBUTARY_APPS_HUBSPOT_TOKEN_URL=" + prov.URL + "/oauth/v1/token",
			})
			hs.SetWebhookTarget(e.URL + "/inbound/hubspot")
			key := e.Account("HubSpot chaos")
			rc := NewReceiver(e.URL+"/.well-known/jwks.json", s, time.Second, DefaultWeights)
			t.Cleanup(rc.Close)
			e.Must("POST", "/v1/webhooks", key, subscription(rc.URL), 201)
			require.NoError(t, rc.Prefetch())

			// OAuth: connect session → fake authorize → engine callback.
			sess := e.Must("POST", "/v1/connect-sessions", key, map[string]any{"app": "hubspot", "userId": "u1",
				"userName": "Portal", "redirectUrl": "http://127.0.0.1/done"}, 201)
			noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			hop := func(u string) string {
				resp, err := noFollow.Get(u)
				require.NoError(t, err)
				resp.Body.Close()
				require.Equal(t, http.StatusFound, resp.StatusCode, "GET %s", u)
				return resp.Header.Get("Location")
			}
			done, err := url.Parse(hop(hop(sess["url"].(string))))
			require.NoError(t, err)
			conn := done.Query().Get("connectionId")
			require.NotEmpty(t, conn, "redirected to %s", done)
			w := NewWorld(e, e.DB, key, s)
			w.Conns = append(w.Conns, conn)
			w.Mode[conn] = "hubspot"
			require.NoError(t, w.Settle(60*time.Second), "first sync")

			rnd := rand.New(rand.NewPCG(s, 13))
			var live []string
			change := func(rid, kind, m string) {
				w.Record(Change{ConnectionID: conn, Topic: "crm/contacts", RemoteID: rid, Kind: kind, Marker: m})
			}
			for round := range rounds {
				touched := map[string]bool{}
				for range writes {
					op := rnd.IntN(10)
					switch {
					case len(live) == 0 || op < 5:
						m := w.Marker()
						id, err := hs.Create(portal, "contacts", map[string]string{"email": m, "firstname": "Chaos"})
						require.NoError(t, err)
						live = append(live, id)
						touched[id] = true
						change(id, "created", m)
					default:
						id := live[rnd.IntN(len(live))]
						if touched[id] {
							continue
						}
						touched[id] = true
						if op < 8 {
							m := w.Marker()
							require.NoError(t, hs.Update(portal, "contacts", id, map[string]string{"email": m}))
							change(id, "updated", m)
						} else {
							require.NoError(t, hs.Delete(portal, "contacts", id))
							live = removeString(live, id)
							change(id, "deleted", "")
						}
					}
				}
				require.NoError(t, w.Settle(60*time.Second), "round %d", round)
			}
			prov.disabled.Store(true) // let retries converge
			require.NoError(t, w.Settle(60*time.Second))
			finish(t, e, rc, w, true, nil)
			t.Logf("provider answers: %v", prov.summary())
			require.NotZero(t, prov.summary()["malformed"], "malformed pages were served")
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
