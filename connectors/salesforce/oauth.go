package salesforce

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// OAuthConfig returns the web-server flow configuration. Salesforce takes the
// client credentials in the form body.
func (c *Connector) OAuthConfig(redirectURL string, _ map[string]string) *oauth2.Config {
	authURL, tokenURL := DefaultAuthURL, DefaultTokenURL
	if c.cfg.AuthURL != "" {
		authURL = c.cfg.AuthURL
	}
	if c.cfg.TokenURL != "" {
		tokenURL = c.cfg.TokenURL
	}
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		RedirectURL:  redirectURL,
		Scopes:       c.scopes(),
		Endpoint: oauth2.Endpoint{
			AuthURL:   authURL,
			TokenURL:  tokenURL,
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
}

// Identify reads the org from the token response: ExternalID is the org id
// of the identity URL (https://login.salesforce.com/id/<orgId>/<userId>) and
// Metadata carries instance_url, the user id and the identity URL. When the
// deployment knows the client secret, the response's signature
// (base64 HMAC-SHA256 of id+issued_at keyed by the secret) is checked.
func (c *Connector) Identify(_ context.Context, tok *oauth2.Token, _ *http.Client) (string, map[string]string, error) {
	if tok == nil {
		return "", nil, errors.New("salesforce identify: no token")
	}
	idURL, _ := tok.Extra("id").(string)
	instanceURL, _ := tok.Extra("instance_url").(string)
	if instanceURL == "" {
		return "", nil, errors.New("salesforce identify: token response has no instance_url")
	}
	if u, err := url.Parse(instanceURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", nil, fmt.Errorf("salesforce identify: bad instance_url %q", instanceURL)
	}
	orgID, userID, err := parseIdentityURL(idURL)
	if err != nil {
		return "", nil, fmt.Errorf("salesforce identify: %w", err)
	}
	if sig, _ := tok.Extra("signature").(string); sig != "" && c.cfg.ClientSecret != "" {
		issuedAt, _ := tok.Extra("issued_at").(string)
		if !ValidTokenSignature(c.cfg.ClientSecret, idURL, issuedAt, sig) {
			return "", nil, errors.New("salesforce identify: token response signature does not match")
		}
	}
	return orgID, map[string]string{
		"instance_url": strings.TrimRight(instanceURL, "/"),
		"user_id":      userID,
		"identity_url": idURL,
	}, nil
}

// parseIdentityURL splits https://login.salesforce.com/id/<orgId>/<userId>.
func parseIdentityURL(raw string) (orgID, userID string, err error) {
	if raw == "" {
		return "", "", errors.New("token response has no id")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("bad identity URL %q: %w", raw, err)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 3 || parts[0] != "id" {
		return "", "", fmt.Errorf("bad identity URL %q", raw)
	}
	orgID, userID = parts[1], parts[2]
	if !isID(orgID, "00D") || !isID(userID, "005") {
		return "", "", fmt.Errorf("bad org or user id in identity URL %q", raw)
	}
	return orgID, userID, nil
}

// isID reports whether s looks like a 15- or 18-character Salesforce id with
// the given key prefix.
func isID(s, prefix string) bool {
	if (len(s) != 15 && len(s) != 18) || !strings.HasPrefix(s, prefix) {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// TokenSignature computes the signature field of a Salesforce token
// response: base64(HMAC-SHA256(key=client secret, msg=id+issued_at)).
func TokenSignature(clientSecret, id, issuedAt string) string {
	m := hmac.New(sha256.New, []byte(clientSecret))
	m.Write([]byte(id + issuedAt))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ValidTokenSignature checks a token response signature in constant time.
func ValidTokenSignature(clientSecret, id, issuedAt, signature string) bool {
	got, err := base64.StdEncoding.DecodeString(signature)
	if err != nil {
		return false
	}
	want, _ := base64.StdEncoding.DecodeString(TokenSignature(clientSecret, id, issuedAt))
	return hmac.Equal(got, want)
}
