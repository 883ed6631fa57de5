package hubspot

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/oauth2"

	"github.com/tributary/tributary/connectors"
)

// OAuthConfig returns the authorization-code configuration. HubSpot's
// 2026-03 token endpoint takes client_id and client_secret in the form body;
// it answers errors in RFC 6749 form (error, error_description), which
// golang.org/x/oauth2 reports as *oauth2.RetrieveError.
func (c *Connector) OAuthConfig(redirectURL string, _ map[string]string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		RedirectURL:  redirectURL,
		Scopes:       c.scopes(),
		Endpoint: oauth2.Endpoint{
			AuthURL:   cmp.Or(c.cfg.AuthURL, DefaultAuthURL),
			TokenURL:  cmp.Or(c.cfg.TokenURL, DefaultTokenURL),
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
}

// tokenInfo is POST /oauth/2026-03/token/introspect's
// PublicAccessTokenInfoResponse (the fields the connector keeps).
type tokenInfo struct {
	Active    bool     `json:"active"`
	User      string   `json:"user"`
	HubDomain string   `json:"hub_domain"`
	Scopes    []string `json:"scopes"`
	HubID     int64    `json:"hub_id"`
	AppID     int64    `json:"app_id"`
	UserID    int64    `json:"user_id"`
	TokenUse  string   `json:"token_use"`
}

// oauthErr is the OAuth API's error body: RFC 6749 error and
// error_description, with HubSpot's older status and message beside them.
type oauthErr struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Status      string `json:"status"`
	Message     string `json:"message"`
}

// postOAuth sends one form-encoded request with the app's client
// credentials to an OAuth endpoint and returns the answer.
func (c *Connector) postOAuth(ctx context.Context, hc *http.Client, path string, form url.Values) (int, []byte, error) {
	form.Set("client_id", c.cfg.ClientID)
	form.Set("client_secret", c.cfg.ClientSecret)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+path, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var oe oauthErr
		_ = json.Unmarshal(data, &oe) // a non-JSON body still reports the status
		code := cmp.Or(oe.Error, oe.Status, http.StatusText(resp.StatusCode))
		msg := cmp.Or(oe.Description, oe.Message)
		if oe.Error == "invalid_client" || resp.StatusCode == http.StatusUnauthorized {
			return resp.StatusCode, data, fmt.Errorf("%w: %s %s: %s", connectors.ErrUnauthorized, path, code, msg)
		}
		return resp.StatusCode, data, &connectors.ProviderError{StatusCode: resp.StatusCode, Code: code,
			Message: path + ": " + msg, Temporary: resp.StatusCode >= 500}
	}
	return resp.StatusCode, data, nil
}

// Identify introspects the fresh access token: ExternalID is the portal
// (hub) id in decimal, which webhook notices carry as portalId.
func (c *Connector) Identify(ctx context.Context, tok *oauth2.Token, hc *http.Client) (string, map[string]string, error) {
	if tok == nil || tok.AccessToken == "" {
		return "", nil, fmt.Errorf("hubspot identify: no access token")
	}
	if hc == nil {
		hc = c.plain
	}
	_, data, err := c.postOAuth(ctx, hc, introspectPath, url.Values{
		"token": {tok.AccessToken}, "token_type_hint": {"access_token"},
	})
	if err != nil {
		return "", nil, fmt.Errorf("hubspot identify: %w", err)
	}
	var info tokenInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return "", nil, fmt.Errorf("hubspot identify: malformed introspection: %w", err)
	}
	if !info.Active {
		return "", nil, fmt.Errorf("hubspot identify: %w: access token is not active", connectors.ErrUnauthorized)
	}
	if info.HubID == 0 {
		return "", nil, fmt.Errorf("hubspot identify: introspection without hub_id")
	}
	meta := map[string]string{
		"hubId":     strconv.FormatInt(info.HubID, 10),
		"hubDomain": info.HubDomain,
		"user":      info.User,
		"scopes":    strings.Join(info.Scopes, " "),
	}
	if info.AppID != 0 {
		meta["appId"] = strconv.FormatInt(info.AppID, 10)
	}
	if info.UserID != 0 {
		meta["userId"] = strconv.FormatInt(info.UserID, 10)
	}
	return meta["hubId"], meta, nil
}

// revoke deletes the connection's refresh token at HubSpot (and with it the
// access tokens issued from it), so a removed connection keeps no access.
func (c *Connector) revoke(ctx context.Context, conn *connectors.Conn) error {
	if conn == nil || conn.Credentials["refresh_token"] == "" {
		return nil
	}
	_, _, err := c.postOAuth(ctx, c.plain, revokePath, url.Values{
		"token": {conn.Credentials["refresh_token"]}, "token_type_hint": {"refresh_token"},
	})
	if err != nil {
		return fmt.Errorf("hubspot revoke refresh token: %w", err)
	}
	return nil
}
