package inbound

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/clocktest"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/conformance"
	"github.com/tributary/tributary/connectors/hubspot"
	hsfake "github.com/tributary/tributary/connectors/hubspot/fake"
	"github.com/tributary/tributary/connectors/salesforce"
	"github.com/tributary/tributary/connectors/shopify"
	shfake "github.com/tributary/tributary/connectors/shopify/fake"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/sync/reconcile"
)

const (
	accountID      = "acc_test"
	shopifyAddress = "https://tributary.example.com/inbound/shopify"
)

type clock = clocktest.Clock

// publisher records the envelopes it gets and writes each as an events row
// through tx, so only committed publishes are visible in the database.
type publisher struct {
	mu   sync.Mutex
	seq  atomic.Int64
	envs []*models.Envelope
	err  error
	// failOn fails a publish holding an event whose payload contains it.
	failOn string
	// calls counts Publish calls.
	calls atomic.Int64
}

func (p *publisher) Publish(ctx context.Context, tx *gorm.DB, acc string, events ...*models.Envelope) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls.Add(1)
	if p.err != nil {
		return p.err
	}
	for _, e := range events {
		if p.failOn != "" && strings.Contains(string(e.DataPayload), p.failOn) {
			return fmt.Errorf("poison event %s", p.failOn)
		}
	}
	for _, e := range events {
		body, err := json.Marshal(e)
		if err != nil {
			return err
		}
		row := models.Event{ID: models.NewID(models.PrefixEvent), AccountID: acc, Seq: p.seq.Add(1), Topic: e.Topic,
			UpdateType: e.UpdateType, ConnectionID: e.ConnectionID, Body: body, CreatedAt: time.Now().UTC()}
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
	}
	p.envs = append(p.envs, events...)
	return nil
}

// opener builds Conns for the fakes and counts the provider requests they send.
type opener struct {
	b        *bundle
	requests atomic.Int64
	reauth   []string
}

type counting struct {
	rt http.RoundTripper
	n  *atomic.Int64
}

func (c counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.rt.RoundTrip(r)
}

func (o *opener) Open(_ context.Context, c *models.Connection) (*connectors.Conn, error) {
	switch c.App {
	case "hubspot":
		tok, ok := o.b.hsTokens.Load(c.ExternalID)
		if !ok {
			return nil, fmt.Errorf("no token for portal %s", c.ExternalID)
		}
		return &connectors.Conn{ID: c.ID, ExternalID: c.ExternalID,
			HTTP: &http.Client{Transport: counting{conformance.NewBearer(tok.(string)), &o.requests}}}, nil
	case "shopify":
		return &connectors.Conn{ID: c.ID, ExternalID: c.ExternalID,
			Credentials: map[string]string{"access_token": "shpat_" + c.ExternalID},
			Metadata:    map[string]string{"shop": c.ExternalID},
			HTTP:        &http.Client{Transport: counting{o.b.shSrv.Client().Transport, &o.requests}}}, nil
	}
	return nil, fmt.Errorf("no conn for %s", c.App)
}

func (o *opener) MarkNeedsReauth(_ context.Context, id, _ string) error {
	o.reauth = append(o.reauth, id)
	return nil
}

// bundle is one test's world: a database, the HubSpot and Shopify fakes
// with their real connectors, a receiver and a processor.
type bundle struct {
	db       *gorm.DB
	clock    *clock
	hs       *hsfake.Server
	hsSrv    *httptest.Server
	hsApp    *hubspot.Connector
	hsTokens sync.Map // portal → access token
	shClock  *shfake.Clock
	sh       *shfake.Server
	shSrv    *httptest.Server
	shApp    *shopify.Connector
	pub      *publisher
	open     *opener
	recv     *Receiver
	proc     *Processor
	seq      atomic.Int64
}

func setup(t *testing.T, db *gorm.DB) *bundle {
	t.Helper()
	b := &bundle{db: db, clock: clocktest.New(hsfake.Start), pub: &publisher{}}
	b.open = &opener{b: b}
	b.hs = hsfake.New()
	b.hsSrv = httptest.NewServer(b.hs)
	t.Cleanup(b.hsSrv.Close)
	b.hsApp = hubspot.New(connectors.AppConfig{ClientID: b.hs.ClientID(), ClientSecret: b.hs.ClientSecret(), BaseURL: b.hsSrv.URL},
		hubspot.WithClock(b.hs.Now))

	b.shClock = shfake.NewClock(hsfake.Start)
	b.sh = shfake.New(shfake.WithClock(b.shClock.Now), shfake.WithClientCredentials("cid", "csecret"), shfake.WithoutDelivery())
	b.shSrv = httptest.NewServer(b.sh)
	t.Cleanup(b.shSrv.Close)
	b.shApp = shopify.New(connectors.AppConfig{ClientID: "cid", ClientSecret: "csecret", BaseURL: b.shSrv.URL},
		shopify.WithClock(b.shClock.Now), shopify.WithHTTPClient(b.shSrv.Client()))

	apps := connectors.NewRegistry(b.hsApp, b.shApp, salesforce.New(connectors.AppConfig{}))
	b.recv = &Receiver{DB: db, Apps: apps, Now: b.clock.Now}
	b.proc = &Processor{DB: db, Apps: apps, Opener: b.open, Publisher: b.pub,
		Reconciler: &reconcile.Reconciler{Now: b.clock.Now}, Now: b.clock.Now, Batch: 10}
	return b
}

// connection stores a connection row of app for externalID.
func (b *bundle) connection(t *testing.T, app, externalID string) *models.Connection {
	t.Helper()
	n := b.seq.Add(1)
	c := &models.Connection{ID: models.NewID(models.PrefixConnection), AccountID: accountID, App: app,
		UserID: fmt.Sprintf("user-%d", n), UserName: fmt.Sprintf("User %d", n), Status: models.ConnectionActive,
		ExternalID: externalID, Metadata: "{}", Cursors: "{}", NextSyncAt: b.clock.Now(), Generation: 1, InitialSyncDone: true}
	require.NoError(t, b.db.Create(c).Error)
	return c
}

// hubspotPortal makes a portal with an OAuth token; with connect it also
// stores a connection to it.
func (b *bundle) hubspotPortal(t *testing.T, connect bool) (int64, *models.Connection) {
	t.Helper()
	portal := b.hs.CreatePortal()
	tok, err := b.hs.IssueToken(portal)
	require.NoError(t, err)
	ext := strconv.FormatInt(portal, 10)
	b.hsTokens.Store(ext, tok.AccessToken)
	if !connect {
		return portal, nil
	}
	return portal, b.connection(t, "hubspot", ext)
}

// shopifyShop installs the app on a new shop, subscribes its webhooks and
// stores a connection to it.
func (b *bundle) shopifyShop(t *testing.T) (string, *models.Connection) {
	t.Helper()
	shop := fmt.Sprintf("shop-%d.myshopify.com", b.seq.Add(1))
	b.sh.AddToken(shop, "shpat_"+shop)
	c := b.connection(t, "shopify", shop)
	conn, err := b.open.Open(t.Context(), c)
	require.NoError(t, err)
	_, err = b.shApp.Subscribe(t.Context(), conn, shopifyAddress)
	require.NoError(t, err)
	return shop, c
}

func (b *bundle) shopifyRequests(shop string) []*connectors.InboundRequest {
	var out []*connectors.InboundRequest
	for _, d := range b.sh.Deliveries(shop) {
		out = append(out, &connectors.InboundRequest{Method: http.MethodPost, URL: d.URL, Header: d.Header.Clone(),
			Body: d.Body, ReceivedAt: b.clock.Now()})
	}
	return out
}

// signHubSpot signs body as HubSpot does for the fake's default target.
func (b *bundle) signHubSpot(body []byte) *connectors.InboundRequest {
	ts := strconv.FormatInt(b.hs.Now().UnixMilli(), 10)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(hubspot.HeaderTimestamp, ts)
	h.Set(hubspot.HeaderSignatureV3, hubspot.SignV3(b.hs.ClientSecret(), http.MethodPost, hsfake.DefaultWebhookURL, body, ts))
	return &connectors.InboundRequest{Method: http.MethodPost, URL: hsfake.DefaultWebhookURL, Header: h, Body: body, ReceivedAt: b.clock.Now()}
}

// mergeHubSpot joins the notices of several deliveries into one signed one.
func (b *bundle) mergeHubSpot(t *testing.T, reqs []*connectors.InboundRequest) *connectors.InboundRequest {
	t.Helper()
	var all []json.RawMessage
	for _, r := range reqs {
		var ns []json.RawMessage
		require.NoError(t, json.Unmarshal(r.Body, &ns))
		all = append(all, ns...)
	}
	body, err := json.Marshal(all)
	require.NoError(t, err)
	return b.signHubSpot(body)
}

func (b *bundle) receiveAll(t *testing.T, app string, reqs []*connectors.InboundRequest) {
	t.Helper()
	require.NotEmpty(t, reqs)
	for _, r := range reqs {
		require.NoError(t, b.recv.Receive(t.Context(), app, r))
	}
}

func (b *bundle) process(t *testing.T) int {
	t.Helper()
	n, err := b.proc.ProcessDue(t.Context())
	require.NoError(t, err)
	return n
}

func (b *bundle) inbox(t *testing.T) []models.InboxItem {
	t.Helper()
	var items []models.InboxItem
	require.NoError(t, b.db.Order("received_at, id").Find(&items).Error)
	return items
}

// events are the committed events' envelopes, in publish order.
func (b *bundle) events(t *testing.T) []models.Envelope {
	t.Helper()
	var rows []models.Event
	require.NoError(t, b.db.Order("seq").Find(&rows).Error)
	out := make([]models.Envelope, len(rows))
	for i, r := range rows {
		require.NoError(t, json.Unmarshal(r.Body, &out[i]))
	}
	return out
}

func kinds(evs []models.Envelope) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Topic + " " + e.UpdateType
	}
	return out
}

func payloadField(t *testing.T, e models.Envelope, field string) string {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(e.DataPayload, &m))
	return strings.TrimSpace(fmt.Sprint(m[field]))
}

// create makes a HubSpot contact (one contact.creation notice).
func (b *bundle) create(t *testing.T, portal int64) string {
	t.Helper()
	n := b.seq.Add(1)
	id, err := b.hs.Create(portal, "contacts", map[string]string{
		"firstname": "Ada", "lastname": fmt.Sprint("Lovelace ", n), "email": fmt.Sprintf("ada%d@example.com", n)})
	require.NoError(t, err)
	return id
}
