package poll

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/conformance"
	"github.com/tributary/tributary/connectors/salesforce"
	sffake "github.com/tributary/tributary/connectors/salesforce/fake"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// sfOpener opens every connection on one org of the Salesforce fake.
type sfOpener struct {
	fakeOpener
	url, access string
}

func (o *sfOpener) Open(ctx context.Context, c *models.Connection) (*connectors.Conn, error) {
	return &connectors.Conn{ID: c.ID, ExternalID: c.ExternalID, Metadata: map[string]string{"instance_url": o.url},
		HTTP: &http.Client{Transport: conformance.NewBearer(o.access)}}, nil
}

// TestSalesforceConnector polls the Salesforce connector against its fake
// provider: paging with modstamp cursors, getDeleted, REQUEST_LIMIT_EXCEEDED
// deferral with the cursor kept, and a full scan once the 15-day deletion
// window has expired.
func TestSalesforceConnector(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		f := sffake.New(sffake.WithClock(b.clk.Now), sffake.WithPageSize(200), sffake.WithSessionTTL(365*24*time.Hour))
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		org := f.NewTenant()
		access, _, err := f.Tokens(org)
		require.NoError(t, err)
		b.runner.Apps = fakeApps{salesforce.New(connectors.AppConfig{BaseURL: srv.URL}, salesforce.WithClock(b.clk.Now))}
		b.runner.Opener = &sfOpener{url: srv.URL, access: access}
		require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", b.connID).Updates(map[string]any{"app": "salesforce", "external_id": org}).Error)

		var ids []string
		for _, email := range []string{"a@x.test", "b@x.test", "c@x.test"} {
			id, err := f.Create(org, "Contact", map[string]any{"LastName": "Hopper", "Email": email})
			require.NoError(t, err)
			ids = append(ids, id)
			b.clk.Add(time.Second)
		}
		res, err := b.run(t)
		require.NoError(t, err, "%+v", res)
		assert.True(t, res.Initial)
		assert.Equal(t, RunCompleted, res.Status)
		assert.Equal(t, []string{"sync/completed:created"}, topicsOf(b.pub.take()))
		created := res.Counts.Created
		assert.GreaterOrEqual(t, created, 3)

		// An update and a delete (getDeleted) are one event each.
		b.clk.Add(time.Hour)
		require.NoError(t, f.Update(org, "Contact", ids[0], map[string]any{"Email": "new@x.test"}))
		require.NoError(t, f.Delete(org, "Contact", ids[1]))
		b.clk.Add(time.Minute)
		res, err = b.run(t)
		require.NoError(t, err, "%+v", res)
		envs := dataEvents(b.pub.take())
		require.Equal(t, []string{"crm/contacts:deleted", "crm/contacts:updated"}, topicsOf(envs))
		assert.Equal(t, []string{"email"}, envs[1].ChangedFields)

		// REQUEST_LIMIT_EXCEEDED defers the run and keeps the cursor.
		before := b.cursors(t)
		f.FailNext(org, "rate_limit", 1)
		b.clk.Add(time.Hour)
		res, err = b.run(t)
		require.NoError(t, err)
		assert.Equal(t, RunDeferred, res.Status, res.Error)
		assert.Positive(t, res.RetryAfter)
		after := b.cursors(t)
		stopped := res.Objects[len(res.Objects)-1]
		all := salesforce.New(connectors.AppConfig{}).Info().Objects
		assert.Equal(t, all[(slices.Index(all, stopped)+1)%len(all)], after[turnKey], "the next run starts after the object it stopped in")
		delete(after, turnKey)
		assert.Equal(t, before, after, "no position moved")

		// Sixteen days later getDeleted refuses the window: a full scan finds
		// the record deleted meanwhile (and nothing else).
		b.clk.Add(time.Hour)
		require.NoError(t, f.Delete(org, "Contact", ids[2]))
		b.clk.Add(16 * 24 * time.Hour)
		res, err = b.run(t)
		require.NoError(t, err, "%+v", res)
		assert.Equal(t, RunCompleted, res.Status)
		envs = dataEvents(b.pub.take())
		require.Equal(t, []string{"crm/contacts:deleted"}, topicsOf(envs))
		assert.Contains(t, string(envs[0].DataPayload), ids[2])
		assert.Positive(t, b.conn(t).Generation)
	})
}

// sfSetup points the runner at a fresh Salesforce fake org.
func sfSetup(t *testing.T, b *bundle, db *gorm.DB) (*sffake.Fake, string) {
	t.Helper()
	f := sffake.New(sffake.WithClock(b.clk.Now), sffake.WithPageSize(200), sffake.WithSessionTTL(365*24*time.Hour))
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	org := f.NewTenant()
	access, _, err := f.Tokens(org)
	require.NoError(t, err)
	b.runner.Apps = fakeApps{salesforce.New(connectors.AppConfig{BaseURL: srv.URL}, salesforce.WithClock(b.clk.Now))}
	b.runner.Opener = &sfOpener{url: srv.URL, access: access}
	require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", b.connID).Updates(map[string]any{"app": "salesforce", "external_id": org}).Error)
	return f, org
}

// TestSalesforceLatestDateCovered: getDeleted vouches only up to
// latestDateCovered (here 10 minutes behind). A delete committed late, dated
// inside the last window but after what it covered, is still found because
// the next window starts at latestDateCovered; starting at the last pass
// (minus the 5-minute lookback) missed it.
func TestSalesforceLatestDateCovered(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		f, org := sfSetup(t, b, db)
		id, err := f.Create(org, "Contact", map[string]any{"LastName": "Lovelace"})
		require.NoError(t, err)
		b.clk.Add(time.Minute)
		_, err = b.run(t)
		require.NoError(t, err)
		b.pub.take()

		f.SetCoverageLag(10 * time.Minute)
		b.clk.Add(time.Hour)
		passEnd := b.clk.Now()
		res, err := b.run(t)
		require.NoError(t, err, "%+v", res)
		require.Empty(t, dataEvents(b.pub.take()))

		// A delete of a long transaction, dated 8 minutes before that pass,
		// commits only now.
		b.clk.Add(time.Hour)
		require.NoError(t, f.DeleteAt(org, "Contact", id, passEnd.Add(-8*time.Minute)))
		res, err = b.run(t)
		require.NoError(t, err, "%+v", res)
		envs := dataEvents(b.pub.take())
		require.Equal(t, []string{"crm/contacts:deleted"}, topicsOf(envs))
		assert.Contains(t, string(envs[0].DataPayload), id)
	})
}

// TestSalesforceFullScanKeepsArchivedTasks: a full scan (after the 15-day
// getDeleted window expired) reads with queryAll, which returns Tasks the
// archival job moved away: an archived Task is not a deletion, a Task in
// the recycle bin is.
func TestSalesforceFullScanKeepsArchivedTasks(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		f, org := sfSetup(t, b, db)
		archived, err := f.Create(org, "Task", map[string]any{"Subject": "Old call", "Status": "Completed"})
		require.NoError(t, err)
		binned, err := f.Create(org, "Task", map[string]any{"Subject": "Mistake", "Status": "Not Started"})
		require.NoError(t, err)
		b.clk.Add(time.Minute)
		_, err = b.run(t)
		require.NoError(t, err)
		b.pub.take()

		b.clk.Add(time.Hour)
		require.NoError(t, f.Archive(org, "Task", archived))
		require.NoError(t, f.Delete(org, "Task", binned))
		b.clk.Add(16 * 24 * time.Hour)
		res, err := b.run(t)
		require.NoError(t, err, "%+v", res)
		envs := dataEvents(b.pub.take())
		require.Equal(t, []string{"crm/tasks:deleted"}, topicsOf(envs))
		assert.Contains(t, string(envs[0].DataPayload), binned)
		assert.NotContains(t, string(envs[0].DataPayload), archived)
	})
}
