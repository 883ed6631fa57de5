// Package connectors defines what an app adapter is and keeps the registry of
// them. Each app lives in its own subpackage (salesforce, hubspot, shopify,
// sandbox) with a fake of its provider under fake/. Connectors talk HTTP to
// their provider and normalize into models; they never touch storage, sync,
// forwarding or gin.
//
// The capture capabilities are separate small interfaces; sync finds the ones
// an app supports by type assertion.
package connectors

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/oauth2"

	"github.com/tributary/tributary/models"
)

// Capture modes.
const (
	CaptureWebhook = "webhook"
	CapturePolling = "polling"
)

// Auth kinds.
const (
	AuthOAuth2      = "oauth2"
	AuthCredentials = "credentials"
	AuthNone        = "none"
)

// Info describes an app for the registry and GET /v1/apps.
type Info struct {
	Name        string   `json:"name"`        // "hubspot"
	DisplayName string   `json:"displayName"` // "HubSpot"
	Category    string   `json:"category"`    // "crm", "commerce", or "crm,commerce"
	Objects     []string `json:"objects"`     // unified objects it captures
	Topics      []string `json:"topics"`
	Capture     []string `json:"capture"` // CaptureWebhook and/or CapturePolling
	Auth        string   `json:"auth"`
	Scopes      []string `json:"scopes,omitempty"`
}

// AppConfig is the deployment's configuration of one app (from config.Config.Apps).
type AppConfig struct {
	ClientID     string
	ClientSecret string
	// WebhookSecret signs inbound webhooks when it differs from ClientSecret.
	WebhookSecret string
	// BaseURL overrides the provider's API host (tests and fakes).
	BaseURL string
	// AuthURL and TokenURL override the OAuth2 endpoints (tests and fakes).
	AuthURL  string
	TokenURL string
	Scopes   []string
}

// Conn is one connection as a connector sees it: decrypted credentials and an
// HTTP client that already authenticates (OAuth2 tokens refreshed and persisted
// by sync).
type Conn struct {
	ID string
	// ExternalID is the provider-side account (HubSpot portalId, shop domain, …)
	// used to route inbound webhooks.
	ExternalID  string
	Credentials map[string]string
	// Metadata holds provider facts learnt at connect time (e.g. instance_url).
	Metadata map[string]string
	// HTTP authenticates every request it sends.
	HTTP *http.Client
	// Refresh forces a token refresh (e.g. after Salesforce INVALID_SESSION_ID);
	// nil for apps without tokens.
	Refresh func(ctx context.Context) error
}

// Connector is what every app implements.
type Connector interface {
	Info() Info
}

// Normalizer turns a provider record (raw JSON) of one unified object into a Record.
type Normalizer interface {
	Normalize(object string, raw []byte) (models.Record, error)
}

// Page is one page of a change listing.
type Page struct {
	Records []models.Record
	// Cursor is where the next listing resumes once this page is stored.
	// Reconcile stores it in the same transaction as the page's records.
	Cursor string
}

// ListRequest asks for changes of one object.
type ListRequest struct {
	Object string
	// Cursor is the value of the last stored Page.Cursor ("" on a first sync).
	// With FullScan it is "" to start a scan, or the last stored page cursor
	// of an interrupted scan of this object: a connector that can go on from
	// it does; one that cannot starts the scan over (both are correct).
	Cursor string
	// FullScan asks for every live record regardless of the cursor; sync
	// marks records not seen by a completed full scan as deleted.
	FullScan bool
	// PageSize is a hint.
	PageSize int
}

// ChangeLister captures by polling: it streams changed records page by page.
// fn is called for each page in order; an error from fn stops the listing.
// A page is handed over: sync may still be storing it while the lister
// fetches the next one, so a lister must not reuse a page's slices.
type ChangeLister interface {
	ListChanges(ctx context.Context, c *Conn, req ListRequest, fn func(Page) error) error
}

// Deletion is one record the provider reports deleted.
type Deletion struct {
	RemoteID  string
	DeletedAt time.Time
}

// DeletionLister reports deletions in a time window (Salesforce getDeleted,
// HubSpot archived). It returns ErrWindowExpired when the window starts
// earlier than the provider keeps deletions; sync then runs a full scan.
type DeletionLister interface {
	ListDeleted(ctx context.Context, c *Conn, object string, since, until time.Time) ([]Deletion, error)
}

// CoveredDeletionLister is a DeletionLister that may cover less than the
// window asked: Salesforce getDeleted vouches only up to latestDateCovered;
// HubSpot skips its archived listing when live counts show no deletion.
// Deletions dated after covered may still appear, so the next window must
// start at covered rather than at until (a zero covered means until; one
// not after since means nothing was covered and the window keeps its start).
// changeCursor is the object's last stored Page.Cursor, which a lister may
// have used to record what it needs (HubSpot: the live count).
type CoveredDeletionLister interface {
	ListDeletedCovered(ctx context.Context, c *Conn, object string, since, until time.Time, changeCursor string) (dels []Deletion, covered time.Time, err error)
}

// VersionedApp is implemented by apps pinned to a provider API version with
// a published end of support: the engine warns at start once it has passed.
type VersionedApp interface {
	// APIVersionSupport returns the pinned version and when the provider
	// stops supporting it.
	APIVersionSupport() (version string, endOfSupport time.Time)
}

// InboundRequest is a native webhook request exactly as received.
type InboundRequest struct {
	Method string
	// URL is the full URL the provider called (scheme, host, path, query).
	URL        string
	Header     http.Header
	Body       []byte
	ReceivedAt time.Time
}

// Notice is one change announced by a native webhook.
type Notice struct {
	// EventID is the provider's id of the delivery or event, for dedup.
	EventID string
	// ExternalID routes the notice to a connection (Conn.ExternalID).
	ExternalID string
	Object     string
	RemoteID   string
	Deleted    bool
	OccurredAt time.Time
	// Record is the full normalized record when the notice carries it;
	// nil for thin notices, which sync fetches with a Fetcher.
	Record *models.Record
	// ConfirmDeletion asks sync to check with the provider (a Fetcher) that
	// a Deleted notice's record is really gone before applying it: set by
	// connectors whose webhook signature does not cover what says "deleted"
	// (Shopify's topic header is outside its HMAC, so a captured update body
	// replayed under a delete topic still verifies).
	ConfirmDeletion bool
}

// WebhookReceiver verifies and parses native webhooks. Verify must be called
// on the raw request before anything is stored.
type WebhookReceiver interface {
	VerifyWebhook(r *InboundRequest) error
	ParseWebhook(r *InboundRequest) ([]Notice, error)
}

// WebhookKeyer is optional for a WebhookReceiver: the notices of a verified
// request with their identity only (EventID, ExternalID, Object, RemoteID,
// Deleted; no Record), read without normalizing the body. The inbox needs
// only these to store a request (dedup and ordering keys) and acknowledge
// it; ParseWebhook still runs when the stored item is processed. The
// identity must equal ParseWebhook's.
type WebhookKeyer interface {
	WebhookKeys(r *InboundRequest) ([]Notice, error)
}

// Fetcher reads full records by id (batch read) for thin notices.
type Fetcher interface {
	FetchRecords(ctx context.Context, c *Conn, object string, remoteIDs []string) ([]models.Record, error)
}

// Subscriber manages the provider-side webhook subscription of a connection.
type Subscriber interface {
	// Subscribe is called when a connection is created; callbackURL is
	// Tributary's /inbound/{app}. It returns metadata to keep (subscription ids).
	Subscribe(ctx context.Context, c *Conn, callbackURL string) (map[string]string, error)
	// Unsubscribe is called when the connection is deleted.
	Unsubscribe(ctx context.Context, c *Conn) error
}

// OAuthApp is implemented by apps connected through an OAuth2 flow.
type OAuthApp interface {
	// OAuthConfig returns the oauth2 configuration for redirectURL. params
	// are the connect session's extra parameters (e.g. Shopify's "shop", whose
	// endpoints are per shop).
	OAuthConfig(redirectURL string, params map[string]string) *oauth2.Config
	// Identify learns the connection's ExternalID and Metadata from a fresh
	// token (HubSpot token info, Salesforce instance_url, …).
	Identify(ctx context.Context, tok *oauth2.Token, hc *http.Client) (externalID string, metadata map[string]string, err error)
}

// CredentialsApp is implemented by apps connected with credentials in the
// request body; it validates them and learns the ExternalID.
type CredentialsApp interface {
	ValidateCredentials(ctx context.Context, creds map[string]string) (externalID string, metadata map[string]string, err error)
}

// Errors connectors return so that sync can act on them.
var (
	// ErrWindowExpired: the deletion window starts before the provider's retention.
	ErrWindowExpired = errors.New("deletion window expired")
	// ErrUnauthorized: credentials rejected even after a refresh → needs_reauth.
	ErrUnauthorized = errors.New("provider rejected credentials")
	// ErrBadSignature: an inbound webhook's signature is missing, invalid or stale.
	ErrBadSignature = errors.New("invalid webhook signature")
	// ErrUnsupportedObject: the app does not have that unified object.
	ErrUnsupportedObject = errors.New("unsupported object")
)

// RateLimitedError reports a provider 429 (or similar); sync keeps the cursor
// and resumes after RetryAfter.
type RateLimitedError struct {
	RetryAfter time.Duration
	Reason     string
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("provider rate limited (%s), retry after %s", e.Reason, e.RetryAfter)
}

// ProviderError is a provider response that is neither success nor one of the
// cases above (5xx, malformed page, …). Temporary ones are retried later with
// the cursor kept.
type ProviderError struct {
	StatusCode int
	Code       string
	Message    string
	Temporary  bool
}

func (e *ProviderError) Error() string {
	return fmt.Sprintf("provider error %d %s: %s", e.StatusCode, e.Code, e.Message)
}
