// Package synctest is the sync-path half of the connector conformance suite:
// Run takes the conformance.Harness a connector's test already builds and
// drives the app through the real capture path on SQLite and on PostgreSQL —
// a connection row, poll.Runner with the real reconcile, inbound.Receiver and
// inbound.Processor fed with the webhooks the provider fake signed as the
// provider documents, and the real forwarding.Service storing the events —
// then checks what a subscriber would receive.
//
// It owns no tables and no production code; it only reads the events,
// inbox_items, sync_runs and connections rows the packages under test wrote.
package synctest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/conformance"
	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
	"github.com/tributary/tributary/sync/inbound"
	"github.com/tributary/tributary/sync/poll"
	"github.com/tributary/tributary/sync/reconcile"
)

// Test identity of every connection the suite makes.
const (
	userID   = "user-42"
	userName = "Gregg's Account"
)

// Run runs the sync-path suite for h on both databases. The harness must
// set Now (the fake's clock) so that the poller's deletion windows and the
// webhook timestamp checks agree with the fake.
func Run(t *testing.T, h conformance.Harness) {
	t.Helper()
	require.NotEmpty(t, h.Objects, "harness must list objects")
	if h.Now == nil {
		h.Now = time.Now
	}
	if h.PageSize == 0 {
		h.PageSize = 2
	}
	info := h.Connector.Info()
	polling := slices.Contains(info.Capture, connectors.CapturePolling)
	webhook := slices.Contains(info.Capture, connectors.CaptureWebhook)
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		t.Run("first_sync", func(t *testing.T) { testFirstSync(t, setup(t, db, h)) })
		if polling && h.FailNext != nil {
			t.Run("first_sync_deferred", func(t *testing.T) { testFirstSyncDeferred(t, setup(t, db, h)) })
		}
		if polling {
			t.Run("poll", func(t *testing.T) { testPoll(t, setup(t, db, h)) })
			t.Run("paging", func(t *testing.T) { testPaging(t, setup(t, db, h)) })
			t.Run("deleted_payload", func(t *testing.T) { testDeletedPayload(t, setup(t, db, h)) })
			if h.FailNext != nil {
				for _, kind := range []string{"rate_limit", "server_error"} {
					t.Run(kind, func(t *testing.T) { testDeferred(t, setup(t, db, h), kind) })
				}
				t.Run("token_refresh", func(t *testing.T) { testTokenRefresh(t, setup(t, db, h)) })
			}
			if h.TokenLifetime > 0 {
				t.Run("token_expiry", func(t *testing.T) { testTokenExpiry(t, setup(t, db, h)) })
			}
		}
		if webhook {
			// bad_signature runs first: it requires an empty inbox.
			t.Run("bad_signature", func(t *testing.T) { testBadSignature(t, setup(t, db, h)) })
			t.Run("webhook", func(t *testing.T) { testWebhook(t, setup(t, db, h)) })
			if polling {
				t.Run("late_webhook", func(t *testing.T) { testLateWebhook(t, setup(t, db, h)) })
			}
		}
	})
}

// bundle is one connection of the app under test on a database, with the
// capture machinery around it.
type bundle struct {
	t       *testing.T
	h       conformance.Harness
	info    connectors.Info
	db      *gorm.DB
	account string
	conn    *connectors.Conn
	row     models.Connection
	runner  *poll.Runner
	recv    *inbound.Receiver
	proc    *inbound.Processor
	pub     *hookPublisher
	// seq is the last event sequence number taken.
	seq       int64
	refreshes atomic.Int64
	reauth    atomic.Int64
	mu        sync.Mutex
	onCursor  func()
}

var accounts atomic.Int64

func setup(t *testing.T, db *gorm.DB, h conformance.Harness) *bundle {
	t.Helper()
	b := &bundle{t: t, h: h, info: h.Connector.Info(), db: db,
		account: fmt.Sprintf("acc_sync%d", accounts.Add(1))}
	b.conn = h.NewConn(t)
	if inner := b.conn.Refresh; inner != nil {
		b.conn.Refresh = func(ctx context.Context) error {
			b.refreshes.Add(1)
			return inner(ctx)
		}
	}
	b.row = models.Connection{ID: models.NewID(models.PrefixConnection), AccountID: b.account, App: b.info.Name,
		UserID: userID, UserName: userName, Status: models.ConnectionActive, ExternalID: b.conn.ExternalID,
		Metadata: "{}", Cursors: "{}", NextSyncAt: h.Now().UTC()}
	require.NoError(t, db.Create(&b.row).Error)

	apps := connectors.NewRegistry(h.Connector)
	quiet := slog.New(slog.DiscardHandler)
	fwd := forwarding.New(forwarding.Config{DB: db, Now: h.Now, Logger: quiet})
	b.pub = &hookPublisher{inner: fwd, pages: map[string]int{}}
	rec := &reconcile.Reconciler{Now: h.Now}
	b.runner = &poll.Runner{DB: db, Apps: apps, Opener: opener{b}, Publisher: b.pub, Reconciler: rec,
		Now: h.Now, PageSize: h.PageSize, Logger: quiet}
	b.subscribe(fwd)
	b.hookCursorWrites()
	b.recv = &inbound.Receiver{DB: db, Apps: apps, Now: h.Now, Logger: quiet}
	b.proc = &inbound.Processor{DB: db, Apps: apps, Opener: opener{b}, Publisher: b.pub, Reconciler: rec, Now: h.Now, Logger: quiet}
	return b
}

// subscribe gives the account one subscription to every topic, so that
// Publish fans each event out to exactly one queued delivery; when the test
// ends, every event must have its delivery.
func (b *bundle) subscribe(fwd *forwarding.Service) {
	addr, topics := "https://receiver.example.com/hooks", []string{"*"}
	_, err := fwd.CreateSubscription(b.t.Context(), b.account, forwarding.SubscriptionInput{Address: &addr, Topic: &topics})
	require.NoError(b.t, err)
	b.t.Cleanup(func() {
		if b.t.Failed() {
			return
		}
		var events, deliveries, orphans int64
		require.NoError(b.t, b.db.Model(&models.Event{}).Where("account_id = ?", b.account).Count(&events).Error)
		require.NoError(b.t, b.db.Model(&models.Delivery{}).Where("account_id = ?", b.account).Count(&deliveries).Error)
		require.NoError(b.t, b.db.Model(&models.Delivery{}).Where("account_id = ? AND event_id NOT IN (?)", b.account,
			b.db.Model(&models.Event{}).Select("id").Where("account_id = ?", b.account)).Count(&orphans).Error)
		require.Equal(b.t, events, deliveries, "one queued delivery per event")
		require.Zero(b.t, orphans)
	})
}

// hookCursorWrites lets a test act right after the poller stored a page's
// cursor, inside that page's transaction (see afterCursorWrite).
func (b *bundle) hookCursorWrites() {
	name := "synctest:cursor:" + b.row.ID
	err := b.db.Callback().Raw().After("gorm:raw").Register(name, func(tx *gorm.DB) {
		if tx.Error != nil || !strings.HasPrefix(tx.Statement.SQL.String(), "UPDATE connections SET cursors") ||
			!slices.Contains(tx.Statement.Vars, any(b.row.ID)) {
			return
		}
		b.mu.Lock()
		fn := b.onCursor
		b.onCursor = nil
		b.mu.Unlock()
		if fn != nil {
			fn()
		}
	})
	require.NoError(b.t, err)
	b.t.Cleanup(func() { _ = b.db.Callback().Raw().Remove(name) })
}

// afterCursorWrite arms fn to run once, after the next page cursor the
// poller stores for the connection (silent pages included).
func (b *bundle) afterCursorWrite(fn func()) {
	b.mu.Lock()
	b.onCursor = fn
	b.mu.Unlock()
}

// opener hands the runner and the processor the harness's Conn for the
// bundle's connection row (sync/connections would decrypt credentials).
type opener struct{ b *bundle }

func (o opener) Open(_ context.Context, c *models.Connection) (*connectors.Conn, error) {
	if c.ID != o.b.row.ID {
		return nil, fmt.Errorf("synctest: no connection %s", c.ID)
	}
	return o.b.conn, nil
}

func (o opener) MarkNeedsReauth(context.Context, string, string) error {
	o.b.reauth.Add(1)
	return nil
}

// hookPublisher publishes through forwarding, counts the data pages (one
// Publish call per page with changes) per topic, and runs onData once, inside
// the page's transaction, after the next data publish.
type hookPublisher struct {
	inner  *forwarding.Service
	mu     sync.Mutex
	pages  map[string]int
	onData func()
}

func (p *hookPublisher) Publish(ctx context.Context, tx *gorm.DB, accountID string, events ...*models.Envelope) error {
	if err := p.inner.Publish(ctx, tx, accountID, events...); err != nil {
		return err
	}
	p.mu.Lock()
	topics := map[string]bool{}
	for _, e := range events {
		if !isSystem(e.Topic) {
			topics[e.Topic] = true
		}
	}
	for tp := range topics {
		p.pages[tp]++
	}
	var hook func()
	if len(topics) > 0 {
		hook, p.onData = p.onData, nil
	}
	p.mu.Unlock()
	if hook != nil {
		hook()
	}
	return nil
}

// afterFirstPage arms fn to run after the next page of changes is published.
func (p *hookPublisher) afterFirstPage(fn func()) {
	p.mu.Lock()
	p.onData = fn
	p.mu.Unlock()
}

func (p *hookPublisher) pagesOf(topic string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pages[topic]
}

func isSystem(topic string) bool {
	return strings.HasPrefix(topic, "sync/") || strings.HasPrefix(topic, "connection/")
}

// poll runs one poll of the connection as the scheduler would.
func (b *bundle) poll() poll.Result {
	b.t.Helper()
	var c models.Connection
	require.NoError(b.t, b.db.First(&c, "id = ?", b.row.ID).Error)
	res, err := b.runner.Run(b.t.Context(), &c)
	require.NoError(b.t, err, "poll: %+v", res)
	return res
}

// pollCompleted polls and requires a completed run.
func (b *bundle) pollCompleted() poll.Result {
	b.t.Helper()
	res := b.poll()
	require.Equal(b.t, poll.RunCompleted, res.Status, res.Error)
	return res
}

// initial runs the silent first sync and forgets its events.
func (b *bundle) initial() {
	b.t.Helper()
	res := b.pollCompleted()
	require.True(b.t, res.Initial)
	b.events()
	b.advance()
}

func (b *bundle) advance() { b.h.Advance(time.Minute) }

// events returns the events forwarding stored for the account since the
// last call, in sequence order, as receivers get them.
func (b *bundle) events() []models.Envelope {
	b.t.Helper()
	var rows []models.Event
	require.NoError(b.t, b.db.Where("account_id = ? AND seq > ?", b.account, b.seq).Order("seq").Find(&rows).Error)
	out := make([]models.Envelope, 0, len(rows))
	for _, r := range rows {
		var e models.Envelope
		require.NoError(b.t, json.Unmarshal(r.Body, &e), "event body %s", r.Body)
		require.Equal(b.t, r.ID, e.ID)
		require.Equal(b.t, r.Topic, e.Topic)
		out = append(out, e)
		b.seq = r.Seq
	}
	return out
}

// split separates data events from system events.
func split(envs []models.Envelope) (data, system []models.Envelope) {
	for _, e := range envs {
		if isSystem(e.Topic) {
			system = append(system, e)
		} else {
			data = append(data, e)
		}
	}
	return data, system
}

// dataEvents returns the new data events, requiring at most sync/* besides.
func (b *bundle) dataEvents() []models.Envelope {
	b.t.Helper()
	data, system := split(b.events())
	for _, e := range system {
		require.Equal(b.t, models.TopicSyncCompleted, e.Topic, "unexpected system event %s: %s", e.Topic, e.DataPayload)
	}
	return data
}

// remoteID reads dataPayload.remoteId.
func remoteID(t *testing.T, e models.Envelope) string {
	t.Helper()
	var c models.Common
	require.NoError(t, json.Unmarshal(e.DataPayload, &c), "payload %s", e.DataPayload)
	return c.RemoteID
}

// requireEnvelope checks what every data event of the connection carries.
func (b *bundle) requireEnvelope(e models.Envelope, updateType, source string) {
	b.t.Helper()
	require.True(b.t, strings.HasPrefix(e.ID, models.PrefixEvent+"_"), "event id %q", e.ID)
	require.Equal(b.t, updateType, e.UpdateType, "%s %s", e.Topic, e.DataPayload)
	require.Equal(b.t, source, e.Source)
	require.Equal(b.t, b.row.ID, e.ConnectionID)
	require.Equal(b.t, userID, e.UserID)
	require.Equal(b.t, userName, e.UserName)
	require.Equal(b.t, b.info.DisplayName, e.Name)
	require.Equal(b.t, models.CategoryOf(e.Topic), e.Category)
	require.False(b.t, e.EventTimestamp.IsZero())
	require.NotEmpty(b.t, e.DataPayload)
}

// requireOnePer requires exactly one event per (object, remote id) of want
// and nothing else, each of updateType from source.
func (b *bundle) requireOnePer(envs []models.Envelope, want map[string]string, updateType, source string) {
	b.t.Helper()
	got := map[string][]string{}
	for _, e := range envs {
		b.requireEnvelope(e, updateType, source)
		got[e.Topic] = append(got[e.Topic], remoteID(b.t, e))
	}
	exp := map[string][]string{}
	for object, id := range want {
		exp[models.TopicFor(object)] = []string{id}
	}
	require.Equal(b.t, exp, got, "want exactly one %s event per object (%s)", updateType, source)
}

// createEach creates one record of every object and returns object → id.
func (b *bundle) createEach(objects []string) map[string]string {
	ids := map[string]string{}
	for _, o := range objects {
		ids[o] = b.h.Create(b.t, b.conn, o)
	}
	return ids
}

// cursors reads the connection's stored cursors.
func (b *bundle) cursors() map[string]string {
	b.t.Helper()
	var c models.Connection
	require.NoError(b.t, b.db.First(&c, "id = ?", b.row.ID).Error)
	m := map[string]string{}
	require.NoError(b.t, json.Unmarshal([]byte(c.Cursors), &m))
	return m
}

func (b *bundle) count(model any, where string, args ...any) int64 {
	b.t.Helper()
	var n int64
	require.NoError(b.t, b.db.Model(model).Where(where, args...).Count(&n).Error)
	return n
}

// RunSignature feeds req — a webhook signed exactly as the provider's
// documentation or official libraries sign it (a published test vector) —
// through the real inbound.Receiver of app on both databases: it is
// accepted and stored once; the same request with its body or its signature
// altered, or with no headers, is refused as unauthorized and stores
// nothing. connector must be configured with the vector's secret (and a
// clock inside the provider's timestamp window).
func RunSignature(t *testing.T, connector connectors.Connector, req *connectors.InboundRequest, signatureHeader string) {
	t.Helper()
	app := connector.Info().Name
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		recv := &inbound.Receiver{DB: db, Apps: connectors.NewRegistry(connector), Logger: slog.New(slog.DiscardHandler)}
		count := func() int64 {
			var n int64
			require.NoError(t, db.Model(&models.InboxItem{}).Where("app = ?", app).Count(&n).Error)
			return n
		}
		body := *req
		body.Body = append([]byte(nil), req.Body...)
		body.Body[len(body.Body)/2] ^= 0x01
		sig := *req
		sig.Header = req.Header.Clone()
		v := []byte(sig.Header.Get(signatureHeader))
		require.NotEmpty(t, v, "the request carries no %s", signatureHeader)
		v[0] ^= 0x01
		sig.Header.Set(signatureHeader, string(v))
		bare := *req
		bare.Header = nil
		for name, r := range map[string]*connectors.InboundRequest{"body tampered": &body, "signature tampered": &sig, "unsigned": &bare} {
			err := recv.Receive(t.Context(), app, r)
			require.Error(t, err, name)
			require.Equal(t, models.ErrCodeUnauthorized, models.ErrorCode(err), "%s: %v", name, err)
		}
		require.Zero(t, count(), "a refused webhook stores nothing")
		require.NoError(t, recv.Receive(t.Context(), app, req), "a webhook signed as documented is accepted")
		require.NoError(t, recv.Receive(t.Context(), app, req), "a redelivery is accepted")
		require.Equal(t, int64(1), count(), "stored once")
	})
}
