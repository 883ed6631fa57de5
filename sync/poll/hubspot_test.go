package poll

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/conformance"
	"github.com/tributary/tributary/connectors/hubspot"
	hsfake "github.com/tributary/tributary/connectors/hubspot/fake"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// hsOpener opens connections on the HubSpot fake with a fresh token.
type hsOpener struct {
	fakeOpener
	fake   *hsfake.Server
	portal int64
}

func (o *hsOpener) Open(ctx context.Context, c *models.Connection) (*connectors.Conn, error) {
	tok, err := o.fake.IssueToken(o.portal)
	if err != nil {
		return nil, err
	}
	return &connectors.Conn{ID: c.ID, ExternalID: c.ExternalID, Metadata: map[string]string{},
		HTTP: &http.Client{Transport: conformance.NewBearer(tok.AccessToken)}}, nil
}

// TestHubSpotConnector polls the HubSpot connector against its fake: deal
// stages have no archived listing, so every run fully scans them under a new
// generation — which must neither emit nor delete anything until a stage is
// really gone; archived contacts come from the archived listing.
func TestHubSpotConnector(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		f := hsfake.New(hsfake.WithClock(b.clk.Now))
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		portal := f.CreatePortal()
		b.runner.Apps = fakeApps{hubspot.New(connectors.AppConfig{ClientID: f.ClientID(), ClientSecret: f.ClientSecret(), BaseURL: srv.URL},
			hubspot.WithClock(b.clk.Now))}
		b.runner.Opener = &hsOpener{fake: f, portal: portal}
		require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", b.connID).Updates(map[string]any{
			"app": "hubspot", "external_id": strconv.FormatInt(portal, 10)}).Error)

		var contacts []string
		for _, email := range []string{"a@x.test", "b@x.test"} {
			id, err := f.Create(portal, "contacts", map[string]string{"firstname": "Ada", "email": email})
			require.NoError(t, err)
			contacts = append(contacts, id)
		}
		stage, err := f.CreateStage(portal, "default", "Discovery", 0.2, false)
		require.NoError(t, err)
		b.clk.Add(time.Minute)

		res, err := b.run(t)
		require.NoError(t, err, "%+v", res)
		require.Equal(t, RunCompleted, res.Status)
		assert.Equal(t, []string{"sync/completed:created"}, topicsOf(b.pub.take()))

		// Nothing changed: the stage full scan stamps, emits nothing.
		b.clk.Add(time.Hour)
		res, err = b.run(t)
		require.NoError(t, err, "%+v", res)
		assert.Empty(t, dataEvents(b.pub.take()))
		assert.Zero(t, res.Counts.Deleted)
		gen := b.conn(t).Generation
		assert.Positive(t, gen)

		// A stage removed and a contact archived: one deleted event each.
		require.NoError(t, f.DeleteStage(portal, stage))
		require.NoError(t, f.Delete(portal, "contacts", contacts[0]))
		b.clk.Add(time.Hour)
		res, err = b.run(t)
		require.NoError(t, err, "%+v", res)
		assert.ElementsMatch(t, []string{"crm/contacts:deleted", "crm/stages:deleted"}, topicsOf(dataEvents(b.pub.take())))
		assert.Greater(t, b.conn(t).Generation, gen)
	})
}

// archiveCounter counts requests to HubSpot's archived listings.
type archiveCounter struct {
	next http.RoundTripper
	n    atomic.Int64
}

func (a *archiveCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && r.URL.Query().Get("archived") == "true" && strings.HasPrefix(r.URL.Path, "/crm/v3/objects/") {
		a.n.Add(1)
	}
	return a.next.RoundTrip(r)
}

type countingHsOpener struct {
	hsOpener
	counter *archiveCounter
}

func (o *countingHsOpener) Open(ctx context.Context, c *models.Connection) (*connectors.Conn, error) {
	cc, err := o.hsOpener.Open(ctx, c)
	if err != nil {
		return nil, err
	}
	o.counter.next = cc.HTTP.Transport
	cc.HTTP = &http.Client{Transport: o.counter}
	return cc, nil
}

// TestHubSpotDeletionsIncremental: polls do not page HubSpot's 90-day
// archive when the live counts show nothing was deleted (two limit-1
// searches instead); a deletion — even beside a creation in the same
// window — is found by reading the archive for that object only.
func TestHubSpotDeletionsIncremental(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		f := hsfake.New(hsfake.WithClock(b.clk.Now))
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		portal := f.CreatePortal()
		b.runner.Apps = fakeApps{hubspot.New(connectors.AppConfig{ClientID: f.ClientID(), ClientSecret: f.ClientSecret(), BaseURL: srv.URL},
			hubspot.WithClock(b.clk.Now))}
		counter := &archiveCounter{}
		b.runner.Opener = &countingHsOpener{hsOpener: hsOpener{fake: f, portal: portal}, counter: counter}
		require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", b.connID).Updates(map[string]any{
			"app": "hubspot", "external_id": strconv.FormatInt(portal, 10)}).Error)
		var ids []string
		for _, email := range []string{"a@x.test", "b@x.test", "c@x.test"} {
			id, err := f.Create(portal, "contacts", map[string]string{"firstname": "Ada", "email": email})
			require.NoError(t, err)
			ids = append(ids, id)
		}
		// Records created within the lookback before a count are counted
		// as new too (erring towards a read): let the clock move past it.
		b.clk.Add(10 * time.Minute)
		_, err := b.run(t)
		require.NoError(t, err)
		b.pub.take()

		deletionCursor := func() string {
			var cur map[string]string
			require.NoError(t, json.Unmarshal([]byte(b.conn(t).Cursors), &cur))
			return cur[deletedKey(models.ObjectContacts)]
		}
		start := deletionCursor()
		require.NotEmpty(t, start)
		for range 3 {
			b.clk.Add(time.Hour)
			counter.n.Store(0)
			res, err := b.run(t)
			require.NoError(t, err, "%+v", res)
			require.Empty(t, dataEvents(b.pub.take()))
			require.Zero(t, counter.n.Load(), "no deletion: the archive is not read")
			require.Equal(t, start, deletionCursor(), "the deletion window keeps its start until the archive is read")
		}

		// One contact archived and one created in the same window.
		b.clk.Add(time.Hour)
		require.NoError(t, f.Delete(portal, "contacts", ids[1]))
		_, err = f.Create(portal, "contacts", map[string]string{"firstname": "Bo", "email": "d@x.test"})
		require.NoError(t, err)
		b.clk.Add(10 * time.Minute)
		counter.n.Store(0)
		res, err := b.run(t)
		require.NoError(t, err, "%+v", res)
		assert.Equal(t, []string{"crm/contacts:created", "crm/contacts:deleted"}, sortedTopics(dataEvents(b.pub.take())))
		assert.Equal(t, int64(1), counter.n.Load(), "only the contacts archive is read, once")

		b.clk.Add(time.Hour)
		counter.n.Store(0)
		_, err = b.run(t)
		require.NoError(t, err)
		require.Empty(t, dataEvents(b.pub.take()))
		require.Zero(t, counter.n.Load())

		// A day without reads: the archive is read once as a safety net.
		b.clk.Add(25 * time.Hour)
		counter.n.Store(0)
		_, err = b.run(t)
		require.NoError(t, err)
		assert.Positive(t, counter.n.Load())
	})
}

func sortedTopics(envs []*models.Envelope) []string {
	out := topicsOf(envs)
	sort.Strings(out)
	return out
}
