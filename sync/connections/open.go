package connections

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// Credential keys of an OAuth2 connection: the token's fields, stored in the
// sealed credentials next to the connect session's parameters.
const (
	CredAccessToken  = "access_token"
	CredRefreshToken = "refresh_token"
	CredTokenType    = "token_type"
	// CredExpiry is the access token's expiry, RFC 3339 ("" = never).
	CredExpiry = "expiry"
)

var tokenKeys = []string{CredAccessToken, CredRefreshToken, CredTokenType, CredExpiry}

// Open decrypts the credentials and returns the connectors.Conn. For an
// OAuth2 connection its HTTP client authenticates with the access token,
// refreshes it RefreshEarly before it expires and persists the new one; a
// refresh the provider rejects marks the connection needs_reauth, publishes
// connection/reauth_required and surfaces connectors.ErrUnauthorized.
// Conn.Refresh forces a refresh.
func (s *Service) Open(ctx context.Context, c *models.Connection) (*connectors.Conn, error) {
	creds, err := s.openCredentials(c)
	if err != nil {
		return nil, err
	}
	return s.openWith(ctx, c, creds)
}

func (s *Service) openWith(ctx context.Context, c *models.Connection, creds map[string]string) (*connectors.Conn, error) {
	conn, err := s.openConn(ctx, c, creds)
	if err != nil {
		return nil, err
	}
	app, _ := s.apps.Get(c.App)
	if b, ok := app.(connectors.Budgeted); ok && s.pacer != nil {
		// Outside the OAuth2 transport: every API request is paced, token
		// refreshes (sent on their own client) are not.
		hc := *conn.HTTP
		hc.Transport = s.pacer.Wrap(b, c.App, c.ExternalID, hc.Transport)
		conn.HTTP = &hc
	}
	return conn, nil
}

func (s *Service) openConn(ctx context.Context, c *models.Connection, creds map[string]string) (*connectors.Conn, error) {
	meta := map[string]string{}
	if c.Metadata != "" {
		if err := json.Unmarshal([]byte(c.Metadata), &meta); err != nil {
			return nil, fmt.Errorf("metadata of %s: %w", c.ID, err)
		}
	}
	app, ok := s.apps.Get(c.App)
	if !ok {
		return nil, fmt.Errorf("connection %s: app %q is not offered by this deployment", c.ID, c.App)
	}
	conn := &connectors.Conn{ID: c.ID, ExternalID: c.ExternalID, Credentials: maps.Clone(creds), Metadata: meta, HTTP: s.http}
	oapp, isOAuth := app.(connectors.OAuthApp)
	if !isOAuth || creds[CredTokenType] == "" {
		return conn, nil
	}
	params := maps.Clone(creds)
	for _, k := range tokenKeys {
		delete(params, k)
	}
	conf := oapp.OAuthConfig(s.CallbackURL(), params)
	if conf == nil {
		return nil, fmt.Errorf("open %s: app %s has no OAuth2 configuration for its stored parameters", c.ID, c.App)
	}
	ts := &tokenSource{
		s: s, ctx: ctx, id: c.ID, conf: conf,
		creds: maps.Clone(creds), sealed: c.CredentialsEnc,
	}
	conn.HTTP = &http.Client{
		Transport:     &oauth2.Transport{Source: ts, Base: s.http.Transport},
		CheckRedirect: s.http.CheckRedirect, Jar: s.http.Jar, Timeout: s.http.Timeout,
	}
	conn.Refresh = ts.Refresh
	return conn, nil
}

// tokenSource hands out a connection's access token, refreshing and
// persisting it when it is about to expire.
type tokenSource struct {
	s    *Service
	ctx  context.Context // for refreshes triggered by requests
	id   string
	conf *oauth2.Config

	mu     sync.Mutex
	creds  map[string]string
	sealed []byte // the stored credentials creds were read from or written as
}

// Token returns a fresh access token (oauth2.TokenSource).
func (t *tokenSource) Token() (*oauth2.Token, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tok := tokenOf(t.creds); t.fresh(tok) {
		return tok, nil
	}
	return t.refreshLocked(t.ctx)
}

// Refresh forces a refresh (connectors.Conn.Refresh), unless another process
// stored a new token meanwhile.
func (t *tokenSource) Refresh(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, err := t.refreshLocked(ctx)
	return err
}

func (t *tokenSource) fresh(tok *oauth2.Token) bool {
	return tok.AccessToken != "" && (tok.Expiry.IsZero() || t.s.clock().Add(RefreshEarly).Before(tok.Expiry))
}

func (t *tokenSource) refreshLocked(ctx context.Context) (*oauth2.Token, error) {
	s := t.s
	// Another replica may have refreshed already: adopt its token.
	var row models.Connection
	err := s.db.WithContext(ctx).Select("id", "credentials_enc").Where("id = ?", t.id).Take(&row).Error
	switch {
	case err == nil && !bytes.Equal(row.CredentialsEnc, t.sealed):
		if creds, err := s.openCredentials(&row); err == nil {
			t.creds, t.sealed = creds, row.CredentialsEnc
			if tok := tokenOf(creds); t.fresh(tok) {
				return tok, nil
			}
		}
	case err != nil && !errors.Is(err, gorm.ErrRecordNotFound):
		return nil, fmt.Errorf("refresh token of %s: %w", t.id, err)
	}
	old := tokenOf(t.creds)
	if old.RefreshToken == "" {
		return nil, t.reject(ctx, errors.New("the access token expired and there is no refresh token"))
	}
	hctx := context.WithValue(ctx, oauth2.HTTPClient, s.http)
	tok, err := t.conf.TokenSource(hctx, &oauth2.Token{RefreshToken: old.RefreshToken}).Token()
	if err != nil {
		if rejected(err) {
			return nil, t.reject(ctx, err)
		}
		return nil, fmt.Errorf("refresh token of %s: %w", t.id, err)
	}
	creds := maps.Clone(t.creds)
	setToken(creds, tok, s.clock())
	sealed, err := s.sealCredentials(t.id, creds)
	if err != nil {
		return nil, err
	}
	// Conditional: a token another process stored since we read is never clobbered.
	res := s.db.WithContext(context.WithoutCancel(ctx)).Model(&models.Connection{}).
		Where("id = ? AND credentials_enc = ?", t.id, t.sealed).
		Updates(map[string]any{"credentials_enc": sealed, "updated_at": s.clock()})
	switch {
	case res.Error != nil:
		s.log.ErrorContext(ctx, "cannot persist refreshed token", "connection", t.id, "err", res.Error)
	case res.RowsAffected == 1:
		t.sealed = sealed
	}
	t.creds = creds
	return tokenOf(creds), nil
}

// reject marks the connection needs_reauth and returns the error to surface.
func (t *tokenSource) reject(ctx context.Context, cause error) error {
	reason := "token refresh failed: " + cause.Error()
	if err := t.s.MarkNeedsReauth(context.WithoutCancel(ctx), t.id, reason); err != nil {
		t.s.log.ErrorContext(ctx, "cannot mark connection needs_reauth", "connection", t.id, "err", err)
	}
	return fmt.Errorf("refresh token of %s: %w: %v", t.id, connectors.ErrUnauthorized, cause)
}

// rejected reports whether a refresh error means the grant is gone (as
// opposed to a provider outage worth retrying).
func rejected(err error) bool {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return false
	}
	if slices.Contains([]string{"invalid_grant", "invalid_client", "unauthorized_client", "invalid_request", "invalid_token"}, re.ErrorCode) {
		return true
	}
	if re.Response == nil {
		return false
	}
	switch re.Response.StatusCode {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		return true
	}
	return false
}

// tokenOf reads the token fields of credentials.
func tokenOf(creds map[string]string) *oauth2.Token {
	tok := &oauth2.Token{AccessToken: creds[CredAccessToken], RefreshToken: creds[CredRefreshToken], TokenType: creds[CredTokenType]}
	if e := creds[CredExpiry]; e != "" {
		tok.Expiry, _ = time.Parse(time.RFC3339Nano, e)
	}
	return tok
}

// setToken writes tok into credentials. The expiry is computed from
// expires_in against the service clock; a response without a new refresh
// token keeps the old one.
func setToken(creds map[string]string, tok *oauth2.Token, now time.Time) {
	creds[CredAccessToken] = tok.AccessToken
	if tok.RefreshToken != "" {
		creds[CredRefreshToken] = tok.RefreshToken
	}
	creds[CredTokenType] = tok.Type()
	expiry := tok.Expiry
	if tok.ExpiresIn > 0 {
		expiry = now.Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	if expiry.IsZero() {
		delete(creds, CredExpiry)
	} else {
		creds[CredExpiry] = expiry.UTC().Format(time.RFC3339Nano)
	}
}

// MarkNeedsReauth sets the connection's status to needs_reauth with reason as
// LastError and publishes connection/reauth_required — once: a connection
// already marked is left as is. A vanished connection is not an error.
func (s *Service) MarkNeedsReauth(ctx context.Context, connectionID, reason string) error {
	c, err := s.byID(ctx, connectionID)
	if models.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	iv, err := s.intervalsOf(ctx, c.AccountID)
	if err != nil {
		return err
	}
	if len(reason) > 1000 {
		reason = strings.ToValidUTF8(reason[:1000], "")
	}
	now := s.clock()
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&models.Connection{}).Where("id = ? AND status <> ?", c.ID, models.ConnectionNeedsReauth).
			Updates(map[string]any{"status": models.ConnectionNeedsReauth, "last_error": reason, "updated_at": now})
		if res.Error != nil {
			return fmt.Errorf("mark %s needs_reauth: %w", c.ID, res.Error)
		}
		if res.RowsAffected == 0 {
			return nil
		}
		c.Status, c.LastError, c.UpdatedAt = models.ConnectionNeedsReauth, reason, now
		ev, err := s.systemEvent(c, iv, models.TopicConnectionReauthRequired, models.UpdateUpdated)
		if err != nil {
			return err
		}
		if err := s.publisher.Publish(ctx, tx, c.AccountID, ev); err != nil {
			return fmt.Errorf("publish %s: %w", models.TopicConnectionReauthRequired, err)
		}
		return nil
	})
}
