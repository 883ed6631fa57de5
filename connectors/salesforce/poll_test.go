package salesforce_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/salesforce"
	"github.com/tributary/tributary/connectors/salesforce/fake"
	"github.com/tributary/tributary/models"
)

func list(t *testing.T, b *bundle, c *connectors.Conn, req connectors.ListRequest) ([]connectors.Page, error) {
	t.Helper()
	var pages []connectors.Page
	err := b.conn.ListChanges(t.Context(), c, req, func(p connectors.Page) error {
		pages = append(pages, p)
		return nil
	})
	return pages, err
}

func TestPagingAndCursors(t *testing.T) {
	b := setup(t, fake.WithPageSize(2))
	c := b.newConn(t)
	var ids []string
	for i := range 5 {
		v, _ := sample(models.ObjectContacts, i)
		id, err := b.fake.Create(c.ExternalID, "Contact", v)
		require.NoError(t, err)
		ids = append(ids, id)
		if i != 1 { // records 1 and 2 share a SystemModstamp across a page boundary
			b.clock.Advance(time.Second)
		}
	}
	pages, err := list(t, b, c, connectors.ListRequest{Object: models.ObjectContacts, PageSize: 2})
	require.NoError(t, err)
	require.Len(t, pages, 3)
	var got []string
	prev := ""
	for _, p := range pages {
		require.NotEmpty(t, p.Cursor)
		require.GreaterOrEqual(t, p.Cursor, prev, "cursor never goes back")
		last := p.Records[len(p.Records)-1]
		require.Equal(t, last.RemoteUpdatedAt.Format(time.RFC3339Nano), p.Cursor, "a page's cursor is its last modstamp, never beyond")
		prev = p.Cursor
		for _, r := range p.Records {
			got = append(got, r.RemoteID)
		}
	}
	require.Equal(t, ids, got, "ordered by SystemModstamp, Id")

	// From the middle page's cursor: the lookback re-reads the tie and later rows.
	pages, err = list(t, b, c, connectors.ListRequest{Object: models.ObjectContacts, Cursor: pages[0].Cursor, PageSize: 2})
	require.NoError(t, err)
	got = nil
	for _, p := range pages {
		for _, r := range p.Records {
			got = append(got, r.RemoteID)
		}
	}
	require.Equal(t, ids, got, "all five are within the lookback")

	// Past the lookback, only newer records are listed.
	b.clock.Advance(time.Hour)
	v, _ := sample(models.ObjectContacts, 9)
	late, err := b.fake.Create(c.ExternalID, "Contact", v)
	require.NoError(t, err)
	prevT, err := time.Parse(time.RFC3339Nano, prev)
	require.NoError(t, err)
	pages, err = list(t, b, c, connectors.ListRequest{Object: models.ObjectContacts, Cursor: prevT.Add(time.Hour).Format(time.RFC3339Nano)})
	require.NoError(t, err)
	require.Equal(t, 1, len(pages))
	require.Equal(t, 1, len(pages[0].Records))
	require.Equal(t, late, pages[0].Records[0].RemoteID)

	// Re-polling from that cursor re-reads the overlap and keeps the cursor.
	cur := pages[0].Cursor
	pages, err = list(t, b, c, connectors.ListRequest{Object: models.ObjectContacts, Cursor: cur})
	require.NoError(t, err)
	require.Equal(t, 1, len(pages))
	require.Equal(t, 1, len(pages[0].Records))
	require.Equal(t, cur, pages[0].Cursor)

	// An empty result keeps the cursor it was given.
	curT, err := time.Parse(time.RFC3339Nano, cur)
	require.NoError(t, err)
	far := curT.Add(time.Hour).Format(time.RFC3339Nano)
	pages, err = list(t, b, c, connectors.ListRequest{Object: models.ObjectContacts, Cursor: far})
	require.NoError(t, err)
	require.Equal(t, 1, len(pages))
	require.Empty(t, pages[0].Records)
	require.Equal(t, far, pages[0].Cursor)

	_, err = list(t, b, c, connectors.ListRequest{Object: models.ObjectContacts, Cursor: "yesterday"})
	require.ErrorContains(t, err, "bad cursor")
	_, err = list(t, b, c, connectors.ListRequest{Object: models.ObjectOrders})
	require.ErrorIs(t, err, connectors.ErrUnsupportedObject)
}

// recorder is a fake-fronting server that records request URIs and can
// replace answers.
func recorder(t *testing.T, f http.Handler, override func(w http.ResponseWriter, r *http.Request) bool) (*httptest.Server, *[]string) {
	t.Helper()
	var uris []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uris = append(uris, r.URL.RequestURI())
		if override != nil && override(w, r) {
			return
		}
		f.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &uris
}

func TestSOQLShape(t *testing.T) {
	b := setup(t, fake.WithPageSize(1))
	c := b.newConn(t)
	for range 2 {
		_, err := b.fake.Create(c.ExternalID, "Account", map[string]any{"Name": "A"})
		require.NoError(t, err)
	}
	srv, uris := recorder(t, b.fake, nil)
	c.Metadata["instance_url"] = srv.URL
	conn := salesforce.New(connectors.AppConfig{}, salesforce.WithClock(b.clock.Now))
	cursor := "2026-11-22T10:07:30.5Z"
	require.NoError(t, conn.ListChanges(t.Context(), c, connectors.ListRequest{Object: models.ObjectAccounts, Cursor: cursor}, func(connectors.Page) error { return nil }))
	require.Len(t, *uris, 1, "both accounts are older than the cursor")
	first := (*uris)[0]
	require.True(t, strings.HasPrefix(first, "/services/data/v60.0/query?q=SELECT+Id%2C+Name%2C"), first)
	require.Contains(t, first, "+FROM+Account+WHERE+SystemModstamp+%3E%3D+2026-11-22T10%3A02%3A30Z+ORDER+BY+SystemModstamp%2C+Id")

	*uris = nil
	require.NoError(t, conn.ListChanges(t.Context(), c, connectors.ListRequest{Object: models.ObjectAccounts, FullScan: true, Cursor: cursor}, func(connectors.Page) error { return nil }))
	require.Len(t, *uris, 2)
	require.NotContains(t, (*uris)[0], "WHERE")
	require.Regexp(t, `^/services/data/v60\.0/query/01gRO\d{10}[A-Z0-5]{3}-1$`, (*uris)[1])
}

func TestMalformedPages(t *testing.T) {
	for name, body := range map[string]string{
		"not json":           `<html>`,
		"no done":            `{"totalSize":1,"records":[]}`,
		"done false, no url": `{"totalSize":3,"done":false,"records":[]}`,
		"foreign next url":   `{"totalSize":3,"done":false,"nextRecordsUrl":"https://evil.example/services/data/v60.0/query/x-1","records":[]}`,
		"record not object":  `{"totalSize":1,"done":true,"records":[42]}`,
		"bad date":           `{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Account"},"Id":"001RO0000000001AAA","SystemModstamp":"yesterday"}]}`,
		"no modstamp":        `{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Account"},"Id":"001RO0000000001AAA","Name":"A"}]}`,
		"wrong type":         `{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Contact"},"Id":"003RO0000000001AAA"}]}`,
		"amount as string":   `{"totalSize":1,"done":true,"records":[{"attributes":{"type":"Account"},"Id":"001RO0000000001AAA","NumberOfEmployees":"ten","SystemModstamp":"2026-11-22T10:23:34.000+0000"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			b := setup(t)
			c := b.newConn(t)
			srv, _ := recorder(t, b.fake, func(w http.ResponseWriter, r *http.Request) bool {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(body))
				return true
			})
			c.Metadata["instance_url"] = srv.URL
			conn := salesforce.New(connectors.AppConfig{})
			called := false
			err := conn.ListChanges(t.Context(), c, connectors.ListRequest{Object: models.ObjectAccounts, Cursor: "2026-11-22T10:00:00Z"}, func(connectors.Page) error {
				called = true
				return nil
			})
			require.Error(t, err)
			require.False(t, called, "no page (and no cursor) on a malformed answer")
		})
	}
}

func TestErrorMapping(t *testing.T) {
	cases := []struct {
		name   string
		status int
		header http.Header
		body   string
		check  func(t *testing.T, err error)
	}{
		{"daily limit", 403, nil, `[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, func(t *testing.T, err error) {
			var rl *connectors.RateLimitedError
			require.ErrorAs(t, err, &rl)
			require.Equal(t, time.Hour, rl.RetryAfter)
		}},
		{"concurrent limit", 403, nil, `[{"message":"ConcurrentPerOrgLongTxn Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]`, func(t *testing.T, err error) {
			var rl *connectors.RateLimitedError
			require.ErrorAs(t, err, &rl)
			require.Equal(t, time.Minute, rl.RetryAfter)
		}},
		{"429 with Retry-After", 429, http.Header{"Retry-After": {"17"}}, `[]`, func(t *testing.T, err error) {
			var rl *connectors.RateLimitedError
			require.ErrorAs(t, err, &rl)
			require.Equal(t, 17*time.Second, rl.RetryAfter)
		}},
		{"503", 503, nil, `[{"message":"Server unavailable","errorCode":"SERVER_UNAVAILABLE"}]`, func(t *testing.T, err error) {
			var pe *connectors.ProviderError
			require.ErrorAs(t, err, &pe)
			require.True(t, pe.Temporary)
			require.Equal(t, "SERVER_UNAVAILABLE", pe.Code)
		}},
		{"malformed query", 400, nil, `[{"message":"unexpected token","errorCode":"MALFORMED_QUERY"}]`, func(t *testing.T, err error) {
			var pe *connectors.ProviderError
			require.ErrorAs(t, err, &pe)
			require.False(t, pe.Temporary)
			require.Equal(t, "MALFORMED_QUERY", pe.Code)
		}},
		{"401 after refresh", 401, nil, `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`, func(t *testing.T, err error) {
			require.ErrorIs(t, err, connectors.ErrUnauthorized)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t)
			c := b.newConn(t)
			var refreshes atomic.Int32
			inner := c.Refresh
			c.Refresh = func(ctx context.Context) error { refreshes.Add(1); return inner(ctx) }
			srv, uris := recorder(t, b.fake, func(w http.ResponseWriter, r *http.Request) bool {
				for k, v := range tc.header {
					w.Header()[k] = v
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
				return true
			})
			c.Metadata["instance_url"] = srv.URL
			err := salesforce.New(connectors.AppConfig{}).ListChanges(t.Context(), c, connectors.ListRequest{Object: models.ObjectAccounts}, func(connectors.Page) error { return nil })
			require.Error(t, err)
			tc.check(t, err)
			if tc.status == 401 {
				require.Equal(t, int32(1), refreshes.Load(), "one refresh, then give up")
				require.Len(t, *uris, 2)
			} else {
				require.Zero(t, refreshes.Load())
			}
		})
	}
}

func TestRefreshRejected(t *testing.T) {
	b := setup(t)
	c := b.newConn(t)
	c.Refresh = func(ctx context.Context) error {
		return errors.Join(errors.New("invalid_grant"), connectors.ErrUnauthorized)
	}
	b.fake.FailNext(c.ExternalID, fake.FailExpiredToken, 1)
	_, err := list(t, b, c, connectors.ListRequest{Object: models.ObjectAccounts})
	require.ErrorIs(t, err, connectors.ErrUnauthorized)
}

func TestListDeletedWindow(t *testing.T) {
	b := setup(t)
	c := b.newConn(t)
	id, err := b.fake.Create(c.ExternalID, "Lead", map[string]any{"LastName": "Gone", "Company": "X"})
	require.NoError(t, err)
	b.clock.Advance(10 * time.Minute)
	require.NoError(t, b.fake.Delete(c.ExternalID, "Lead", id))
	now := b.clock.Now()

	// A window ending in the future is capped at now and still finds it.
	dels, err := b.conn.ListDeleted(t.Context(), c, models.ObjectLeads, now.Add(-time.Hour), now.Add(24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, []connectors.Deletion{{RemoteID: id, DeletedAt: now}}, dels)

	// A window shorter than Salesforce's two-minute minimum is widened.
	dels, err = b.conn.ListDeleted(t.Context(), c, models.ObjectLeads, now, now)
	require.NoError(t, err)
	require.Len(t, dels, 1)

	// Before the deletion: nothing.
	dels, err = b.conn.ListDeleted(t.Context(), c, models.ObjectLeads, now.Add(-time.Hour), now.Add(-5*time.Minute))
	require.NoError(t, err)
	require.Empty(t, dels)

	// Exactly at the 15-day edge is fine; one minute earlier is expired.
	_, err = b.conn.ListDeleted(t.Context(), c, models.ObjectLeads, now.Add(-salesforce.DeletedRetention), now)
	require.NoError(t, err)
	_, err = b.conn.ListDeleted(t.Context(), c, models.ObjectLeads, now.Add(-salesforce.DeletedRetention-time.Minute), now)
	require.ErrorIs(t, err, connectors.ErrWindowExpired)

	// The provider's INVALID_REPLICATION_DATE (here: connector clock a day
	// behind the org's) is ErrWindowExpired too.
	skewed := salesforce.New(connectors.AppConfig{BaseURL: b.srv.URL}, salesforce.WithClock(func() time.Time { return b.clock.Now().Add(-24 * time.Hour) }))
	_, err = skewed.ListDeleted(t.Context(), c, models.ObjectLeads, now.Add(-15*24*time.Hour-time.Hour), now)
	require.ErrorIs(t, err, connectors.ErrWindowExpired)
	require.ErrorContains(t, err, "earliest date available")

	// OpportunityStage has no getDeleted: sync must full-scan.
	_, err = b.conn.ListDeleted(t.Context(), c, models.ObjectStages, now.Add(-time.Hour), now)
	require.ErrorIs(t, err, connectors.ErrWindowExpired)

	// Fixture: the documented getDeleted body parses.
	srv, _ := recorder(t, b.fake, func(w http.ResponseWriter, r *http.Request) bool {
		http.ServeFile(w, r, "testdata/get_deleted_docs.json")
		return true
	})
	c.Metadata["instance_url"] = srv.URL
	dels, err = salesforce.New(connectors.AppConfig{}, salesforce.WithClock(b.clock.Now)).ListDeleted(t.Context(), c, models.ObjectAccounts, now.Add(-time.Hour), now)
	require.NoError(t, err)
	require.Equal(t, []connectors.Deletion{{RemoteID: "a00D0000008pQRAIA2", DeletedAt: time.Date(2013, 5, 7, 22, 7, 19, 0, time.UTC)}}, dels)
}
