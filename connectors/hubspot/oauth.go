package hubspot

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
)

// OAuthConfig returns the authorization-code configuration. HubSpot expects
// client_id and client_secret in the form body of the token request.
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

// tokenInfo is GET /oauth/v1/access-tokens/{token}.
type tokenInfo struct {
	Token     string   `json:"token"`
	User      string   `json:"user"`
	HubDomain string   `json:"hub_domain"`
	Scopes    []string `json:"scopes"`
	HubID     int64    `json:"hub_id"`
	AppID     int64    `json:"app_id"`
	UserID    int64    `json:"user_id"`
	ExpiresIn int      `json:"expires_in"`
	TokenType string   `json:"token_type"`
}

// Identify reads the token's metadata: ExternalID is the portal (hub) id in
// decimal, which webhook notices carry as portalId.
func (c *Connector) Identify(ctx context.Context, tok *oauth2.Token, hc *http.Client) (string, map[string]string, error) {
	if tok == nil || tok.AccessToken == "" {
		return "", nil, fmt.Errorf("hubspot identify: no access token")
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	u := c.baseURL + "/oauth/v1/access-tokens/" + url.PathEscape(tok.AccessToken)
	status, header, data, err := send(ctx, hc, http.MethodGet, u, nil)
	if err != nil {
		return "", nil, fmt.Errorf("hubspot identify: %w", err)
	}
	if status != http.StatusOK {
		return "", nil, fmt.Errorf("hubspot identify: %w", statusError(status, header, data, c.now()))
	}
	var info tokenInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return "", nil, fmt.Errorf("hubspot identify: malformed token info: %w", err)
	}
	if info.HubID == 0 {
		return "", nil, fmt.Errorf("hubspot identify: token info without hub_id")
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
