// Package conformance is the one suite every connector must pass against its
// provider fake. A connector's test builds a Harness around its fake and calls
// Run. The suite works at the connector boundary (no storage); the same
// Harness drives the end-to-end variant through the real poller, inbound
// receiver and processor, reconcile and forwarding on SQLite and PostgreSQL
// (sync/synctest.Run), which every connector's TestConformance also calls.
package conformance

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// Harness adapts one connector and its fake to the suite.
type Harness struct {
	// Connector is the app under test, configured to talk to the fake.
	Connector connectors.Connector
	// Objects are the unified objects to exercise (all the app supports).
	Objects []string
	// NewConn returns a connection to a fresh, empty fake tenant.
	NewConn func(t *testing.T) *connectors.Conn
	// Create makes a record of object in the fake and returns its remote id.
	Create func(t *testing.T, c *connectors.Conn, object string) string
	// Update changes a field of the record that the unified model carries.
	Update func(t *testing.T, c *connectors.Conn, object, remoteID string)
	// Delete deletes the record in the fake.
	Delete func(t *testing.T, c *connectors.Conn, object, remoteID string)
	// Advance moves the fake's clock forward (so modification times differ).
	Advance func(d time.Duration)
	// Now is the fake's clock, shared by the connector (default time.Now).
	// The sync-path suite (sync/synctest) runs the poller, the inbound
	// processor and forwarding on it.
	Now func() time.Time
	// FailNext makes the fake answer the next n API requests of c with the
	// given kind of failure: "rate_limit" (429 or the provider's equivalent),
	// "server_error" (5xx), "expired_token" (the provider's expired-session
	// answer; the connector must refresh once and succeed).
	FailNext func(t *testing.T, c *connectors.Conn, kind string, n int)
	// Webhooks returns, and forgets, the signed webhook requests the fake sent
	// for c since the last call. Nil when the app has no native capture.
	Webhooks func(t *testing.T, c *connectors.Conn) []*connectors.InboundRequest
	// WebhookObjects are the objects with native webhook notices (default:
	// Objects).
	WebhookObjects []string
	// PageSize is a page size small enough that PagesOf records span pages.
	PageSize int
	// TokenLifetime is how long the fake's access tokens live (0: they do
	// not expire). The sync-path suite moves the clock past it between runs
	// and requires the next run to refresh and complete.
	TokenLifetime time.Duration
}

// Run runs the whole suite.
func Run(t *testing.T, h Harness) {
	t.Helper()
	require.NotEmpty(t, h.Objects, "harness must list objects")
	info := h.Connector.Info()
	require.NotEmpty(t, info.Name)
	for _, obj := range h.Objects {
		require.Contains(t, info.Objects, obj)
		require.NotEmpty(t, models.TopicFor(obj), "object %s has no topic", obj)
	}
	if slices.Contains(info.Capture, connectors.CapturePolling) {
		t.Run("polling", func(t *testing.T) {
			for _, obj := range h.Objects {
				t.Run(obj, func(t *testing.T) { testPollLifecycle(t, h, obj) })
			}
			t.Run("paging", func(t *testing.T) { testPaging(t, h) })
			if h.FailNext != nil {
				t.Run("rate_limit", func(t *testing.T) { testFailure(t, h, "rate_limit") })
				t.Run("server_error", func(t *testing.T) { testFailure(t, h, "server_error") })
				t.Run("expired_token", func(t *testing.T) { testExpiredToken(t, h) })
			}
		})
	}
	if slices.Contains(info.Capture, connectors.CaptureWebhook) {
		t.Run("webhook", func(t *testing.T) {
			objs := h.WebhookObjects
			if objs == nil {
				objs = h.Objects
			}
			for _, obj := range objs {
				t.Run(obj, func(t *testing.T) { testWebhookLifecycle(t, h, obj) })
			}
			t.Run("tampered", func(t *testing.T) { testTampered(t, h) })
		})
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

// poll lists all changes of object from cursor and returns the records by
// remote id (last wins) and the final cursor.
func poll(t *testing.T, h Harness, c *connectors.Conn, object, cursor string, full bool) (map[string]models.Record, string) {
	t.Helper()
	lister, ok := h.Connector.(connectors.ChangeLister)
	require.True(t, ok, "polling app must implement ChangeLister")
	got := map[string]models.Record{}
	err := lister.ListChanges(ctx(t), c, connectors.ListRequest{Object: object, Cursor: cursor, FullScan: full, PageSize: h.PageSize}, func(p connectors.Page) error {
		for _, r := range p.Records {
			require.Equal(t, object, r.Object)
			require.NotEmpty(t, r.RemoteID)
			require.NotNil(t, r.Data, "record %s has no unified data", r.RemoteID)
			got[r.RemoteID] = r
		}
		if p.Cursor != "" {
			cursor = p.Cursor
		}
		return nil
	})
	require.NoError(t, err)
	return got, cursor
}

func testPollLifecycle(t *testing.T, h Harness, object string) {
	c := h.NewConn(t)
	_, cursor := poll(t, h, c, object, "", false)
	h.Advance(time.Minute)

	id := h.Create(t, c, object)
	got, next := poll(t, h, c, object, cursor, false)
	require.Contains(t, got, id, "created record not listed after cursor %q", cursor)
	before := got[id]
	require.False(t, before.Deleted)
	h.Advance(time.Minute)

	h.Update(t, c, object, id)
	got, _ = poll(t, h, c, object, next, false)
	require.Contains(t, got, id, "updated record not listed after cursor %q", next)
	require.NotEqual(t, jsonOf(t, before.Data), jsonOf(t, got[id].Data), "update did not change the unified record")
	if !before.RemoteUpdatedAt.IsZero() {
		require.True(t, got[id].RemoteUpdatedAt.After(before.RemoteUpdatedAt), "remote updated time did not advance")
	}
	h.Advance(time.Minute)

	h.Delete(t, c, object, id)
	requireDeletionSeen(t, h, c, object, id, before.RemoteUpdatedAt)
}

func requireDeletionSeen(t *testing.T, h Harness, c *connectors.Conn, object, id string, created time.Time) {
	t.Helper()
	if dl, ok := h.Connector.(connectors.DeletionLister); ok {
		since := created.Add(-time.Hour)
		if created.IsZero() {
			since = time.Now().Add(-24 * time.Hour)
		}
		dels, err := dl.ListDeleted(ctx(t), c, object, since, time.Now().Add(24*time.Hour))
		if errors.Is(err, connectors.ErrWindowExpired) {
			// This object keeps no deletion log: sync falls back to a full scan.
			got, _ := poll(t, h, c, object, "", true)
			require.NotContains(t, got, id, "full scan still lists a deleted record")
			return
		}
		require.NoError(t, err)
		ids := make([]string, 0, len(dels))
		for _, d := range dels {
			ids = append(ids, d.RemoteID)
		}
		require.Contains(t, ids, id, "deleted record not listed by ListDeleted")
		return
	}
	got, _ := poll(t, h, c, object, "", true)
	require.NotContains(t, got, id, "full scan still lists a deleted record")
}

func testPaging(t *testing.T, h Harness) {
	require.Positive(t, h.PageSize, "harness must set PageSize")
	c := h.NewConn(t)
	object := h.Objects[0]
	n := h.PageSize*2 + 1
	want := make([]string, 0, n)
	for range n {
		want = append(want, h.Create(t, c, object))
	}
	got, _ := poll(t, h, c, object, "", false)
	for _, id := range want {
		require.Contains(t, got, id, "record lost across pages")
	}
	full, _ := poll(t, h, c, object, "", true)
	require.Len(t, full, n, "full scan must list every record once")
}

func testFailure(t *testing.T, h Harness, kind string) {
	c := h.NewConn(t)
	object := h.Objects[0]
	h.Create(t, c, object)
	h.FailNext(t, c, kind, 1)
	lister := h.Connector.(connectors.ChangeLister)
	err := lister.ListChanges(ctx(t), c, connectors.ListRequest{Object: object, PageSize: h.PageSize}, func(connectors.Page) error { return nil })
	require.Error(t, err)
	switch kind {
	case "rate_limit":
		var rl *connectors.RateLimitedError
		require.True(t, errors.As(err, &rl), "want RateLimitedError, got %v", err)
	case "server_error":
		var pe *connectors.ProviderError
		require.True(t, errors.As(err, &pe), "want ProviderError, got %v", err)
		require.True(t, pe.Temporary)
	}
	// The next run succeeds.
	got, _ := poll(t, h, c, object, "", false)
	require.Len(t, got, 1)
}

func testExpiredToken(t *testing.T, h Harness) {
	c := h.NewConn(t)
	object := h.Objects[0]
	id := h.Create(t, c, object)
	h.FailNext(t, c, "expired_token", 1)
	got, _ := poll(t, h, c, object, "", false)
	require.Contains(t, got, id, "listing must succeed after one refresh")
}

func notices(t *testing.T, h Harness, c *connectors.Conn) []connectors.Notice {
	t.Helper()
	recv := h.Connector.(connectors.WebhookReceiver)
	var out []connectors.Notice
	for _, req := range h.Webhooks(t, c) {
		require.NoError(t, recv.VerifyWebhook(req), "fake's webhook must verify")
		ns, err := recv.ParseWebhook(req)
		require.NoError(t, err)
		for _, n := range ns {
			require.Equal(t, c.ExternalID, n.ExternalID, "notice must route to its connection")
			out = append(out, n)
		}
	}
	return out
}

func testWebhookLifecycle(t *testing.T, h Harness, object string) {
	require.NotNil(t, h.Webhooks, "webhook app needs Harness.Webhooks")
	c := h.NewConn(t)
	h.Webhooks(t, c)
	id := h.Create(t, c, object)
	ns := notices(t, h, c)
	requireNotice(t, h, c, ns, object, id, false)
	h.Advance(time.Minute)
	h.Update(t, c, object, id)
	requireNotice(t, h, c, notices(t, h, c), object, id, false)
	h.Advance(time.Minute)
	h.Delete(t, c, object, id)
	requireNotice(t, h, c, notices(t, h, c), object, id, true)
}

func requireNotice(t *testing.T, h Harness, c *connectors.Conn, ns []connectors.Notice, object, id string, deleted bool) {
	t.Helper()
	for _, n := range ns {
		if n.Object != object || n.RemoteID != id || n.Deleted != deleted {
			continue
		}
		require.NotEmpty(t, n.EventID, "notice needs a provider event id for dedup")
		if !deleted && n.Record == nil {
			f, ok := h.Connector.(connectors.Fetcher)
			require.True(t, ok, "thin notices need a Fetcher")
			recs, err := f.FetchRecords(ctx(t), c, object, []string{id})
			require.NoError(t, err)
			require.Len(t, recs, 1)
			require.Equal(t, id, recs[0].RemoteID)
		}
		return
	}
	t.Fatalf("no %s notice (deleted=%v) for %s among %d notices", object, deleted, id, len(ns))
}

func testTampered(t *testing.T, h Harness) {
	c := h.NewConn(t)
	h.Webhooks(t, c)
	h.Create(t, c, h.Objects[0])
	reqs := h.Webhooks(t, c)
	require.NotEmpty(t, reqs)
	recv := h.Connector.(connectors.WebhookReceiver)
	req := *reqs[0]
	req.Body = append([]byte(nil), req.Body...)
	req.Body[len(req.Body)/2] ^= 0x01
	require.ErrorIs(t, recv.VerifyWebhook(&req), connectors.ErrBadSignature)
	unsigned := *reqs[0]
	unsigned.Header = unsigned.Header.Clone()
	for k := range unsigned.Header {
		delete(unsigned.Header, k)
	}
	require.ErrorIs(t, recv.VerifyWebhook(&unsigned), connectors.ErrBadSignature)
}
