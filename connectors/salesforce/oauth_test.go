package salesforce_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/salesforce"
)

// authorize follows the fake's auto-approving authorize redirect and
// returns the callback's query.
func authorize(t *testing.T, authURL string) url.Values {
	t.Helper()
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get(authURL)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, "/oauth/callback", loc.Path)
	return loc.Query()
}

func TestOAuthFlow(t *testing.T) {
	b := setup(t)
	cfg := b.conn.OAuthConfig("https://tributary.example/oauth/callback", nil)
	require.Equal(t, []string{"api", "refresh_token"}, cfg.Scopes)
	verifier := oauth2.GenerateVerifier()
	q := authorize(t, cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier)))
	require.Equal(t, "st4te", q.Get("state"))
	require.NotEmpty(t, q.Get("code"))

	// A wrong PKCE verifier is refused (and burns the code).
	_, err := cfg.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption("wrong"))
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	require.Equal(t, "invalid_grant", re.ErrorCode)

	q = authorize(t, cfg.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier)))
	tok, err := cfg.Exchange(t.Context(), q.Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	require.NotEmpty(t, tok.RefreshToken)
	require.True(t, tok.Expiry.IsZero(), "Salesforce sends no expires_in")

	org, meta, err := b.conn.Identify(t.Context(), tok, nil)
	require.NoError(t, err)
	require.Equal(t, b.fake.DefaultOrg(), org)
	require.Equal(t, b.srv.URL, meta["instance_url"])
	require.Equal(t, b.fake.UserID(org), meta["user_id"])

	// Refresh: a new access token, no new refresh token.
	fresh, err := cfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	require.NoError(t, err)
	require.NotEqual(t, tok.AccessToken, fresh.AccessToken)
	require.Empty(t, fresh.Extra("refresh_token"))
	org2, _, err := b.conn.Identify(t.Context(), fresh, nil)
	require.NoError(t, err)
	require.Equal(t, org, org2)

	// The new token works against the API.
	conn := &connectors.Conn{Metadata: meta, HTTP: cfg.Client(t.Context(), fresh)}
	require.NoError(t, b.conn.ListChanges(t.Context(), conn, connectors.ListRequest{Object: "users"}, func(p connectors.Page) error {
		require.Len(t, p.Records, 1)
		return nil
	}))

	// A refresh token the fake does not know is invalid_grant.
	_, err = cfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: "nope"}).Token()
	require.ErrorAs(t, err, &re)
	require.Equal(t, "invalid_grant", re.ErrorCode)
}

func TestIdentifyDocsExample(t *testing.T) {
	// The fixture's refresh response: org and user from the identity URL.
	tok := (&oauth2.Token{AccessToken: "x"}).WithExtra(map[string]any{
		"id":           "https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P",
		"issued_at":    "1278448832702",
		"instance_url": "https://yourInstance.salesforce.com/",
		"signature":    "0CmxinZir53Yex7nE0TD+zMpvIWYGb/bdJh6XfOH6EQ=",
	})
	c := salesforce.New(connectors.AppConfig{})
	org, meta, err := c.Identify(t.Context(), tok, nil)
	require.NoError(t, err)
	require.Equal(t, "00Dx0000000BV7z", org)
	require.Equal(t, "https://yourInstance.salesforce.com", meta["instance_url"])
	require.Equal(t, "005x00000012Q9P", meta["user_id"])

	// With a client secret, a signature that does not match is refused.
	c = salesforce.New(connectors.AppConfig{ClientSecret: "not-the-secret"})
	_, _, err = c.Identify(t.Context(), tok, nil)
	require.ErrorContains(t, err, "signature")

	for _, bad := range []map[string]any{
		{"id": "https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P"},
		{"instance_url": "https://x.my.salesforce.com"},
		{"instance_url": "https://x.my.salesforce.com", "id": "https://login.salesforce.com/id/nope"},
		{"instance_url": "ftp://x", "id": "https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P"},
	} {
		_, _, err := salesforce.New(connectors.AppConfig{}).Identify(t.Context(), (&oauth2.Token{AccessToken: "x"}).WithExtra(bad), nil)
		require.Error(t, err, "%v", bad)
	}
}

func TestTokenSignature(t *testing.T) {
	sig := salesforce.TokenSignature("secret", "https://login.salesforce.com/id/00D/005", "1278448832702")
	require.True(t, salesforce.ValidTokenSignature("secret", "https://login.salesforce.com/id/00D/005", "1278448832702", sig))
	require.False(t, salesforce.ValidTokenSignature("other", "https://login.salesforce.com/id/00D/005", "1278448832702", sig))
	require.False(t, salesforce.ValidTokenSignature("secret", "https://login.salesforce.com/id/00D/005", "1278448832703", sig))
}
