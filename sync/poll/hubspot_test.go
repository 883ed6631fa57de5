package poll

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
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
