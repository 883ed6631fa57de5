package poll

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/clocktest"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/sync/reconcile"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// fakeRec is one live record of the fake app.
type fakeRec struct {
	email string
	at    time.Time
}

// fakeApp is an in-memory app: pages of 2 sorted by modification time, an
// RFC 3339 cursor (>= cursor, no lookback needed for the test), deletions
// in a window and scripted failures.
type fakeApp struct {
	mu        sync.Mutex
	live      map[string]fakeRec
	deletions []connectors.Deletion
	// windowExpired makes ListDeleted answer ErrWindowExpired.
	windowExpired bool
	// failPage (1-based, within one ListChanges call) returns failErr
	// before that page; failFullOnly limits it to full scans.
	failPage     int
	failErr      error
	failFullOnly bool
	// badPage returns a record without data on that page.
	badPage int
	// pageSize is the page length (2 when 0).
	pageSize int
	// afterPage is called after each page was handled.
	afterPage func(page int)
	requests  []connectors.ListRequest
}

func newFakeApp() *fakeApp { return &fakeApp{live: map[string]fakeRec{}} }

func (a *fakeApp) Info() connectors.Info {
	return connectors.Info{Name: "fake", DisplayName: "Fake CRM", Category: "crm", Objects: []string{"contacts"},
		Capture: []string{connectors.CapturePolling}}
}

func (a *fakeApp) set(id, email string, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.live[id] = fakeRec{email: email, at: at}
}

func (a *fakeApp) remove(id string, at time.Time, announce bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.live, id)
	if announce {
		a.deletions = append(a.deletions, connectors.Deletion{RemoteID: id, DeletedAt: at})
	}
}

func record(id string, r fakeRec) models.Record {
	at := r.at
	return models.Record{Object: "contacts", RemoteID: id, RemoteUpdatedAt: r.at,
		Data: &models.Contact{Common: models.Common{RemoteID: id, RemoteUpdatedAt: &at}, FirstName: "Ada", Email: r.email}}
}

func (a *fakeApp) ListChanges(ctx context.Context, c *connectors.Conn, req connectors.ListRequest, fn func(connectors.Page) error) error {
	a.mu.Lock()
	a.requests = append(a.requests, req)
	var since time.Time
	if req.Cursor != "" && !req.FullScan {
		var err error
		if since, err = time.Parse(time.RFC3339Nano, req.Cursor); err != nil {
			a.mu.Unlock()
			return err
		}
	}
	var recs []models.Record
	for id, r := range a.live {
		if !r.at.Before(since) {
			recs = append(recs, record(id, r))
		}
	}
	failPage, failErr, failFullOnly, badPage, size := a.failPage, a.failErr, a.failFullOnly, a.badPage, max(a.pageSize, 2)
	a.mu.Unlock()
	slices.SortFunc(recs, func(x, y models.Record) int {
		if c := x.RemoteUpdatedAt.Compare(y.RemoteUpdatedAt); c != 0 {
			return c
		}
		return strings.Compare(x.RemoteID, y.RemoteID)
	})
	for i, page := 0, 1; i < len(recs); i, page = i+size, page+1 {
		if page == failPage && (!failFullOnly || req.FullScan) {
			return failErr
		}
		p := connectors.Page{Records: slices.Clone(recs[i:min(i+size, len(recs))])}
		if page == badPage {
			p.Records[0].Data = nil
		}
		p.Cursor = p.Records[len(p.Records)-1].RemoteUpdatedAt.Format(time.RFC3339Nano)
		if err := fn(p); err != nil {
			return err
		}
		if a.afterPage != nil {
			a.afterPage(page)
		}
	}
	return nil
}

func (a *fakeApp) ListDeleted(ctx context.Context, c *connectors.Conn, object string, since, until time.Time) ([]connectors.Deletion, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.windowExpired {
		return nil, connectors.ErrWindowExpired
	}
	var out []connectors.Deletion
	for _, d := range a.deletions {
		if !d.DeletedAt.Before(since) && !d.DeletedAt.After(until) {
			out = append(out, d)
		}
	}
	return out, nil
}

type fakeApps struct{ app connectors.Connector }

func (f fakeApps) Get(name string) (connectors.Connector, bool) {
	if name == f.app.Info().Name {
		return f.app, true
	}
	return nil, false
}

type fakeOpener struct {
	mu      sync.Mutex
	openErr error
	reauth  []string
}

func (o *fakeOpener) Open(ctx context.Context, c *models.Connection) (*connectors.Conn, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.openErr != nil {
		return nil, o.openErr
	}
	return &connectors.Conn{ID: c.ID, ExternalID: c.ExternalID}, nil
}

func (o *fakeOpener) MarkNeedsReauth(ctx context.Context, id, reason string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reauth = append(o.reauth, id)
	return nil
}

// probe is the row the fake publisher writes through tx, one per event.
type probe struct {
	ID    uint `gorm:"primaryKey"`
	Topic string
	Kind  string
}

// fakePublisher records envelopes it got in committed-or-not order, writes a
// probe row per event through tx, and fails data events when failData is set.
type fakePublisher struct {
	mu       sync.Mutex
	envs     []*models.Envelope
	failData error
}

var errPublish = errors.New("publish failed")

func (p *fakePublisher) Publish(ctx context.Context, tx *gorm.DB, accountID string, events ...*models.Envelope) error {
	for _, e := range events {
		if err := tx.Create(&probe{Topic: e.Topic, Kind: e.UpdateType}).Error; err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failData != nil && !strings.HasPrefix(events[0].Topic, "sync/") {
		return p.failData
	}
	p.envs = append(p.envs, events...)
	return nil
}

// take returns and forgets the envelopes recorded so far.
func (p *fakePublisher) take() []*models.Envelope {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.envs
	p.envs = nil
	return out
}

type clock = clocktest.Clock

type bundle struct {
	db     *gorm.DB
	app    *fakeApp
	opener *fakeOpener
	pub    *fakePublisher
	clk    *clock
	runner *Runner
	connID string
}

func setup(t testing.TB, db *gorm.DB) *bundle {
	t.Helper()
	require.NoError(t, db.AutoMigrate(&probe{}))
	b := &bundle{db: db, app: newFakeApp(), opener: &fakeOpener{}, pub: &fakePublisher{}, clk: clocktest.New(t0)}
	b.runner = &Runner{DB: db, Apps: fakeApps{b.app}, Opener: b.opener, Publisher: b.pub, Now: b.clk.Now,
		Reconciler: &reconcile.Reconciler{Now: b.clk.Now}}
	c := models.Connection{ID: models.NewID(models.PrefixConnection), AccountID: "acc_1", App: "fake", UserID: "user-42",
		UserName: "Gregg", Status: models.ConnectionSyncing, NextSyncAt: t0, Metadata: "{}", Cursors: "{}", LeaseToken: "lease-1"}
	require.NoError(t, db.Create(&c).Error)
	b.connID = c.ID
	return b
}

func (b *bundle) conn(t testing.TB) *models.Connection {
	t.Helper()
	var c models.Connection
	require.NoError(t, b.db.First(&c, "id = ?", b.connID).Error)
	return &c
}

func (b *bundle) run(t *testing.T) (Result, error) {
	t.Helper()
	return b.runner.Run(context.Background(), b.conn(t))
}

func (b *bundle) cursors(t *testing.T) map[string]string {
	t.Helper()
	m, err := decodeCursors(b.conn(t).Cursors)
	require.NoError(t, err)
	return m
}

func (b *bundle) snapshot(t *testing.T, id string) models.Snapshot {
	t.Helper()
	var s models.Snapshot
	require.NoError(t, b.db.First(&s, "connection_id = ? AND remote_id = ?", b.connID, id).Error)
	return s
}

func (b *bundle) probes(t *testing.T) int64 {
	t.Helper()
	var n int64
	require.NoError(t, b.db.Model(&probe{}).Count(&n).Error)
	return n
}

// dataEvents filters out sync/* events.
func dataEvents(envs []*models.Envelope) []*models.Envelope {
	var out []*models.Envelope
	for _, e := range envs {
		if !strings.HasPrefix(e.Topic, "sync/") {
			out = append(out, e)
		}
	}
	return out
}

func topicsOf(envs []*models.Envelope) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.Topic + ":" + e.UpdateType
	}
	return out
}
