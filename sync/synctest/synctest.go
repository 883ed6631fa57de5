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
	"fmt"
	"log/slog"
	"slices"
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
			t.Run("include_raw", func(t *testing.T) { testIncludeRaw(t, setup(t, db, h)) })
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
