// Package fake is an in-memory Shopify for tests and the sandbox: the REST
// Admin API for orders, customers, products, shop and webhooks (paths,
// X-Shopify-Access-Token auth, Link-header page_info paging with Shopify's
// rules, error bodies, X-Shopify-Shop-Api-Call-Limit), the per-shop OAuth
// endpoints (auto-approving authorize, code and refresh_token grants,
// expiring offline tokens, PKCE S256 when a challenge was sent) and signed
// webhook deliveries to the registered addresses. State lives in memory
// behind one mutex; shops are the tenants. It imports nothing of Tributary.
package fake

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"
)

// Defaults of a fake built without options.
const (
	DefaultClientID     = "fake-client-id"
	DefaultClientSecret = "fake-client-secret"
	DefaultAPIVersion   = "2026-10"
	// AccessTokenTTL is the lifetime of an expiring offline access token.
	AccessTokenTTL = time.Hour
	// RefreshTokenTTL is the lifetime of a refresh token.
	RefreshTokenTTL = 90 * 24 * time.Hour
)

// Resources the fake serves.
const (
	Orders    = "orders"
	Customers = "customers"
	Products  = "products"
)

// singular names the JSON envelope of one resource.
var singular = map[string]string{Orders: "order", Customers: "customer", Products: "product"}

// shopZone is the time zone the fake formats times in, as Shopify uses the
// shop's zone ("2008-01-10T11:00:00-05:00").
var shopZone = time.FixedZone("EST", -5*3600)

// Clock is a manual clock for tests: Now returns the current time until
// Advance moves it.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock stopped at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Delivery is one signed webhook request the fake sent (or would send).
type Delivery struct {
	// URL is the subscription's address.
	URL    string
	Header http.Header
	Body   []byte
	// Status is the receiver's HTTP status (0 when not posted or failed).
	Status int
}

// item is one stored resource.
type item struct {
	id               int64
	created, updated time.Time
	fields           map[string]any
}

// subscription is one REST webhook subscription.
type subscription struct {
	id               int64
	topic, address   string
	created, updated time.Time
}

// shop is one tenant.
type shop struct {
	domain   string
	id       int64
	name     string
	created  time.Time
	res      map[string]map[int64]*item
	webhooks map[int64]*subscription
	fails    []string
	outbox   []*Delivery
}

type token struct {
	shop      string
	expiresAt time.Time // zero: never
}

type grant struct {
	shop, redirectURI, challenge, method, scope string
	expires                                     time.Time
}

// Server is the fake Shopify. Its zero value is not usable; call New.
type Server struct {
	mu           sync.Mutex
	now          func() time.Time
	clientID     string
	clientSecret string
	apiVersion   string
	pagingKey    []byte
	client       *http.Client
	post         bool
	shops        map[string]*shop
	tokens       map[string]*token
	refresh      map[string]*token
	codes        map[string]*grant
	seq          int64
	mux          *http.ServeMux
	throttle     *throttle
}

// Option configures a Server.
type Option func(*Server)

// WithClock injects the fake's clock.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithClientCredentials sets the app's client id and secret (the secret
// also signs webhooks).
func WithClientCredentials(id, secret string) Option {
	return func(s *Server) { s.clientID, s.clientSecret = id, secret }
}

// WithAPIVersion sets the version reported in X-Shopify-API-Version.
func WithAPIVersion(v string) Option { return func(s *Server) { s.apiVersion = v } }

// WithDeliveryClient sets the client webhooks are POSTed with (default: 5 s
// timeout, as Shopify's).
func WithDeliveryClient(hc *http.Client) Option { return func(s *Server) { s.client = hc } }

// WithoutDelivery keeps webhooks in the outbox only (no POST).
func WithoutDelivery() Option { return func(s *Server) { s.post = false } }

// New builds a fake with no shops.
func New(opts ...Option) *Server {
	s := &Server{
		now: time.Now, clientID: DefaultClientID, clientSecret: DefaultClientSecret,
		apiVersion: DefaultAPIVersion, pagingKey: []byte("fake-shopify-page-info-key"),
		client: &http.Client{Timeout: 5 * time.Second}, post: true,
		shops: map[string]*shop{}, tokens: map[string]*token{}, refresh: map[string]*token{},
		codes: map[string]*grant{}, seq: 1000000000,
	}
	for _, o := range opts {
		o(s)
	}
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("GET /admin/oauth/authorize", s.authorize)
	s.mux.HandleFunc("POST /admin/oauth/access_token", s.accessToken)
	s.mux.HandleFunc("/admin/api/{version}/{file}", s.api)
	s.mux.HandleFunc("/admin/api/{version}/{resource}/{file}", s.api)
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// ClientSecret returns the app secret that signs webhooks.
func (s *Server) ClientSecret() string { return s.clientSecret }

func (s *Server) nowLocked() time.Time { return s.now().Truncate(time.Second) }

func (s *Server) nextID() int64 {
	s.seq += 7
	return s.seq
}

// AddShop creates the shop "<name>.myshopify.com" (a domain is accepted as
// is) if it does not exist and returns its domain.
func (s *Server) AddShop(domain string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addShopLocked(domain).domain
}

func (s *Server) addShopLocked(domain string) *shop {
	if !hasSuffix(domain, ".myshopify.com") {
		domain += ".myshopify.com"
	}
	if sh, ok := s.shops[domain]; ok {
		return sh
	}
	sh := &shop{
		domain: domain, id: s.nextID(), name: domain[:len(domain)-len(".myshopify.com")], created: s.nowLocked(),
		res:      map[string]map[int64]*item{Orders: {}, Customers: {}, Products: {}},
		webhooks: map[int64]*subscription{},
	}
	s.shops[domain] = sh
	return sh
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

// IssueToken installs the app on shop (created if needed) and returns an
// access token, with a refresh token when expiring (an expiring offline
// token); otherwise a classic non-expiring offline token and "".
func (s *Server) IssueToken(domain string, expiring bool) (access, refreshTok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.addShopLocked(domain)
	a, r, _ := s.issueLocked(sh.domain, expiring)
	return a, r
}

// AddToken registers a fixed non-expiring access token for shop (the
// sandbox's well-known token).
func (s *Server) AddToken(domain, access string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.addShopLocked(domain)
	s.tokens[access] = &token{shop: sh.domain}
}

func (s *Server) issueLocked(domain string, expiring bool) (access, refreshTok string, ttl time.Duration) {
	prefix := "shpat_"
	if expiring {
		prefix = "shpua_"
	}
	access = fmt.Sprintf("%s%s", prefix, s.secretID("access"))
	t := &token{shop: domain}
	if expiring {
		t.expiresAt = s.now().Add(AccessTokenTTL)
		refreshTok = "shprt_" + s.secretID("refresh")
		s.refresh[refreshTok] = &token{shop: domain, expiresAt: s.now().Add(RefreshTokenTTL)}
		ttl = AccessTokenTTL
	}
	s.tokens[access] = t
	return access, refreshTok, ttl
}

// secretID derives an unguessable-looking, deterministic token body.
func (s *Server) secretID(kind string) string {
	s.seq++
	m := hmac.New(sha256.New, s.pagingKey)
	fmt.Fprintf(m, "%s/%d", kind, s.seq)
	return fmt.Sprintf("%x", m.Sum(nil)[:16])
}

// ExpireTokens makes every access token of shop expired now (refresh
// tokens stay valid).
func (s *Server) ExpireTokens(domain string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		if t.shop == domain {
			t.expiresAt = s.now()
		}
	}
}

// FailNext makes the next n Admin API requests of shop fail with kind:
// "rate_limit" (429 + Retry-After), "server_error" (500) or "expired_token"
// (the token presented is expired and answered 401; refresh to go on).
func (s *Server) FailNext(domain, kind string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.addShopLocked(domain)
	for range n {
		sh.fails = append(sh.fails, kind)
	}
}

// Create stores a new resource (Orders, Customers, Products) in shop with
// fields merged over a realistic template, sends the */create webhooks and
// returns its id.
func (s *Server) Create(domain, resource string, fields map[string]any) int64 {
	s.mu.Lock()
	sh := s.addShopLocked(domain)
	it := s.createLocked(sh, resource, fields)
	ds := s.emitLocked(sh, resource, "create", it, false)
	s.mu.Unlock()
	s.deliver(ds)
	return it.id
}

func (s *Server) createLocked(sh *shop, resource string, fields map[string]any) *item {
	now := s.nowLocked()
	it := &item{id: s.nextID(), created: now, updated: now, fields: template(resource, s)}
	maps.Copy(it.fields, fields)
	sh.res[resource][it.id] = it
	return it
}

// Update merges fields into a resource, bumps updated_at and sends the
// update webhooks. It reports whether the resource exists.
func (s *Server) Update(domain, resource string, id int64, fields map[string]any) bool {
	s.mu.Lock()
	sh := s.shops[domain]
	if sh == nil || sh.res[resource][id] == nil {
		s.mu.Unlock()
		return false
	}
	it := sh.res[resource][id]
	s.updateLocked(it, fields)
	ds := s.emitLocked(sh, resource, "update", it, false)
	s.mu.Unlock()
	s.deliver(ds)
	return true
}

func (s *Server) updateLocked(it *item, fields map[string]any) {
	maps.Copy(it.fields, fields)
	if now := s.nowLocked(); now.After(it.updated) {
		it.updated = now
	}
}

// Delete removes a resource and sends the */delete webhooks. It reports
// whether the resource existed.
func (s *Server) Delete(domain, resource string, id int64) bool {
	s.mu.Lock()
	sh := s.shops[domain]
	if sh == nil || sh.res[resource][id] == nil {
		s.mu.Unlock()
		return false
	}
	it := sh.res[resource][id]
	delete(sh.res[resource], id)
	ds := s.emitLocked(sh, resource, "delete", it, true)
	s.mu.Unlock()
	s.deliver(ds)
	return true
}

// Get returns the JSON object of one resource as the API renders it.
func (s *Server) Get(domain, resource string, id int64) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.shops[domain]
	if sh == nil || sh.res[resource][id] == nil {
		return nil, false
	}
	return s.render(sh, resource, sh.res[resource][id]), true
}

// Deliveries returns, and forgets, the webhook deliveries of shop since the
// last call (whether or not they were POSTed).
func (s *Server) Deliveries(domain string) []*Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.shops[domain]
	if sh == nil {
		return nil
	}
	out := sh.outbox
	sh.outbox = nil
	return out
}

// Webhooks returns the topic → address of shop's webhook subscriptions.
func (s *Server) Webhooks(domain string) map[int64][2]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int64][2]string{}
	if sh := s.shops[domain]; sh != nil {
		for id, w := range sh.webhooks {
			out[id] = [2]string{w.topic, w.address}
		}
	}
	return out
}

// render builds the API JSON of an item: its fields plus id, timestamps
// and admin_graphql_api_id.
func (s *Server) render(sh *shop, resource string, it *item) map[string]any {
	out := make(map[string]any, len(it.fields)+4)
	maps.Copy(out, it.fields)
	out["id"] = it.id
	out["created_at"] = fmtTime(it.created)
	out["updated_at"] = fmtTime(it.updated)
	out["admin_graphql_api_id"] = fmt.Sprintf("gid://shopify/%s/%d", cmp.Or(map[string]string{Orders: "Order", Customers: "Customer", Products: "Product"}[resource], "Resource"), it.id)
	if resource == Products {
		if vs, ok := out["variants"].([]any); ok {
			for _, v := range vs {
				if vm, ok := v.(map[string]any); ok {
					vm["product_id"] = it.id
					vm["updated_at"] = fmtTime(it.updated)
				}
			}
		}
	}
	return out
}

func fmtTime(t time.Time) string { return t.In(shopZone).Format(time.RFC3339) }

// sign is Shopify's webhook HMAC: base64(HMAC-SHA256(secret, body)).
func sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}
