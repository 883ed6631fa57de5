// Package salesforce is Tributary's Salesforce connector: OAuth2 web-server
// flow against login.salesforce.com, polling through the REST query resource
// (SOQL on SystemModstamp, nextRecordsUrl paging) and the getDeleted resource,
// and normalization of Account, Contact, Lead, Opportunity, OpportunityStage,
// Task, Note and User into the unified CRM model. Salesforce has no native
// webhooks for this use, so capture is polling only.
//
// The package talks HTTP to Salesforce (or to its fake in salesforce/fake)
// and nothing else: it never touches storage, sync, forwarding or gin.
package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// Provider facts.
const (
	// Name is the app name in the registry and in /inbound and topics.
	Name = "salesforce"
	// APIVersion is the REST API version every call uses.
	APIVersion = "v60.0"
	// DefaultAuthURL and DefaultTokenURL are the production login endpoints.
	DefaultAuthURL  = "https://login.salesforce.com/services/oauth2/authorize"
	DefaultTokenURL = "https://login.salesforce.com/services/oauth2/token"
	// Lookback is subtracted from the cursor on every incremental poll so
	// rows sharing a timestamp across pages and rows committed late are
	// re-read (DESIGN.md "Cursors overlap").
	Lookback = 5 * time.Minute
	// DeletedRetention is how far back getDeleted answers (15 days).
	DeletedRetention = 15 * 24 * time.Hour
	// maxBodyBytes caps how much of one response is read.
	maxBodyBytes = 64 << 20
)

// DefaultScopes are requested when the deployment configures none: REST API
// access and a refresh token.
var DefaultScopes = []string{"api", "refresh_token"}

// Connector is the Salesforce app. It is safe for concurrent use.
type Connector struct {
	cfg connectors.AppConfig
	now func() time.Time
}

// Option configures a Connector.
type Option func(*Connector)

// WithClock injects the clock used for deletion windows.
func WithClock(now func() time.Time) Option {
	return func(c *Connector) { c.now = now }
}

// New builds the connector. cfg.BaseURL, AuthURL and TokenURL point it at a
// fake; left empty it talks to login.salesforce.com and the org's instance_url.
func New(cfg connectors.AppConfig, opts ...Option) *Connector {
	c := &Connector{cfg: cfg, now: time.Now}
	for _, o := range opts {
		o(c)
	}
	return c
}

var (
	_ connectors.Connector             = (*Connector)(nil)
	_ connectors.ChangeLister          = (*Connector)(nil)
	_ connectors.DeletionLister        = (*Connector)(nil)
	_ connectors.CoveredDeletionLister = (*Connector)(nil)
	_ connectors.Normalizer            = (*Connector)(nil)
	_ connectors.OAuthApp              = (*Connector)(nil)
)

// Info describes the app.
func (c *Connector) Info() connectors.Info {
	objects := make([]string, 0, len(objectSpecs))
	topics := make([]string, 0, len(objectSpecs))
	for _, s := range objectSpecs {
		objects = append(objects, s.Unified)
		topics = append(topics, models.TopicFor(s.Unified))
	}
	return connectors.Info{
		Name:        Name,
		DisplayName: "Salesforce",
		Category:    models.CategoryCRM,
		Objects:     objects,
		Topics:      topics,
		Capture:     []string{connectors.CapturePolling},
		Auth:        connectors.AuthOAuth2,
		Scopes:      c.scopes(),
	}
}

func (c *Connector) scopes() []string {
	if len(c.cfg.Scopes) > 0 {
		return c.cfg.Scopes
	}
	return DefaultScopes
}

// baseURL is where API calls of conn go: cfg.BaseURL when set (fakes),
// otherwise the org's instance_url learnt by Identify.
func (c *Connector) baseURL(conn *connectors.Conn) (string, error) {
	base := c.cfg.BaseURL
	if base == "" && conn != nil {
		base = conn.Metadata["instance_url"]
	}
	if base == "" {
		return "", errors.New("salesforce: connection has no instance_url")
	}
	return strings.TrimRight(base, "/"), nil
}

// apiError is one element of a Salesforce REST error body, which is a JSON
// array: [{"message": "...", "errorCode": "...", "fields": [...]}].
type apiError struct {
	Message   string   `json:"message"`
	ErrorCode string   `json:"errorCode"`
	Fields    []string `json:"fields,omitempty"`
}

// decodeErrors parses a REST error body. A body that is not the documented
// array yields a single element carrying the (capped) text.
func decodeErrors(body []byte) []apiError {
	var errs []apiError
	if err := json.Unmarshal(body, &errs); err == nil && len(errs) > 0 {
		return errs
	}
	// Some gateways answer a single object instead of an array.
	var one apiError
	if err := json.Unmarshal(body, &one); err == nil && one.ErrorCode != "" {
		return []apiError{one}
	}
	msg := string(body)
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return []apiError{{Message: msg}}
}

// classify maps a non-2xx response to the connectors error contract.
func classify(status int, header http.Header, body []byte) error {
	errs := decodeErrors(body)
	first := errs[0]
	switch {
	case status == http.StatusUnauthorized:
		return fmt.Errorf("%w: %s %s", connectors.ErrUnauthorized, first.ErrorCode, first.Message)
	case status == http.StatusTooManyRequests || first.ErrorCode == "REQUEST_LIMIT_EXCEEDED":
		return &connectors.RateLimitedError{RetryAfter: retryAfter(header, first), Reason: strings.TrimSpace(first.ErrorCode + " " + first.Message)}
	case status >= 500:
		return &connectors.ProviderError{StatusCode: status, Code: first.ErrorCode, Message: first.Message, Temporary: true}
	default:
		return &connectors.ProviderError{StatusCode: status, Code: first.ErrorCode, Message: first.Message}
	}
}

// retryAfter honours a Retry-After header; without one, a daily limit
// (TotalRequests) waits an hour and a concurrency limit a minute.
func retryAfter(h http.Header, e apiError) time.Duration {
	if v := h.Get("Retry-After"); v != "" {
		if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
			return time.Duration(s) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			if d := time.Until(t); d > 0 {
				return d
			}
		}
	}
	if strings.Contains(e.Message, "TotalRequests") {
		return time.Hour
	}
	return time.Minute
}

// get sends an authenticated GET of path (absolute path on the instance,
// with query) and returns the body of a 2xx answer. On 401 (Salesforce's
// INVALID_SESSION_ID) it refreshes the token once through conn.Refresh and
// retries; a second 401 is connectors.ErrUnauthorized.
func (c *Connector) get(ctx context.Context, conn *connectors.Conn, path string, header http.Header) ([]byte, error) {
	base, err := c.baseURL(conn)
	if err != nil {
		return nil, err
	}
	if conn.HTTP == nil {
		return nil, errors.New("salesforce: connection has no HTTP client")
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return nil, fmt.Errorf("build request: %w", err)
		}
		req.Header.Set("Accept", "application/json")
		for k, v := range header {
			req.Header[k] = v
		}
		resp, err := conn.HTTP.Do(req)
		if err != nil {
			return nil, c.transportError(err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
		resp.Body.Close()
		if err != nil {
			return nil, &connectors.ProviderError{StatusCode: resp.StatusCode, Code: "READ_FAILED", Message: err.Error(), Temporary: true}
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return body, nil
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 && conn.Refresh != nil {
			if rerr := conn.Refresh(ctx); rerr != nil {
				return nil, refreshError(rerr)
			}
			continue
		}
		return nil, classify(resp.StatusCode, resp.Header, body)
	}
}

// transportError keeps ErrUnauthorized from a token source (the oauth2
// transport fails before sending when a refresh is rejected) and marks the
// rest temporary.
func (c *Connector) transportError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return refreshError(err)
	}
	var rl *connectors.RateLimitedError
	if errors.As(err, &rl) { // the request was not sent: its rate budget is spent
		return rl
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &connectors.ProviderError{Code: "TRANSPORT", Message: err.Error(), Temporary: true}
}

// refreshError: a token endpoint that answers 4xx (invalid_grant: refresh
// token revoked or expired) means the connection needs re-authorization;
// anything else may pass.
func refreshError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode >= 400 && re.Response.StatusCode < 500 {
		return fmt.Errorf("refresh token: %w: %w", connectors.ErrUnauthorized, err)
	}
	if errors.Is(err, connectors.ErrUnauthorized) {
		return fmt.Errorf("refresh token: %w", err)
	}
	return &connectors.ProviderError{Code: "REFRESH_FAILED", Message: err.Error(), Temporary: true}
}
