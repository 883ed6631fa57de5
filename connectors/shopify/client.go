// Package shopify is the Tributary connector for Shopify shops (category
// commerce): orders, customers and products captured by native webhooks
// (X-Shopify-Hmac-Sha256) and by polling the REST Admin API with
// updated_at_min and Link-header cursor paging. It owns the Shopify wire
// format and its normalization into the unified model; it never touches
// storage, sync, forwarding or gin. The provider fake lives in fake/.
package shopify

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// Name is the app name in the registry and in /inbound/shopify.
const Name = "shopify"

// DefaultAPIVersion is the Admin API version the connector speaks: the
// stable version released 2026-10-01, supported by Shopify until at least
// 2027-10-01 (each stable version is supported for a minimum of 12 months
// after its release; see SupportEnds).
const DefaultAPIVersion = "2026-10"

// SupportEnds is when Shopify's support for a stable API version
// ("YYYY-MM", released on the first of that month) ends at the earliest:
// twelve months after its release.
func SupportEnds(version string) (time.Time, error) {
	t, err := time.Parse("2006-01", version)
	if err != nil {
		return time.Time{}, fmt.Errorf("shopify: %q is not a stable API version (YYYY-MM)", version)
	}
	return t.AddDate(1, 0, 0), nil
}

// APIVersionSupport implements connectors.VersionedApp: the pinned version
// and the end of its support window (zero for "unstable" or a malformed
// version).
func (k *Connector) APIVersionSupport() (string, time.Time) {
	end, _ := SupportEnds(k.apiVersion)
	return k.apiVersion, end
}

// Lookback is how far before the stored cursor a poll starts, so rows sharing
// a timestamp across pages and rows committed late are not lost.
const Lookback = 5 * time.Minute

// Page sizes of the REST Admin API (limit: default 50, max 250).
const (
	defaultPageSize = 250
	maxPageSize     = 250
)

// maxBody caps a provider response read into memory.
const maxBody = 32 << 20

// DefaultScopes are the access scopes the connector asks for.
var DefaultScopes = []string{"read_orders", "read_customers", "read_products"}

// Connector is the Shopify app. It is safe for concurrent use.
type Connector struct {
	cfg        connectors.AppConfig
	apiVersion string
	now        func() time.Time
	expiring   bool
	httpClient *http.Client
}

// Option configures a Connector.
type Option func(*Connector)

// WithClock injects the clock (used where a webhook carries no time).
func WithClock(now func() time.Time) Option { return func(c *Connector) { c.now = now } }

// WithAPIVersion overrides DefaultAPIVersion (e.g. "2025-04").
func WithAPIVersion(v string) Option { return func(c *Connector) { c.apiVersion = v } }

// WithExpiringTokens chooses whether the OAuth code exchange asks for an
// expiring offline token with a refresh token (expiring=1, the default) or a
// classic non-expiring offline token.
func WithExpiringTokens(on bool) Option { return func(c *Connector) { c.expiring = on } }

// WithHTTPClient sets the client used where no connection client exists
// (ValidateCredentials, Identify without a client).
func WithHTTPClient(hc *http.Client) Option { return func(c *Connector) { c.httpClient = hc } }

// New builds the connector. cfg.BaseURL (scheme://host[:port], no path)
// replaces https://{shop} for every API call, cfg.AuthURL/TokenURL replace
// the per-shop OAuth endpoints (a "{shop}" in them is replaced by the shop).
func New(cfg connectors.AppConfig, opts ...Option) *Connector {
	c := &Connector{cfg: cfg, apiVersion: DefaultAPIVersion, now: time.Now, expiring: true}
	for _, o := range opts {
		o(c)
	}
	c.apiVersion = cmp.Or(c.apiVersion, DefaultAPIVersion)
	if c.httpClient == nil {
		c.httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// Info describes the app.
func (k *Connector) Info() connectors.Info {
	objs := []string{models.ObjectOrders, models.ObjectCustomers, models.ObjectProducts}
	topics := make([]string, 0, len(objs))
	for _, o := range objs {
		topics = append(topics, models.TopicFor(o))
	}
	return connectors.Info{
		Name:        Name,
		DisplayName: "Shopify",
		Category:    models.CategoryCommerce,
		Objects:     objs,
		Topics:      topics,
		Capture:     []string{connectors.CaptureWebhook, connectors.CapturePolling},
		Auth:        connectors.AuthOAuth2,
		Scopes:      k.scopes(),
	}
}

func (k *Connector) scopes() []string {
	if len(k.cfg.Scopes) > 0 {
		return k.cfg.Scopes
	}
	return DefaultScopes
}

// APIVersion returns the REST Admin API version in use.
func (k *Connector) APIVersion() string { return k.apiVersion }

// resourcePath maps a unified object to its REST resource.
var resourcePath = map[string]string{
	models.ObjectOrders:    "orders",
	models.ObjectCustomers: "customers",
	models.ObjectProducts:  "products",
}

// shopOf returns the shop domain of a connection.
func shopOf(c *connectors.Conn) string {
	if c == nil {
		return ""
	}
	return cmp.Or(c.Metadata["shop"], c.Credentials["shop"], c.ExternalID)
}

// apiBase returns "scheme://host/admin/api/{version}/" for shop.
func (k *Connector) apiBase(shop string) (string, error) {
	if k.cfg.BaseURL != "" {
		return strings.TrimRight(k.cfg.BaseURL, "/") + "/admin/api/" + k.apiVersion + "/", nil
	}
	s, err := NormalizeShop(shop)
	if err != nil {
		return "", err
	}
	return "https://" + s + "/admin/api/" + k.apiVersion + "/", nil
}

// apiError is a Shopify error body: {"errors": "..."} or {"errors": {...}}.
type apiError struct {
	Errors json.RawMessage `json:"errors"`
}

func errorMessage(body []byte) string {
	var e apiError
	if json.Unmarshal(body, &e) == nil && len(e.Errors) > 0 {
		var s string
		if json.Unmarshal(e.Errors, &s) == nil {
			return s
		}
		return string(e.Errors)
	}
	if len(body) > 200 {
		body = body[:200]
	}
	return strings.TrimSpace(string(body))
}

// checkResponse maps a non-2xx response to the connector errors.
func checkResponse(resp *http.Response, body []byte) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := errorMessage(body)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return &connectors.RateLimitedError{
			RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After")),
			Reason:     strings.TrimSpace("shopify 429 " + resp.Header.Get("X-Shopify-Shop-Api-Call-Limit")),
		}
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("shopify 401 %s: %w", msg, connectors.ErrUnauthorized)
	case resp.StatusCode >= 500:
		return &connectors.ProviderError{StatusCode: resp.StatusCode, Code: http.StatusText(resp.StatusCode), Message: msg, Temporary: true}
	default:
		return &connectors.ProviderError{StatusCode: resp.StatusCode, Code: http.StatusText(resp.StatusCode), Message: msg}
	}
}

// parseRetryAfter reads Shopify's Retry-After (seconds, possibly fractional
// such as "2.0"); it falls back to 2 s, Shopify's REST leak rate window.
func parseRetryAfter(v string) time.Duration {
	if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f >= 0 && f < 86400 {
		return time.Duration(f * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 2 * time.Second
}

// tokenOf returns the access token for c and the client to send with. A
// connection client whose transport is an *oauth2.Transport is unwrapped: its
// token source gives the (refreshed) token, sent as X-Shopify-Access-Token
// through the base transport, never as a Bearer header.
func (k *Connector) tokenOf(c *connectors.Conn) (string, *http.Client, error) {
	hc := k.httpClient
	if c.HTTP != nil {
		hc = c.HTTP
		if tr, ok := c.HTTP.Transport.(*oauth2.Transport); ok && tr.Source != nil {
			tok, err := tr.Source.Token()
			if err != nil {
				return "", nil, fmt.Errorf("shopify token: %w: %v", connectors.ErrUnauthorized, err)
			}
			base := tr.Base
			if base == nil {
				base = http.DefaultTransport
			}
			return tok.AccessToken, &http.Client{Transport: base, Timeout: c.HTTP.Timeout, CheckRedirect: c.HTTP.CheckRedirect, Jar: c.HTTP.Jar}, nil
		}
	}
	if t := c.Credentials["access_token"]; t != "" {
		return t, hc, nil
	}
	return "", nil, fmt.Errorf("shopify: connection has no access_token: %w", connectors.ErrUnauthorized)
}

// do sends one API request for c (method, path relative to the API base or
// an absolute URL on it, optional JSON body) and returns the response headers
// and body of a 2xx. A 401 triggers one c.Refresh and a retry.
func (k *Connector) do(ctx context.Context, c *connectors.Conn, method, path string, query url.Values, body any) (http.Header, []byte, error) {
	base, err := k.apiBase(shopOf(c))
	if err != nil {
		return nil, nil, err
	}
	u := base + strings.TrimLeft(path, "/")
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var payload []byte
	if body != nil {
		if payload, err = json.Marshal(body); err != nil {
			return nil, nil, err
		}
	}
	refreshed := false
	for {
		tok, hc, err := k.tokenOf(c)
		if err != nil {
			return nil, nil, err
		}
		h, b, err := send(ctx, hc, method, u, tok, payload)
		if err != nil && errors.Is(err, connectors.ErrUnauthorized) && !refreshed && c.Refresh != nil {
			refreshed = true
			if rerr := c.Refresh(ctx); rerr != nil {
				return nil, nil, fmt.Errorf("refresh after 401: %w (%v)", connectors.ErrUnauthorized, rerr)
			}
			continue
		}
		return h, b, err
	}
}

// send performs one HTTP exchange with the X-Shopify-Access-Token header.
func send(ctx context.Context, hc *http.Client, method, u, token string, payload []byte) (http.Header, []byte, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Shopify-Access-Token", token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		var rl *connectors.RateLimitedError
		if errors.As(err, &rl) { // not sent: its rate budget is spent
			return nil, nil, rl
		}
		return nil, nil, &connectors.ProviderError{Code: "transport", Message: err.Error(), Temporary: true}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, nil, &connectors.ProviderError{StatusCode: resp.StatusCode, Code: "read", Message: err.Error(), Temporary: true}
	}
	if err := checkResponse(resp, b); err != nil {
		return resp.Header, b, err
	}
	return resp.Header, b, nil
}
