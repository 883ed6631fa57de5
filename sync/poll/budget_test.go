package poll

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/hubspot"
	hsfake "github.com/tributary/tributary/connectors/hubspot/fake"
	"github.com/tributary/tributary/connectors/salesforce"
	sffake "github.com/tributary/tributary/connectors/salesforce/fake"
	"github.com/tributary/tributary/connectors/shopify"
	shfake "github.com/tributary/tributary/connectors/shopify/fake"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
	"github.com/tributary/tributary/sync/ratebudget"
)

// pacedOpener opens connections through inner and, when pacer is set,
// paces their requests within the app's budgets, as sync/connections does.
type pacedOpener struct {
	Opener
	app   connectors.Budgeted
	name  string
	pacer *ratebudget.Pacer
}

func (o *pacedOpener) Open(ctx context.Context, c *models.Connection) (*connectors.Conn, error) {
	cc, err := o.Opener.Open(ctx, c)
	if err != nil || o.pacer == nil {
		return cc, err
	}
	hc := *cc.HTTP
	hc.Transport = o.pacer.Wrap(o.app, o.name, c.ExternalID, hc.Transport)
	cc.HTTP = &hc
	return cc, nil
}

// shOpener opens connections on one shop of the Shopify fake.
type shOpener struct {
	fakeOpener
	shop, token string
}

func (o *shOpener) Open(ctx context.Context, c *models.Connection) (*connectors.Conn, error) {
	return &connectors.Conn{ID: c.ID, ExternalID: o.shop, Credentials: map[string]string{"access_token": o.token, "shop": o.shop},
		Metadata: map[string]string{"shop": o.shop}, HTTP: &http.Client{}}, nil
}

// clockPacer paces on the bundle's clock: waiting advances it.
func clockPacer(db *gorm.DB, clk *clock) *ratebudget.Pacer {
	return &ratebudget.Pacer{DB: db, Now: clk.Now, Sleep: func(_ context.Context, d time.Duration) error {
		clk.Add(d)
		return nil
	}}
}

// runUntilDone polls until a run completes, moving the clock past each
// deferral, and returns the runs it took.
func runUntilDone(t *testing.T, b *bundle, limit int) []Result {
	t.Helper()
	var runs []Result
	for len(runs) < limit {
		res, err := b.run(t)
		require.NoError(t, err, "%+v", res)
		runs = append(runs, res)
		if res.Status == RunCompleted {
			return runs
		}
		require.Equal(t, RunDeferred, res.Status, res.Error)
		t.Logf("run %d deferred: %s", len(runs), res.Error)
		b.clk.Add(max(res.RetryAfter, time.Second))
	}
	t.Fatalf("not done after %d runs: %+v", limit, runs[len(runs)-1])
	return nil
}

// requireEachOnce requires exactly one event per id of topic and no other
// data event.
func requireEachOnce(t *testing.T, envs []*models.Envelope, topic string, ids []string) {
	t.Helper()
	got := map[string]int{}
	for _, e := range dataEvents(envs) {
		require.Equal(t, topic, e.Topic, "only %s events", topic)
		var c models.Common
		require.NoError(t, json.Unmarshal(e.DataPayload, &c))
		got[c.RemoteID]++
	}
	require.Len(t, got, len(ids), "one event per record")
	for _, id := range ids {
		require.Equal(t, 1, got[id], "record %s", id)
	}
}

// TestHubSpotBurstOfChangesBehindSearchLimit: 1,200 contacts changed in
// one minute on a portal whose fake enforces HubSpot's 4 searches/s and 100
// requests/10 s. Paced within the declared budgets, one run delivers each
// change once without a single 429; unpaced (the old behaviour), the limits
// answer 429 and each deferred run resumes from its last stored page, the
// objects taking turns, until every change is delivered once.
func TestHubSpotBurstOfChangesBehindSearchLimit(t *testing.T) {
	for _, paced := range []bool{true, false} {
		t.Run(map[bool]string{true: "paced", false: "unpaced"}[paced], func(t *testing.T) {
			storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
				b := setup(t, db)
				f := hsfake.New(hsfake.WithClock(b.clk.Now), hsfake.WithRateLimits(4, 100))
				srv := httptest.NewServer(f)
				t.Cleanup(srv.Close)
				portal := f.CreatePortal()
				app := hubspot.New(connectors.AppConfig{ClientID: f.ClientID(), ClientSecret: f.ClientSecret(), BaseURL: srv.URL},
					hubspot.WithClock(b.clk.Now))
				b.runner.Apps, b.runner.PageSize = fakeApps{app}, 100
				op := &pacedOpener{Opener: &hsOpener{fake: f, portal: portal}, app: app, name: "hubspot"}
				if paced {
					op.pacer = clockPacer(db, b.clk)
				}
				b.runner.Opener = op
				require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", b.connID).Updates(map[string]any{
					"app": "hubspot", "external_id": strconv.FormatInt(portal, 10), "created_at": b.clk.Now()}).Error)
				b.clk.Add(time.Minute)
				first := runUntilDone(t, b, 20)
				require.True(t, first[0].Initial)
				b.pub.take()

				b.clk.Add(time.Hour)
				ids := make([]string, 0, 1200)
				for i := range 1200 {
					id, err := f.Create(portal, "contacts", map[string]string{"firstname": "Burst", "email": "c" + strconv.Itoa(i) + "@x.test"})
					require.NoError(t, err)
					ids = append(ids, id)
					b.clk.Add(50 * time.Millisecond) // 1,200 in one minute
				}
				refusedBefore, servedBefore := f.Throttled()
				runs := runUntilDone(t, b, 60)
				refused, served := f.Throttled()
				served -= servedBefore
				requireEachOnce(t, b.pub.take(), "crm/contacts", ids)
				t.Logf("hubspot paced=%v: %d run(s), %d requests served, %d refused with 429", paced, len(runs), served, refused-refusedBefore)
				if paced {
					assert.Len(t, runs, 1, "paced: one run")
					assert.Zero(t, refused, "paced requests never meet a 429")
				} else {
					assert.Positive(t, refused-refusedBefore, "unpaced requests hit the limits")
					assert.Less(t, len(runs), 48, "each deferred run resumes where it stopped")
				}
				cur := b.cursors(t)
				for _, object := range app.Info().Objects {
					assert.Contains(t, cur, deletedKey(object), "%s polled to the end", object)
				}
			})
		})
	}
}

// TestShopifyFullScanBehindLeakyBucket: a full scan of 12,003 orders (pages
// of 250) on a shop whose fake enforces the REST leaky bucket (40 requests,
// 2/s). Paced, one run completes it without a 429. Unpaced (4,103 orders in
// pages of 100, which also needs more than 40 requests and keeps the test
// fast), each deferred run goes on from the scan's last stored page under
// the same generation (it used to start over at page 1, forever), customers
// and products take their turns, and the scan deletes exactly the one order
// deleted meanwhile.
func TestShopifyFullScanBehindLeakyBucket(t *testing.T) {
	for _, paced := range []bool{true, false} {
		t.Run(map[bool]string{true: "paced", false: "unpaced"}[paced], func(t *testing.T) {
			storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
				const shop = "bucket.myshopify.com"
				b := setup(t, db)
				f := shfake.New(shfake.WithClock(b.clk.Now), shfake.WithoutDelivery(), shfake.WithRateLimit(40, 2))
				srv := httptest.NewServer(f)
				t.Cleanup(srv.Close)
				f.AddToken(shop, "shpat_bucket")
				app := shopify.New(connectors.AppConfig{BaseURL: srv.URL})
				n, pageSize := 12003, 250
				if !paced {
					n, pageSize = 4103, 100
				}
				b.runner.Apps, b.runner.PageSize = fakeApps{app}, pageSize
				op := &pacedOpener{Opener: &shOpener{shop: shop, token: "shpat_bucket"}, app: app, name: "shopify"}
				if paced {
					op.pacer = clockPacer(db, b.clk)
				}
				b.runner.Opener = op
				require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", b.connID).Updates(map[string]any{
					"app": "shopify", "external_id": shop, "created_at": b.clk.Now()}).Error)
				orders := make([]int64, 0, n)
				for i := range n {
					orders = append(orders, f.Create(shop, "orders", map[string]any{"name": "#" + strconv.Itoa(1000+i), "currency": "EUR"}))
					b.clk.Add(10 * time.Millisecond)
				}
				b.clk.Add(time.Minute)
				seedBaseline(t, b, app, op.Opener, shop)
				b.clk.Add(time.Hour)
				require.True(t, f.Delete(shop, "orders", orders[7]))
				refusedBefore, servedBefore := f.Throttled()
				runs := runUntilDone(t, b, 60)
				refused, served := f.Throttled()
				served -= servedBefore
				envs := dataEvents(b.pub.take())
				require.Len(t, envs, 1, "only the deleted order: %v", topicsOf(envs))
				assert.Equal(t, "commerce/orders:deleted", topicsOf(envs)[0])
				t.Logf("shopify paced=%v: full scan in %d run(s), %d requests served, %d refused with 429", paced, len(runs), served, refused-refusedBefore)
				if paced {
					assert.Len(t, runs, 1)
					assert.Zero(t, refused, "paced requests never overflow the bucket")
				} else {
					assert.Positive(t, refused-refusedBefore)
					assert.LessOrEqual(t, len(runs), 4, "the scan goes on from its last page (49 pages, ~40 per run)")
				}
				cur := b.cursors(t)
				for _, object := range app.Info().Objects {
					assert.Contains(t, cur, scannedKey(object), "%s fully scanned", object)
					assert.NotContains(t, cur, scanKey(object), "no scan left in progress")
				}
				var live int64
				require.NoError(t, db.Model(&models.Snapshot{}).Where("connection_id = ? AND object = ? AND deleted = ?", b.connID, "orders", false).Count(&live).Error)
				assert.EqualValues(t, n-1, live)
			})
		})
	}
}

// seedBaseline stands for the connection's first sync in one transaction:
// every record the app lists is stored as a snapshot, each object's first
// pass is marked done, and the next run is an ordinary one.
func seedBaseline(t *testing.T, b *bundle, app *shopify.Connector, op Opener, shop string) {
	t.Helper()
	ctx := context.Background()
	cc, err := op.Open(ctx, b.conn(t))
	require.NoError(t, err)
	var recs []models.Record
	cursors := map[string]string{}
	for _, object := range app.Info().Objects {
		err := app.ListChanges(ctx, cc, connectors.ListRequest{Object: object, PageSize: 250}, func(p connectors.Page) error {
			recs = append(recs, p.Records...)
			cursors[object] = strings.TrimSuffix(p.Cursor, "+resume")
			b.clk.Add(time.Second) // within the shop's bucket
			return nil
		})
		require.NoError(t, err)
		cursors[deletedKey(object)] = b.clk.Now().Format(time.RFC3339Nano)
	}
	raw, err := json.Marshal(cursors)
	require.NoError(t, err)
	require.NoError(t, b.db.Transaction(func(tx *gorm.DB) error {
		if _, err := b.runner.reconciler().ApplyPage(tx, b.connID, recs, 0); err != nil {
			return err
		}
		return tx.Model(&models.Connection{}).Where("id = ?", b.connID).
			Updates(map[string]any{"cursors": string(raw), "initial_sync_done": true}).Error
	}))
}

// TestSalesforceDailyAllocation: an org whose fake enforces a (tiny) rolling
// 24-hour API allocation answers REQUEST_LIMIT_EXCEEDED once it is spent;
// the run is deferred, nothing completed is redone, and the round completes
// once the allocation has refilled — each object polled, each contact once.
func TestSalesforceDailyAllocation(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		f := sffake.New(sffake.WithClock(b.clk.Now), sffake.WithSessionTTL(365*24*time.Hour), sffake.WithDailyLimit(6))
		srv := httptest.NewServer(f)
		t.Cleanup(srv.Close)
		org := f.NewTenant()
		access, _, err := f.Tokens(org)
		require.NoError(t, err)
		app := salesforce.New(connectors.AppConfig{BaseURL: srv.URL}, salesforce.WithClock(b.clk.Now))
		b.runner.Apps = fakeApps{app}
		b.runner.Opener = &sfOpener{url: srv.URL, access: access}
		require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", b.connID).Updates(map[string]any{
			"app": "salesforce", "external_id": org, "emit_backfill": true}).Error)
		var ids []string
		for i := range 3 {
			id, err := f.Create(org, "Contact", map[string]any{"LastName": "Daily", "Email": "d" + strconv.Itoa(i) + "@x.test"})
			require.NoError(t, err)
			ids = append(ids, id)
		}
		b.clk.Add(time.Minute)
		res, err := b.run(t)
		require.NoError(t, err)
		require.Equal(t, RunDeferred, res.Status, "the allocation is spent part-way: %s", res.Error)
		assert.Contains(t, res.Error, "REQUEST_LIMIT_EXCEEDED")
		assert.Positive(t, f.Refused(org))
		runs := []Result{res}
		for len(runs) < 10 {
			b.clk.Add(24 * time.Hour)
			res, err = b.run(t)
			require.NoError(t, err)
			runs = append(runs, res)
			if res.Status == RunCompleted {
				break
			}
		}
		require.Equal(t, RunCompleted, res.Status, "%+v", res)
		t.Logf("salesforce: %d runs under a 6-request daily allocation", len(runs))
		var contacts []string
		for _, e := range dataEvents(b.pub.take()) {
			if e.Topic == "crm/contacts" {
				contacts = append(contacts, remoteIDOf(t, e))
			}
		}
		assert.ElementsMatch(t, ids, contacts, "each contact once")
		cur := b.cursors(t)
		for _, object := range app.Info().Objects {
			assert.Contains(t, cur, deletedKey(object), "%s polled", object)
		}
	})
}
