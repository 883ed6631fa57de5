package shopify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"golang.org/x/oauth2"

	"github.com/tributary/tributary/connectors"
)

// shopRE is a myshopify.com shop domain.
var shopRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*\.myshopify\.com$`)

// NormalizeShop validates a shop domain ("<name>.myshopify.com", case
// insensitive) and returns it lower-cased; anything else is an error.
func NormalizeShop(shop string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(shop))
	if len(s) > 255 || !shopRE.MatchString(s) {
		return "", fmt.Errorf("shopify: invalid shop %q: want <name>.myshopify.com", shop)
	}
	return s, nil
}

// endpoint fills "{shop}" in an overridden URL, or returns the shop's own.
func endpoint(override, shop, path string) string {
	if override == "" {
		return "https://" + shop + path
	}
	return strings.ReplaceAll(override, "{shop}", shop)
}

// OAuthConfig returns the per-shop OAuth2 configuration; params["shop"] is
// required ("<name>.myshopify.com"). It returns nil when the shop is missing
// or invalid: check with ShopParam first to report the error. Shopify takes
// client_id/client_secret in the body and a comma-separated scope list; the
// token URL carries expiring=1 to ask for an expiring offline token with a
// refresh token unless WithExpiringTokens(false).
func (k *Connector) OAuthConfig(redirectURL string, params map[string]string) *oauth2.Config {
	shop, err := NormalizeShop(params["shop"])
	if err != nil {
		return nil
	}
	authURL := endpoint(k.cfg.AuthURL, shop, "/admin/oauth/authorize")
	tokenURL := endpoint(k.cfg.TokenURL, shop, "/admin/oauth/access_token")
	if k.cfg.AuthURL != "" && !strings.Contains(k.cfg.AuthURL, "{shop}") {
		authURL = addQuery(authURL, "shop", shop)
	}
	if k.expiring {
		tokenURL = addQuery(tokenURL, "expiring", "1")
	}
	return &oauth2.Config{
		ClientID:     k.cfg.ClientID,
		ClientSecret: k.cfg.ClientSecret,
		RedirectURL:  redirectURL,
		Scopes:       []string{strings.Join(k.scopes(), ",")},
		Endpoint: oauth2.Endpoint{
			AuthURL:   authURL,
			TokenURL:  tokenURL,
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
}

// ShopParam validates the connect session's "shop" parameter.
func ShopParam(params map[string]string) (string, error) { return NormalizeShop(params["shop"]) }

func addQuery(u, k, v string) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + k + "=" + v
}

// shopInfo is the part of GET /admin/api/{version}/shop.json we keep.
type shopInfo struct {
	Shop struct {
		ID              json.Number `json:"id"`
		Name            string      `json:"name"`
		Domain          string      `json:"domain"`
		MyshopifyDomain string      `json:"myshopify_domain"`
		Currency        string      `json:"currency"`
		IANATimezone    string      `json:"iana_timezone"`
		PlanName        string      `json:"plan_name"`
	} `json:"shop"`
}

// identifyShop calls shop.json with token and returns ExternalID + Metadata.
func (k *Connector) identifyShop(ctx context.Context, hc *http.Client, shop, token string) (string, map[string]string, error) {
	c := &connectors.Conn{ExternalID: shop, Metadata: map[string]string{"shop": shop}, Credentials: map[string]string{"access_token": token}, HTTP: hc}
	_, body, err := k.do(ctx, c, http.MethodGet, "shop.json", nil, nil)
	if err != nil {
		return "", nil, fmt.Errorf("shopify identify %s: %w", shop, err)
	}
	var si shopInfo
	if err := json.Unmarshal(body, &si); err != nil {
		return "", nil, fmt.Errorf("shopify identify %s: malformed shop.json: %w", shop, err)
	}
	domain := shop
	if d, err := NormalizeShop(si.Shop.MyshopifyDomain); err == nil {
		domain = d
	}
	if domain == "" {
		return "", nil, fmt.Errorf("shopify identify: no shop domain known")
	}
	md := map[string]string{"shop": domain, "api_version": k.apiVersion}
	for key, v := range map[string]string{"shop_id": si.Shop.ID.String(), "shop_name": si.Shop.Name, "currency": si.Shop.Currency, "timezone": si.Shop.IANATimezone, "plan": si.Shop.PlanName} {
		if v != "" {
			md[key] = v
		}
	}
	return domain, md, nil
}

// Identify learns the shop of a fresh token: ExternalID is the shop domain,
// Metadata["shop"] too. Shopify's token response does not name the shop, so
// the shop comes from tok.Extra("shop") (sync adds the connect session's
// "shop" parameter: tok.WithExtra(map[string]any{"shop": params["shop"]}));
// only with cfg.BaseURL (the fake) may it be learnt from shop.json alone.
func (k *Connector) Identify(ctx context.Context, tok *oauth2.Token, hc *http.Client) (string, map[string]string, error) {
	if tok == nil || tok.AccessToken == "" {
		return "", nil, fmt.Errorf("shopify identify: no access token: %w", connectors.ErrUnauthorized)
	}
	shop := ""
	if s, ok := tok.Extra("shop").(string); ok && s != "" {
		n, err := NormalizeShop(s)
		if err != nil {
			return "", nil, err
		}
		shop = n
	} else if k.cfg.BaseURL == "" {
		return "", nil, fmt.Errorf("shopify identify: the token does not name its shop (pass the session's shop as token extra \"shop\")")
	}
	return k.identifyShop(ctx, hc, shop, tok.AccessToken)
}

// ValidateCredentials connects a shop directly with a custom-app Admin API
// access token: creds "shop" and "access_token" (shpat_…), checked with
// GET /admin/api/{version}/shop.json.
func (k *Connector) ValidateCredentials(ctx context.Context, creds map[string]string) (string, map[string]string, error) {
	shop, err := NormalizeShop(creds["shop"])
	if err != nil {
		return "", nil, err
	}
	if creds["access_token"] == "" {
		return "", nil, fmt.Errorf("shopify: credentials need access_token")
	}
	return k.identifyShop(ctx, nil, shop, creds["access_token"])
}
