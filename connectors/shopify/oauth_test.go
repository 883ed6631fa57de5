package shopify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

func TestOAuthConfigRealEndpoints(t *testing.T) {
	k := New(connectors.AppConfig{ClientID: "id", ClientSecret: "sec"})
	cfg := k.OAuthConfig("https://tributary.example/oauth/callback", map[string]string{"shop": "Cool-Shop.myshopify.com"})
	require.NotNil(t, cfg)
	require.Equal(t, "https://cool-shop.myshopify.com/admin/oauth/authorize", cfg.Endpoint.AuthURL)
	require.Equal(t, "https://cool-shop.myshopify.com/admin/oauth/access_token?expiring=1", cfg.Endpoint.TokenURL)
	require.Equal(t, oauth2.AuthStyleInParams, cfg.Endpoint.AuthStyle)
	u, err := url.Parse(cfg.AuthCodeURL("st"))
	require.NoError(t, err)
	require.Equal(t, "read_orders,read_customers,read_products", u.Query().Get("scope"))

	classic := New(connectors.AppConfig{}, WithExpiringTokens(false)).OAuthConfig("r", map[string]string{"shop": "a.myshopify.com"})
	require.Equal(t, "https://a.myshopify.com/admin/oauth/access_token", classic.Endpoint.TokenURL)

	tmpl := New(connectors.AppConfig{AuthURL: "http://fake/{shop}/authorize"}).OAuthConfig("r", map[string]string{"shop": "a.myshopify.com"})
	require.Equal(t, "http://fake/a.myshopify.com/authorize", tmpl.Endpoint.AuthURL)

	for _, bad := range []string{"", "shop", "evil.com", "a.myshopify.com.evil.com", "a.myshopify.com/x", "https://a.myshopify.com", "-a.myshopify.com", "a b.myshopify.com"} {
		require.Nil(t, k.OAuthConfig("r", map[string]string{"shop": bad}), bad)
		_, err := ShopParam(map[string]string{"shop": bad})
		require.Error(t, err, bad)
	}
}

// noRedirect returns the fake's client that stops at redirects.
func noRedirect(b *bundle) *http.Client {
	hc := *b.srv.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &hc
}

func authorize(t *testing.T, b *bundle, cfg *oauth2.Config, opts ...oauth2.AuthCodeOption) url.Values {
	t.Helper()
	resp, err := noRedirect(b).Get(cfg.AuthCodeURL("state-123", opts...))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, "/oauth/callback", loc.Path)
	return loc.Query()
}

func TestOAuthFlow(t *testing.T) {
	b := setup(t)
	const shop = "oauth-shop.myshopify.com"
	cfg := b.conn.OAuthConfig("http://tributary.test/oauth/callback", map[string]string{"shop": shop})
	require.NotNil(t, cfg)
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, b.srv.Client())

	verifier := oauth2.GenerateVerifier()
	q := authorize(t, b, cfg, oauth2.S256ChallengeOption(verifier))
	require.Equal(t, "state-123", q.Get("state"))
	require.Equal(t, shop, q.Get("shop"))
	// The callback carries Shopify's hex hmac over the sorted parameters.
	keys := []string{}
	for k := range q {
		if k != "hmac" {
			keys = append(keys, k+"="+q.Get(k))
		}
	}
	sort.Strings(keys)
	m := hmac.New(sha256.New, []byte("csecret"))
	m.Write([]byte(strings.Join(keys, "&")))
	require.Equal(t, hex.EncodeToString(m.Sum(nil)), q.Get("hmac"))

	_, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption("wrong-verifier-wrong-verifier-wrong-verifier"))
	require.Error(t, err, "PKCE mismatch must fail")

	q = authorize(t, b, cfg, oauth2.S256ChallengeOption(verifier))
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	require.NoError(t, err)
	require.NotEmpty(t, tok.AccessToken)
	require.NotEmpty(t, tok.RefreshToken, "expiring offline token comes with a refresh token")
	require.False(t, tok.Expiry.IsZero())
	_, err = cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	require.Error(t, err, "a code is single use")

	ext, md, err := b.conn.Identify(ctx, tok.WithExtra(map[string]any{"shop": shop}), b.srv.Client())
	require.NoError(t, err)
	require.Equal(t, shop, ext)
	require.Equal(t, shop, md["shop"])

	// Refresh rotates the refresh token.
	old := *tok
	old.Expiry = old.Expiry.Add(-24 * 3600 * 1e9)
	fresh, err := cfg.TokenSource(ctx, &old).Token()
	require.NoError(t, err)
	require.NotEqual(t, tok.AccessToken, fresh.AccessToken)
	_, err = cfg.TokenSource(ctx, &old).Token()
	require.Error(t, err, "a used refresh token is rejected")

	// A connection whose client is an oauth2 client: the connector sends the
	// token as X-Shopify-Access-Token, never as a Bearer.
	var bearer atomic.Bool
	b.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/admin/api/") && r.Header.Get("Authorization") != "" {
			bearer.Store(true)
		}
		b.fake.ServeHTTP(w, r)
	})
	b.fake.Create(shop, "orders", nil)
	c := &connectors.Conn{ExternalID: ext, Metadata: md, HTTP: cfg.Client(ctx, fresh)}
	got := 0
	require.NoError(t, b.conn.ListChanges(t.Context(), c, connectors.ListRequest{Object: models.ObjectOrders}, func(p connectors.Page) error {
		got += len(p.Records)
		return nil
	}))
	require.Equal(t, 1, got)
	require.False(t, bearer.Load())
}

func TestOAuthClassicOfflineToken(t *testing.T) {
	b := setup(t)
	k := New(connectors.AppConfig{ClientID: "cid", ClientSecret: "csecret", BaseURL: b.srv.URL,
		AuthURL: b.srv.URL + "/admin/oauth/authorize", TokenURL: b.srv.URL + "/admin/oauth/access_token"},
		WithExpiringTokens(false), WithHTTPClient(b.srv.Client()))
	cfg := k.OAuthConfig("http://tributary.test/oauth/callback", map[string]string{"shop": "classic.myshopify.com"})
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, b.srv.Client())
	q := authorize(t, b, cfg)
	tok, err := cfg.Exchange(ctx, q.Get("code"))
	require.NoError(t, err)
	require.Empty(t, tok.RefreshToken)
	require.True(t, tok.Expiry.IsZero())
	// With the fake (BaseURL), Identify learns the shop from shop.json.
	ext, md, err := k.Identify(ctx, tok, nil)
	require.NoError(t, err)
	require.Equal(t, "classic.myshopify.com", ext)
	require.Equal(t, "America/New_York", md["timezone"])

	// Against real Shopify the token must name its shop.
	_, _, err = New(connectors.AppConfig{}).Identify(ctx, tok, nil)
	require.Error(t, err)
}

func TestValidateCredentials(t *testing.T) {
	b := setup(t)
	b.fake.AddToken("custom.myshopify.com", "shpat_custom")
	ext, md, err := b.conn.ValidateCredentials(t.Context(), map[string]string{"shop": "custom.myshopify.com", "access_token": "shpat_custom"})
	require.NoError(t, err)
	require.Equal(t, "custom.myshopify.com", ext)
	require.Equal(t, "custom.myshopify.com", md["shop"])

	_, _, err = b.conn.ValidateCredentials(t.Context(), map[string]string{"shop": "custom.myshopify.com", "access_token": "shpat_wrong"})
	require.ErrorIs(t, err, connectors.ErrUnauthorized)
	_, _, err = b.conn.ValidateCredentials(t.Context(), map[string]string{"shop": "custom.example.com", "access_token": "shpat_custom"})
	require.Error(t, err)
	_, _, err = b.conn.ValidateCredentials(t.Context(), map[string]string{"shop": "custom.myshopify.com"})
	require.Error(t, err)
}
