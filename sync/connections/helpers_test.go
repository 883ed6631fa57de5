package connections

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/clocktest"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"gorm.io/gorm"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
)

var t0 = time.Date(2026, 11, 24, 3, 0, 0, 0, time.UTC)

type clock = clocktest.Clock

// fakePublisher records what it is asked to publish and checks it runs in a
// transaction; err makes it fail.
type fakePublisher struct {
	mu     sync.Mutex
	events []*models.Envelope
	inTx   []bool
	err    error
}

func (p *fakePublisher) Publish(_ context.Context, tx *gorm.DB, accountID string, events ...*models.Envelope) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	_, isTx := tx.Statement.ConnPool.(gorm.TxCommitter)
	for _, e := range events {
		p.events = append(p.events, e)
		p.inTx = append(p.inTx, isTx)
	}
	return nil
}

func (p *fakePublisher) topics() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, e := range p.events {
		out = append(out, e.Topic)
	}
	return out
}

func (p *fakePublisher) last() *models.Envelope {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.events[len(p.events)-1]
}

// credApp is a credentials-connected app with native webhooks.
type credApp struct {
	mu           sync.Mutex
	subscribed   []string
	unsubscribed []*connectors.Conn
}

func (a *credApp) Info() connectors.Info {
	return connectors.Info{Name: "fakecrm", DisplayName: "Fake CRM", Category: models.CategoryCRM, Auth: connectors.AuthCredentials}
}

func (a *credApp) ValidateCredentials(_ context.Context, creds map[string]string) (string, map[string]string, error) {
	switch creds["api_key"] {
	case "good":
		return "ext-" + creds["tenant"], map[string]string{"region": "eu"}, nil
	case "noext":
		return "", nil, nil
	case "down":
		return "", nil, &connectors.ProviderError{StatusCode: 503, Message: "maintenance", Temporary: true}
	}
	return "", nil, errors.New("401 invalid api key")
}

func (a *credApp) Subscribe(_ context.Context, c *connectors.Conn, callbackURL string) (map[string]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c.Credentials["api_key"] == "" {
		return nil, errors.New("no credentials")
	}
	a.subscribed = append(a.subscribed, callbackURL)
	return map[string]string{"hook_id": "hook-" + c.ID}, nil
}

func (a *credApp) Unsubscribe(_ context.Context, c *connectors.Conn) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.unsubscribed = append(a.unsubscribed, c)
	return nil
}

// oauthApp connects through the in-test provider.
type oauthApp struct{ p *provider }

func (a *oauthApp) Info() connectors.Info {
	return connectors.Info{Name: "fakeoauth", DisplayName: "Fake OAuth", Category: models.CategoryCRM, Auth: connectors.AuthOAuth2}
}

func (a *oauthApp) OAuthConfig(redirectURL string, _ map[string]string) *oauth2.Config {
	return &oauth2.Config{
		ClientID: "client-1", ClientSecret: "secret-1", RedirectURL: redirectURL, Scopes: []string{"read"},
		Endpoint: oauth2.Endpoint{AuthURL: a.p.URL + "/authorize", TokenURL: a.p.URL + "/token", AuthStyle: oauth2.AuthStyleInParams},
	}
}

func (a *oauthApp) Identify(ctx context.Context, tok *oauth2.Token, hc *http.Client) (string, map[string]string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.p.URL+"/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := hc.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	var me struct{ Account string }
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&me) != nil {
		return "", nil, fmt.Errorf("identify: status %d", resp.StatusCode)
	}
	return me.Account, map[string]string{"account": me.Account}, nil
}

// provider is a minimal OAuth2 provider with PKCE (S256) and an API
// endpoint that checks bearer tokens.
type provider struct {
	*httptest.Server
	mu         sync.Mutex
	n          int
	codes      map[string]string // code → challenge
	tokens     map[string]bool   // live access tokens
	refresh    map[string]bool   // live refresh tokens
	refreshes  int
	refreshErr int // status answered to refresh requests (0 = succeed)
	verifiers  []string
}

func newProvider(t *testing.T) *provider {
	p := &provider{codes: map[string]string{}, tokens: map[string]bool{}, refresh: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("client_id") != "client-1" {
			http.Error(w, "PKCE S256 required", http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		p.n++
		code := fmt.Sprintf("code-%d", p.n)
		p.codes[code] = q.Get("code_challenge")
		p.mu.Unlock()
		u, _ := url.Parse(q.Get("redirect_uri"))
		rq := u.Query()
		rq.Set("code", code)
		rq.Set("state", q.Get("state"))
		u.RawQuery = rq.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		p.mu.Lock()
		defer p.mu.Unlock()
		fail := func(status int, code string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = fmt.Fprintf(w, `{"error":%q}`, code)
		}
		if r.PostForm.Get("client_secret") != "secret-1" {
			fail(http.StatusUnauthorized, "invalid_client")
			return
		}
		switch r.PostForm.Get("grant_type") {
		case "authorization_code":
			challenge, ok := p.codes[r.PostForm.Get("code")]
			delete(p.codes, r.PostForm.Get("code"))
			v := r.PostForm.Get("code_verifier")
			p.verifiers = append(p.verifiers, v)
			sum := sha256.Sum256([]byte(v))
			if !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != challenge {
				fail(http.StatusBadRequest, "invalid_grant")
				return
			}
		case "refresh_token":
			p.refreshes++
			if p.refreshErr != 0 {
				fail(p.refreshErr, map[bool]string{true: "invalid_grant", false: "temporarily_unavailable"}[p.refreshErr < 500])
				return
			}
			if !p.refresh[r.PostForm.Get("refresh_token")] {
				fail(http.StatusBadRequest, "invalid_grant")
				return
			}
			delete(p.refresh, r.PostForm.Get("refresh_token")) // rotating refresh tokens
		default:
			fail(http.StatusBadRequest, "unsupported_grant_type")
			return
		}
		p.n++
		at, rt := fmt.Sprintf("at-%d", p.n), fmt.Sprintf("rt-%d", p.n)
		p.tokens[at], p.refresh[rt] = true, true
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": at, "refresh_token": rt, "token_type": "bearer", "expires_in": 3600})
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		if !p.authorized(r) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"account":"portal-7"}`))
	})
	mux.HandleFunc("GET /api", func(w http.ResponseWriter, r *http.Request) {
		if !p.authorized(r) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")))
	})
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Close)
	return p
}

func (p *provider) authorized(r *http.Request) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && p.tokens[at]
}

func (p *provider) setRefreshErr(status int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refreshErr = status
}

func (p *provider) refreshCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refreshes
}

// registry is a tiny Apps.
type registry map[string]connectors.Connector

func (r registry) Get(name string) (connectors.Connector, bool) { c, ok := r[name]; return c, ok }

// bundle is one test's service and its fakes.
type bundle struct {
	db       *gorm.DB
	svc      *Service
	pub      *fakePublisher
	cred     *credApp
	prov     *provider
	clock    *clock
	accounts *accounts.Service
	accA     string
	accB     string
	box      *secrets.Box
}

func setup(t *testing.T, db *gorm.DB) *bundle {
	t.Helper()
	ctx := context.Background()
	box, err := secrets.New(make([]byte, secrets.KeySize))
	require.NoError(t, err)
	b := &bundle{db: db, pub: &fakePublisher{}, cred: &credApp{}, prov: newProvider(t), clock: clocktest.New(t0),
		accounts: accounts.New(db), box: box}
	accA, _, err := b.accounts.Create(ctx, "A")
	require.NoError(t, err)
	accB, _, err := b.accounts.Create(ctx, "B")
	require.NoError(t, err)
	b.accA, b.accB = accA.ID, accB.ID
	// Both return their end users to the ISV's app (an empty list allows
	// only this deployment and loopback hosts).
	for _, id := range []string{b.accA, b.accB} {
		_, err = b.accounts.Update(ctx, id, accounts.Update{AllowedRedirectOrigins: &[]string{"https://isv.example.com"}})
		require.NoError(t, err)
	}
	b.svc, err = New(Config{
		DB: db, Box: box, Publisher: b.pub, Accounts: b.accounts,
		Apps:        registry{"fakecrm": b.cred, "fakeoauth": &oauthApp{p: b.prov}},
		ExternalURL: "https://trb.example.com/", HTTP: b.prov.Client(), Now: b.clock.Now,
	})
	require.NoError(t, err)
	return b
}

// createCred makes a direct connection in account acc.
func (b *bundle) createCred(t *testing.T, acc, user string) View {
	t.Helper()
	v, err := b.svc.Create(context.Background(), acc, CreateInput{App: "fakecrm", UserID: user, UserName: user + "'s CRM",
		Credentials: map[string]string{"api_key": "good", "tenant": user}})
	require.NoError(t, err)
	return v
}

func (b *bundle) row(t *testing.T, id string) models.Connection {
	t.Helper()
	var c models.Connection
	require.NoError(t, b.db.Where("id = ?", id).Take(&c).Error)
	return c
}

func code(err error) string { return models.ErrorCode(err) }

func field(err error) string {
	var e *models.Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// callback completes the flow of state as the browser that opened its
// connect link would: the session is bound to a test browser (what Start
// does) and the callback carries that browser's nonce.
func (b *bundle) callback(ctx context.Context, state, code, providerError string) (string, error) {
	const nonce = "test-browser"
	if err := b.db.Model(&models.ConnectSession{}).Where("state = ?", state).
		Update("browser_hash", tokenHash(nonce)).Error; err != nil {
		return "", err
	}
	return b.svc.BrowserCallback(ctx, state, code, providerError, nonce)
}
