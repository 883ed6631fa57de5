package shopify

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/shopify/fake"
	"github.com/tributary/tributary/models"
)

// bundle is what the tests share: a fake behind a real socket, a connector
// aimed at it, the shared clock and a webhook receiver.
type bundle struct {
	fake     *fake.Server
	srv      *httptest.Server
	conn     *Connector
	clock    *fake.Clock
	receiver *httptest.Server
	received chan *http.Request
	seq      atomic.Int64
	mu       sync.Mutex
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{clock: fake.NewClock(t0), received: make(chan *http.Request, 1024)}
	b.fake = fake.New(fake.WithClock(b.clock.Now), fake.WithClientCredentials("cid", "csecret"))
	b.srv = httptest.NewServer(b.fake)
	t.Cleanup(b.srv.Close)
	b.receiver = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case b.received <- r.Clone(context.Background()):
		default:
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(b.receiver.Close)
	b.conn = New(connectors.AppConfig{
		ClientID: "cid", ClientSecret: "csecret",
		BaseURL: b.srv.URL, AuthURL: b.srv.URL + "/admin/oauth/authorize", TokenURL: b.srv.URL + "/admin/oauth/access_token",
	}, WithClock(b.clock.Now), WithHTTPClient(b.srv.Client()))
	return b
}

// newConn installs the app on a fresh shop with an expiring offline token
// and subscribes its webhooks; Refresh updates Credentials in place.
func (b *bundle) newConn(t *testing.T) *connectors.Conn {
	t.Helper()
	shop := fmt.Sprintf("shop-%d.myshopify.com", b.seq.Add(1))
	access, refresh := b.fake.IssueToken(shop, true)
	c := &connectors.Conn{
		ID: "con_" + shop, ExternalID: shop,
		Credentials: map[string]string{"access_token": access, "refresh_token": refresh},
		Metadata:    map[string]string{"shop": shop},
		HTTP:        b.srv.Client(),
	}
	c.Refresh = func(ctx context.Context) error {
		cfg := b.conn.OAuthConfig("", map[string]string{"shop": shop})
		ctx = context.WithValue(ctx, oauth2.HTTPClient, b.srv.Client())
		tok, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: c.Credentials["refresh_token"], Expiry: time.Unix(1, 0)}).Token()
		if err != nil {
			return err
		}
		c.Credentials["access_token"], c.Credentials["refresh_token"] = tok.AccessToken, tok.RefreshToken
		return nil
	}
	md, err := b.conn.Subscribe(t.Context(), c, b.receiver.URL+"/inbound/shopify")
	require.NoError(t, err)
	for k, v := range md {
		c.Metadata[k] = v
	}
	return c
}

var resourceOf = map[string]string{models.ObjectOrders: fake.Orders, models.ObjectCustomers: fake.Customers, models.ObjectProducts: fake.Products}

func mustID(t *testing.T, s string) int64 {
	t.Helper()
	id, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return id
}

func (b *bundle) harness() conformanceHarness {
	return conformanceHarness{b: b}
}

// conformanceHarness holds the harness callbacks.
type conformanceHarness struct{ b *bundle }

func (h conformanceHarness) create(t *testing.T, c *connectors.Conn, object string) string {
	return strconv.FormatInt(h.b.fake.Create(c.ExternalID, resourceOf[object], nil), 10)
}

func (h conformanceHarness) update(t *testing.T, c *connectors.Conn, object, id string) {
	n := h.b.seq.Add(1)
	var fields map[string]any
	switch object {
	case models.ObjectOrders:
		fields = map[string]any{"email": fmt.Sprintf("buyer+%d@example.com", n), "financial_status": "refunded"}
	case models.ObjectCustomers:
		fields = map[string]any{"first_name": fmt.Sprintf("Robert %d", n)}
	case models.ObjectProducts:
		fields = map[string]any{"title": fmt.Sprintf("IPod Nano - %dGB", n)}
	}
	require.True(t, h.b.fake.Update(c.ExternalID, resourceOf[object], mustID(t, id), fields))
}

func (h conformanceHarness) delete(t *testing.T, c *connectors.Conn, object, id string) {
	require.True(t, h.b.fake.Delete(c.ExternalID, resourceOf[object], mustID(t, id)))
}

func (h conformanceHarness) webhooks(t *testing.T, c *connectors.Conn) []*connectors.InboundRequest {
	var out []*connectors.InboundRequest
	for _, d := range h.b.fake.Deliveries(c.ExternalID) {
		out = append(out, &connectors.InboundRequest{
			Method: http.MethodPost, URL: d.URL, Header: d.Header.Clone(), Body: d.Body, ReceivedAt: h.b.clock.Now(),
		})
	}
	return out
}
