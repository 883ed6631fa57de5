package connections

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// SessionInput starts an OAuth2 connect flow.
type SessionInput struct {
	App      string
	UserID   string
	UserName string
	// RedirectURL is where the end user lands after the callback, with
	// ?connectionId=con_… or ?error=….
	RedirectURL string
	// Params are app-specific connect parameters (Shopify: "shop").
	Params map[string]string
}

// Session is a started connect flow: send the end user to ConnectURL before
// ExpiresAt.
type Session struct {
	ID string `json:"id"`
	// URL is the provider's authorize URL, for information: a flow sent
	// there directly is refused at the callback (no browser is bound).
	URL string `json:"url"`
	// ConnectURL, opened in the end user's browser, binds the flow to that
	// browser (a cookie the OAuth callback must carry) and forwards to URL.
	ConnectURL string    `json:"connectUrl"`
	ExpiresAt  time.Time `json:"expiresAt"`
}

// CreateSession starts an OAuth2 authorization-code flow with PKCE (S256)
// and a random state; the session expires after SessionLifetime.
//
// Without an app (the end user picks one on the hosted connect page) or
// with a credentials app, the session is completed on that page instead:
// its ConnectURL is /connect/{token} and URL is empty.
func (s *Service) CreateSession(ctx context.Context, accountID string, in SessionInput) (Session, error) {
	if in.App == "" {
		return s.createHosted(ctx, accountID, in)
	}
	app, err := s.appOf(in.App)
	if err != nil {
		return Session{}, err
	}
	oapp, ok := app.(connectors.OAuthApp)
	if !ok {
		if _, creds := app.(connectors.CredentialsApp); creds {
			return s.createHosted(ctx, accountID, in)
		}
		return Session{}, models.FieldError("app", "app %q does not connect through OAuth2: create the connection with credentials (POST /v1/connections)", in.App)
	}
	if err := checkUser(in.UserID, in.UserName); err != nil {
		return Session{}, err
	}
	if err := s.checkRedirectURL(ctx, accountID, in.RedirectURL); err != nil {
		return Session{}, err
	}
	if s.external == "" {
		return Session{}, models.Errorf(models.ErrCodeUnavailable, "this deployment has no public URL for the OAuth2 callback")
	}
	conf := oapp.OAuthConfig(s.CallbackURL(), in.Params)
	if conf == nil { // the app needs parameters it did not get (Shopify's shop)
		return Session{}, models.FieldError("params", "app %q needs connect parameters: %s", in.App, paramsHint(in.App))
	}
	if conf.ClientID == "" {
		return Session{}, models.Errorf(models.ErrCodeUnavailable, "app %q has no OAuth2 client configured on this deployment", in.App)
	}
	state, err := randomState()
	if err != nil {
		return Session{}, err
	}
	startToken, err := randomState()
	if err != nil {
		return Session{}, err
	}
	params, err := json.Marshal(nonNil(in.Params))
	if err != nil {
		return Session{}, fmt.Errorf("marshal connect params: %w", err)
	}
	now := s.clock()
	verifier := oauth2.GenerateVerifier()
	cs := &models.ConnectSession{
		ID: models.NewID(models.PrefixConnect), AccountID: accountID, App: in.App, UserID: in.UserID,
		UserName: in.UserName, RedirectURL: in.RedirectURL, State: state, Params: string(params),
		ExpiresAt: now.Add(SessionLifetime), CreatedAt: now, StartTokenHash: tokenHash(startToken),
	}
	cs.VerifierEnc = s.box.SealString(verifier, cs.ID)
	if err := s.db.WithContext(ctx).Create(cs).Error; err != nil {
		return Session{}, fmt.Errorf("create connect session: %w", err)
	}
	return Session{
		ID:         cs.ID,
		URL:        conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)),
		ConnectURL: s.external + "/oauth/start/" + startToken,
		ExpiresAt:  cs.ExpiresAt,
	}, nil
}

// Start opens a session's ConnectURL: it binds the session to the browser
// (returning the nonce the caller sets as a cookie) and returns the provider
// authorize URL to redirect to. Opening the link again (a reload) binds the
// newest browser.
func (s *Service) Start(ctx context.Context, token string) (authorizeURL, cookieName, browserNonce string, err error) {
	if token == "" || len(token) > 100 {
		return "", "", "", errSession
	}
	var cs models.ConnectSession
	err = s.db.WithContext(ctx).Where("start_token_hash = ?", tokenHash(token)).Take(&cs).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", "", "", errSession
	}
	if err != nil {
		return "", "", "", fmt.Errorf("load connect session: %w", err)
	}
	if cs.UsedAt != nil || !cs.ExpiresAt.After(s.clock()) {
		return "", "", "", errSession
	}
	app, err := s.appOf(cs.App)
	if err != nil {
		return "", "", "", err
	}
	oapp, ok := app.(connectors.OAuthApp)
	if !ok {
		return "", "", "", errSession
	}
	params := map[string]string{}
	if err := json.Unmarshal([]byte(cs.Params), &params); err != nil {
		return "", "", "", fmt.Errorf("connect session params: %w", err)
	}
	conf := oapp.OAuthConfig(s.CallbackURL(), params)
	if conf == nil {
		return "", "", "", errSession
	}
	verifier, err := s.box.OpenString(cs.VerifierEnc, cs.ID)
	if err != nil {
		return "", "", "", fmt.Errorf("connect session verifier: %w", err)
	}
	nonce, err := randomState()
	if err != nil {
		return "", "", "", err
	}
	res := s.db.WithContext(ctx).Model(&models.ConnectSession{}).Where("id = ? AND used_at IS NULL", cs.ID).
		Update("browser_hash", tokenHash(nonce))
	if res.Error != nil {
		return "", "", "", fmt.Errorf("bind connect session: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return "", "", "", errSession
	}
	return conf.AuthCodeURL(cs.State, oauth2.S256ChallengeOption(verifier)), BrowserCookieName(cs.State), nonce, nil
}

// BrowserCookieName is the name of the cookie binding the connect flow of
// state to a browser: one per flow, so two flows in one browser coexist.
func BrowserCookieName(state string) string { return "tributary_connect_" + tokenHash(state)[:16] }

// tokenHash is the stored form of a start token or browser nonce.
func tokenHash(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

// checkRedirectURL validates a session's redirectUrl: absolute http(s),
// bounded, and allowed by the account.
func (s *Service) checkRedirectURL(ctx context.Context, accountID, redirect string) error {
	if u, err := url.Parse(redirect); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return models.FieldError("redirectUrl", "redirectUrl must be an absolute http(s) URL")
	}
	if len(redirect) > 2048 {
		return models.FieldError("redirectUrl", "redirectUrl is longer than 2048 characters")
	}
	return s.checkRedirect(ctx, accountID, redirect)
}

// checkRedirect refuses a redirect URL whose origin is not in the account's
// allowedRedirectOrigins. An account with an empty list may return only to
// this deployment's own public URL or to a loopback host (localhost,
// 127.0.0.1, [::1]; development): an open redirect is never the default.
func (s *Service) checkRedirect(ctx context.Context, accountID, redirect string) error {
	if s.accounts == nil {
		return nil
	}
	acc, err := s.accounts.Get(ctx, accountID)
	if err != nil {
		return err
	}
	var allowed []string
	if acc.AllowedRedirectOrigins != "" {
		if err := json.Unmarshal([]byte(acc.AllowedRedirectOrigins), &allowed); err != nil {
			return fmt.Errorf("account %s allowed redirect origins: %w", accountID, err)
		}
	}
	u, err := url.Parse(redirect)
	if err != nil {
		return models.FieldError("redirectUrl", "redirectUrl must be an absolute http(s) URL")
	}
	origin := strings.ToLower(u.Scheme + "://" + u.Host)
	if len(allowed) == 0 {
		if s.ownOrigin(origin) || isLoopback(u.Hostname()) {
			return nil
		}
		return models.FieldError("redirectUrl", "the account has no allowedRedirectOrigins: redirectUrl may only return to this deployment or localhost until an operator sets them (PATCH /v1/admin/accounts/{id})")
	}
	for _, a := range allowed {
		if strings.EqualFold(a, origin) {
			return nil
		}
	}
	return models.FieldError("redirectUrl", "redirectUrl's origin %s is not in the account's allowedRedirectOrigins", origin)
}

// ownOrigin reports whether origin is this deployment's public URL's.
func (s *Service) ownOrigin(origin string) bool {
	u, err := url.Parse(s.external)
	return err == nil && u.Host != "" && strings.EqualFold(u.Scheme+"://"+u.Host, origin)
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func randomState() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random state: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// errSession is the answer for a state that names no usable session.
var errSession = models.Errorf(models.ErrCodeInvalid, "unknown, expired or already used connect session: start again with POST /v1/connect-sessions")

// errOtherBrowser answers a callback of a bound session without its cookie.
var errOtherBrowser = models.Errorf(models.ErrCodeInvalid, "this connect flow was started in another browser: open the connect link again in this one")

// errUnstarted answers a callback of a session never opened through its
// ConnectURL (the provider URL was used directly): no browser is bound.
var errUnstarted = models.Errorf(models.ErrCodeInvalid, "this connect flow was not started from its connect link: open connectUrl in the browser")

// BrowserCallback completes a connect flow at /oauth/callback, with the
// browser nonce the request's cookie carried ("" when none). The session
// must have been opened through its ConnectURL (Start) in the browser that
// carries that nonce; any other request is refused and the session stays
// usable for that browser. The session named by state is then consumed
// exactly once; the code is exchanged (with the PKCE verifier), the provider
// account identified and the connection created like Create does. It
// returns where to send the end user: the session's redirect URL with
// ?connectionId=con_…, or with ?error=… when the provider or the exchange
// failed. An unknown, expired or used state is an invalid_request error
// (there is nowhere safe to redirect).
func (s *Service) BrowserCallback(ctx context.Context, state, code, providerError, browserNonce string) (string, error) {
	if state == "" {
		return "", errSession
	}
	var cs models.ConnectSession
	err := s.db.WithContext(ctx).Where("state = ?", state).Take(&cs).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return "", errSession
	}
	if err != nil {
		return "", fmt.Errorf("load connect session: %w", err)
	}
	if cs.BrowserHash == "" {
		return "", errUnstarted
	}
	if subtle.ConstantTimeCompare([]byte(cs.BrowserHash), []byte(tokenHash(browserNonce))) != 1 {
		return "", errOtherBrowser
	}
	now := s.clock()
	// Consume the session: of two callbacks with the same state, one wins.
	res := s.db.WithContext(ctx).Model(&models.ConnectSession{}).
		Where("id = ? AND used_at IS NULL AND expires_at > ?", cs.ID, now).Update("used_at", now)
	if res.Error != nil {
		return "", fmt.Errorf("consume connect session: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return "", errSession
	}
	if providerError != "" {
		return redirectWith(cs.RedirectURL, "error", providerError), nil
	}
	connID, err := s.complete(ctx, &cs, code)
	if err != nil {
		var coded *models.Error
		if !errors.As(err, &coded) {
			return "", err
		}
		s.log.WarnContext(ctx, "connect session failed", "session", cs.ID, "app", cs.App, "err", err)
		return redirectWith(cs.RedirectURL, "error", "connect_failed"), nil
	}
	return redirectWith(cs.RedirectURL, "connectionId", connID), nil
}

// complete exchanges the code and creates the connection. Failures the end
// user or the provider caused are *models.Error.
func (s *Service) complete(ctx context.Context, cs *models.ConnectSession, code string) (string, error) {
	if code == "" {
		return "", models.Errorf(models.ErrCodeInvalid, "callback without code")
	}
	app, err := s.appOf(cs.App)
	if err != nil {
		return "", err
	}
	oapp, ok := app.(connectors.OAuthApp)
	if !ok {
		return "", models.Errorf(models.ErrCodeInvalid, "app %q no longer connects through OAuth2", cs.App)
	}
	params := map[string]string{}
	if err := json.Unmarshal([]byte(cs.Params), &params); err != nil {
		return "", fmt.Errorf("connect session params: %w", err)
	}
	verifier, err := s.box.OpenString(cs.VerifierEnc, cs.ID)
	if err != nil {
		return "", fmt.Errorf("connect session verifier: %w", err)
	}
	conf := oapp.OAuthConfig(s.CallbackURL(), params)
	if conf == nil {
		return "", fmt.Errorf("connect session %s: app %s has no OAuth2 configuration for its parameters", cs.ID, cs.App)
	}
	hctx := context.WithValue(ctx, oauth2.HTTPClient, s.http)
	tok, err := conf.Exchange(hctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return "", models.Errorf(models.ErrCodeInvalid, "%s refused the authorization code: %v", cs.App, err)
	}
	idTok := tok
	if len(params) > 0 {
		// Identify may need the session's parameters (Shopify's shop);
		// keep the token response's own extras it may read too.
		extra := map[string]any{}
		for _, k := range []string{"instance_url", "id", "issued_at", "signature", "scope"} {
			if v := tok.Extra(k); v != nil {
				extra[k] = v
			}
		}
		for k, v := range params {
			extra[k] = v
		}
		idTok = tok.WithExtra(extra)
	}
	externalID, meta, err := oapp.Identify(hctx, idTok, s.http)
	if err != nil {
		return "", models.Errorf(models.ErrCodeInvalid, "cannot identify the %s account: %v", cs.App, err)
	}
	creds := map[string]string{}
	for k, v := range params {
		creds[k] = v
	}
	setToken(creds, tok, s.clock())
	iv, err := s.intervalsOf(ctx, cs.AccountID)
	if err != nil {
		return "", err
	}
	v, err := s.insert(ctx, newConnection{
		accountID: cs.AccountID, app: app, userID: cs.UserID, userName: cs.UserName, credentials: creds,
		externalID: externalID, metadata: meta, sessionID: cs.ID,
	}, iv)
	if err != nil {
		return "", err
	}
	return v.ID, nil
}

// redirectWith adds key=value to the query of u.
func redirectWith(u, key, value string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := p.Query()
	q.Set(key, value)
	p.RawQuery = q.Encode()
	return p.String()
}

// paramsHint names what an app's connect parameters must hold.
func paramsHint(app string) string {
	if app == "shopify" {
		return `{"shop": "<name>.myshopify.com"}`
	}
	return "see the app's documentation"
}
