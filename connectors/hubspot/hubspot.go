// Package hubspot is Tributary's HubSpot connector: it captures CRM changes
// through HubSpot's native webhooks (v3-signed arrays of thin notices, fetched
// with the CRM v3 batch read) and by polling the CRM v3 search API on the
// last-modified property, lists archived records as deletions, and normalizes
// contacts, companies, deals, deal pipeline stages, notes, tasks and owners
// into the unified model.
//
// It owns only the HubSpot wire format. It never touches storage, sync,
// forwarding or gin; the provider fake lives in the fake subpackage.
package hubspot

import (
	"cmp"
	"net/http"
	"strings"
	"time"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// Provider endpoints used when AppConfig does not override them.
const (
	DefaultBaseURL  = "https://api.hubapi.com"
	DefaultAuthURL  = "https://app.hubspot.com/oauth/authorize"
	DefaultTokenURL = "https://api.hubapi.com" + tokenPath
)

// OAuth API version 2026-03 (HubSpot's date-versioned OAuth API; the v1
// endpoints are retired on 2027-02-16). Paths as in HubSpot's published spec
// PublicApiSpecs/Auth/Oauth/Rollouts/279897/2026-03/oauth.json.
const (
	tokenPath      = "/oauth/2026-03/token"
	introspectPath = "/oauth/2026-03/token/introspect"
	revokePath     = "/oauth/2026-03/token/revoke"
)

// Provider facts honoured by the connector.
const (
	// lookback is subtracted from a cursor before searching, so rows that
	// share a timestamp across a page boundary or are indexed late are re-read.
	lookback = 5 * time.Minute
	// searchMaxLimit is the CRM search API's largest page.
	searchMaxLimit = 200
	// searchResultCap is the most results one search query pages through
	// (after+limit beyond it is refused); the connector restarts the search
	// from the last modification time it saw.
	searchResultCap = 10000
	// listMaxLimit is the basic list endpoint's largest page.
	listMaxLimit = 100
	// ownersMaxLimit is the owners endpoint's largest page.
	ownersMaxLimit = 500
	// batchReadMax is the batch read endpoint's largest input.
	batchReadMax = 100
	// archiveRetention is how long HubSpot keeps archived (deleted) CRM
	// records restorable and listable with archived=true.
	archiveRetention = 90 * 24 * time.Hour
	// archiveEvery is how old the deletion window may grow before the
	// archived listing is read even though the live counts show no deletion.
	archiveEvery = 24 * time.Hour
	// signatureWindow is how far a webhook's X-HubSpot-Request-Timestamp may
	// be from now.
	signatureWindow = 5 * time.Minute
)

// DefaultScopes are requested when AppConfig.Scopes is empty. Notes and
// tasks are readable with the scopes of the objects they hang off; pipelines
// with crm.objects.deals.read.
var DefaultScopes = []string{
	"oauth",
	"crm.objects.contacts.read",
	"crm.objects.companies.read",
	"crm.objects.deals.read",
	"crm.objects.owners.read",
}

// crmObject describes one HubSpot CRM object type the connector maps.
type crmObject struct {
	// unified is the unified object name.
	unified string
	// path is the CRM v3 object type in URLs (/crm/v3/objects/{path}).
	path string
	// typeID is HubSpot's objectTypeId (as in generic object.* webhooks).
	typeID string
	// webhookPrefix is the legacy subscriptionType prefix ("contact"), or ""
	// when only generic object.* notices exist.
	webhookPrefix string
	// modified is the last-modified property searched on: contacts use
	// lastmodifieddate, every other object hs_lastmodifieddate.
	modified string
	// created is the creation property (createdate, or hs_createdate for
	// engagements), used to count records created since a time.
	created string
	// properties are requested on every read.
	properties []string
	// associations are the object types whose associated ids fill unified
	// links (read with the associations v4 batch read).
	associations []string
}

// crmObjects are the CRM objects read through /crm/v3/objects.
var crmObjects = []crmObject{
	{
		unified: models.ObjectContacts, path: "contacts", typeID: "0-1", webhookPrefix: "contact",
		modified: "lastmodifieddate", created: "createdate",
		properties: []string{"firstname", "lastname", "email", "phone", "jobtitle", "associatedcompanyid",
			"hubspot_owner_id", "address", "city", "state", "zip", "country", "createdate", "lastmodifieddate"},
	},
	{
		unified: models.ObjectAccounts, path: "companies", typeID: "0-2", webhookPrefix: "company",
		modified: "hs_lastmodifieddate", created: "createdate",
		properties: []string{"name", "domain", "website", "industry", "phone", "numberofemployees", "description",
			"hubspot_owner_id", "address", "city", "state", "zip", "country", "createdate", "hs_lastmodifieddate"},
	},
	{
		unified: models.ObjectOpportunities, path: "deals", typeID: "0-3", webhookPrefix: "deal",
		modified: "hs_lastmodifieddate", created: "createdate",
		properties: []string{"dealname", "amount", "deal_currency_code", "dealstage", "pipeline",
			"hs_deal_stage_probability", "closedate", "hs_is_closed", "hs_is_closed_won", "hubspot_owner_id",
			"createdate", "hs_lastmodifieddate"},
		associations: []string{"companies"},
	},
	{
		unified: models.ObjectNotes, path: "notes", typeID: "0-46",
		modified: "hs_lastmodifieddate", created: "hs_createdate",
		properties:   []string{"hs_note_body", "hs_timestamp", "hubspot_owner_id", "hs_createdate", "hs_lastmodifieddate"},
		associations: []string{"contacts", "companies", "deals"},
	},
	{
		unified: models.ObjectTasks, path: "tasks", typeID: "0-27",
		modified: "hs_lastmodifieddate", created: "hs_createdate",
		properties: []string{"hs_task_subject", "hs_task_body", "hs_task_status", "hs_task_priority", "hs_timestamp",
			"hubspot_owner_id", "hs_createdate", "hs_lastmodifieddate"},
		associations: []string{"contacts", "companies", "deals"},
	},
}

// objectTypeIDs maps generic object.* webhook objectTypeIds to unified
// objects. 0-5 (tickets), 0-7 (products), 0-8 (line items) and others are
// not captured and are skipped.
var objectTypeIDs = map[string]string{
	"0-1":  models.ObjectContacts,
	"0-2":  models.ObjectAccounts,
	"0-3":  models.ObjectOpportunities,
	"0-27": models.ObjectTasks,
	"0-46": models.ObjectNotes,
}

// webhookObjects are the unified objects with native webhook notices
// (legacy contact.*, company.*, deal.* subscriptions).
var webhookObjects = []string{models.ObjectContacts, models.ObjectAccounts, models.ObjectOpportunities}

// urlPath is the object type in /crm/v3/objects URLs, as HubSpot's
// published spec names it: deals by objectTypeId (0-3), the others by name.
func (o crmObject) urlPath() string {
	if o.path == "deals" {
		return o.typeID
	}
	return o.path
}

func crmObjectFor(unified string) (crmObject, bool) {
	for _, o := range crmObjects {
		if o.unified == unified {
			return o, true
		}
	}
	return crmObject{}, false
}

func crmObjectForPrefix(prefix string) (crmObject, bool) {
	for _, o := range crmObjects {
		if o.webhookPrefix != "" && o.webhookPrefix == prefix {
			return o, true
		}
	}
	return crmObject{}, false
}

// Connector is the HubSpot app.
type Connector struct {
	cfg       connectors.AppConfig
	baseURL   string
	now       func() time.Time
	searchCap int
	// plain sends the OAuth requests that authenticate with the client
	// credentials rather than a bearer token (introspect, revoke).
	plain *http.Client
}

// Option configures a Connector.
type Option func(*Connector)

// WithClock injects the clock used for signature windows, deletion windows
// and full-scan cursors.
func WithClock(now func() time.Time) Option { return func(c *Connector) { c.now = now } }

// WithHTTPClient sets the client for the OAuth requests that carry client
// credentials instead of a bearer token (token revocation on disconnect).
func WithHTTPClient(hc *http.Client) Option { return func(c *Connector) { c.plain = hc } }

// WithSearchCap lowers the search API's 10,000-result cap the connector
// pages up to before it restarts a search (tests use a small cap).
func WithSearchCap(n int) Option { return func(c *Connector) { c.searchCap = n } }

// New builds the HubSpot connector. cfg.BaseURL, AuthURL and TokenURL point it
// at a fake; empty values mean HubSpot's real endpoints.
func New(cfg connectors.AppConfig, opts ...Option) *Connector {
	c := &Connector{
		cfg:       cfg,
		baseURL:   strings.TrimRight(cmp.Or(cfg.BaseURL, DefaultBaseURL), "/"),
		now:       time.Now,
		searchCap: searchResultCap,
		plain:     &http.Client{Timeout: 30 * time.Second},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

var (
	_ connectors.Connector             = (*Connector)(nil)
	_ connectors.Normalizer            = (*Connector)(nil)
	_ connectors.ChangeLister          = (*Connector)(nil)
	_ connectors.DeletionLister        = (*Connector)(nil)
	_ connectors.CoveredDeletionLister = (*Connector)(nil)
	_ connectors.WebhookReceiver       = (*Connector)(nil)
	_ connectors.Fetcher               = (*Connector)(nil)
	_ connectors.Subscriber            = (*Connector)(nil)
	_ connectors.OAuthApp              = (*Connector)(nil)
)

// Objects lists the unified objects the connector captures.
func Objects() []string {
	return []string{
		models.ObjectContacts, models.ObjectAccounts, models.ObjectOpportunities,
		models.ObjectStages, models.ObjectNotes, models.ObjectTasks, models.ObjectUsers,
	}
}

// WebhookObjects lists the unified objects HubSpot announces by webhook.
func WebhookObjects() []string { return append([]string(nil), webhookObjects...) }

// Info describes the app.
func (c *Connector) Info() connectors.Info {
	objs := Objects()
	topics := make([]string, 0, len(objs))
	for _, o := range objs {
		topics = append(topics, models.TopicFor(o))
	}
	return connectors.Info{
		Name:        "hubspot",
		DisplayName: "HubSpot",
		Category:    models.CategoryCRM,
		Objects:     objs,
		Topics:      topics,
		Capture:     []string{connectors.CaptureWebhook, connectors.CapturePolling},
		Auth:        connectors.AuthOAuth2,
		Scopes:      c.scopes(),
	}
}

func (c *Connector) scopes() []string {
	if len(c.cfg.Scopes) > 0 {
		return append([]string(nil), c.cfg.Scopes...)
	}
	return append([]string(nil), DefaultScopes...)
}
