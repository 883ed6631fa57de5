package shopify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/shopify/fake"
	"github.com/tributary/tributary/models"
)

// rawGet calls the fake's Admin API directly.
func rawGet(t *testing.T, b *bundle, c *connectors.Conn, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.srv.URL+"/admin/api/2025-01/"+path, nil)
	require.NoError(t, err)
	req.Header.Set("X-Shopify-Access-Token", c.Credentials["access_token"])
	resp, err := b.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

func TestFakePagingRules(t *testing.T) {
	b := setup(t)
	c := b.newConn(t)
	for range 5 {
		b.fake.Create(c.ExternalID, fake.Orders, nil)
	}
	// Single page: no link header at all.
	resp, body := rawGet(t, b, c, "orders.json?status=any&limit=10")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, resp.Header.Values("Link"))
	require.Equal(t, "1/40", resp.Header.Get("X-Shopify-Shop-Api-Call-Limit"))
	var env map[string][]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(body), &env))
	require.Len(t, env["orders"], 5)

	// First page: next only; the header name is sent in lower case.
	resp, _ = rawGet(t, b, c, "orders.json?status=any&limit=2&updated_at_min=2005-07-31T15:57:11-04:00")
	link := resp.Header.Get("Link")
	require.Contains(t, link, `rel="next"`)
	require.NotContains(t, link, `rel="previous"`)
	next, err := nextPageInfo(link)
	require.NoError(t, err)

	// Filters may not accompany page_info.
	resp, body = rawGet(t, b, c, "orders.json?limit=2&status=any&page_info="+url.QueryEscape(next))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, "status cannot be passed when page_info is present")
	// page_info is opaque: a modified one is rejected.
	resp, _ = rawGet(t, b, c, "orders.json?limit=2&page_info="+url.QueryEscape(next[:len(next)-2]+"xx"))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	// Middle page: previous and next.
	resp, _ = rawGet(t, b, c, "orders.json?limit=2&page_info="+url.QueryEscape(next))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Header.Get("link"), `rel="previous"`)
	require.Contains(t, resp.Header.Get("link"), `rel="next"`)

	// Default order status is open: a cancelled order only shows with status=any.
	id := b.fake.Create(c.ExternalID, fake.Orders, map[string]any{"cancelled_at": "2025-03-01T07:00:00-05:00"})
	_, body = rawGet(t, b, c, "orders.json?limit=250")
	require.NotContains(t, body, `"id":`+jsonInt(id))
	_, body = rawGet(t, b, c, "orders.json?limit=250&status=any")
	require.Contains(t, body, `"id":`+jsonInt(id))

	// Missing or unknown token: Shopify's 401 body.
	req, _ := http.NewRequest(http.MethodGet, b.srv.URL+"/admin/api/2025-01/orders.json", nil)
	r2, err := b.srv.Client().Do(req)
	require.NoError(t, err)
	raw, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	require.Equal(t, http.StatusUnauthorized, r2.StatusCode)
	require.JSONEq(t, `{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}`, string(raw))
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

// pages lists object and returns the pages' record ids and cursors.
func pages(t *testing.T, b *bundle, c *connectors.Conn, req connectors.ListRequest) (ids [][]string, cursors []string) {
	t.Helper()
	require.NoError(t, b.conn.ListChanges(t.Context(), c, req, func(p connectors.Page) error {
		var page []string
		for _, r := range p.Records {
			page = append(page, r.RemoteID)
		}
		ids = append(ids, page)
		cursors = append(cursors, p.Cursor)
		return nil
	}))
	return ids, cursors
}

func TestPollCursors(t *testing.T) {
	b := setup(t)
	c := b.newConn(t)
	var created []string
	for i := range 5 {
		created = append(created, b.harness().create(t, c, models.ObjectCustomers))
		if i%2 == 1 {
			b.clock.Advance(time.Minute)
		}
	}
	// t0: 0,1  t0+1m: 2,3  t0+2m: 4 — pages of 2 in updated_at, id order.
	ids, cursors := pages(t, b, c, connectors.ListRequest{Object: models.ObjectCustomers, PageSize: 2})
	require.Equal(t, [][]string{created[0:2], created[2:4], created[4:5]}, ids)
	// Shopify's REST docs list no "order" parameter, so pages come in the
	// shop's order and only the completed listing moves the cursor.
	require.Equal(t, formatCursor(t0.Add(2*time.Minute)), cursors[2], "the cursor moves when the listing completes")
	for _, cur := range cursors[:2] {
		at, pi := splitResume(cur)
		require.Empty(t, at, "no time covered before the listing completes")
		require.NotEmpty(t, pi, "a mid-listing cursor carries the next page_info")
	}
	// An interrupted listing goes on from the page after the one stored.
	resumed, _ := pages(t, b, c, connectors.ListRequest{Object: models.ObjectCustomers, Cursor: cursors[0], PageSize: 2})
	require.Equal(t, [][]string{created[2:4], created[4:5]}, resumed)

	// A record updated after the cursor is found; with the lookback, so are
	// its neighbours within 5 minutes.
	b.clock.Advance(10 * time.Minute)
	b.harness().update(t, c, models.ObjectCustomers, created[0])
	ids, cursors = pages(t, b, c, connectors.ListRequest{Object: models.ObjectCustomers, Cursor: cursors[2], PageSize: 2})
	require.Equal(t, [][]string{created[1:3], created[3:5], {created[0]}}, ids, "cursor t0+2m − 5m lookback re-reads from t0")
	require.Equal(t, formatCursor(t0.Add(12*time.Minute)), cursors[len(cursors)-1])

	// Nothing new: the listing re-reads within the lookback and keeps the cursor.
	last := cursors[len(cursors)-1]
	ids, cursors = pages(t, b, c, connectors.ListRequest{Object: models.ObjectCustomers, Cursor: last, PageSize: 2})
	require.Equal(t, [][]string{{created[0]}}, ids)
	require.Equal(t, []string{last}, cursors)

	// A full scan lists every live record; a deleted record is simply
	// absent. REST has no deleted-records endpoint, so ListDeleted always
	// asks sync for that full scan (without it a poll never sees a
	// deletion). An interrupted scan given its last page cursor goes on from
	// there (updated_at order: what came before was listed).
	b.harness().delete(t, c, models.ObjectCustomers, created[1])
	ids, _ = pages(t, b, c, connectors.ListRequest{Object: models.ObjectCustomers, FullScan: true, PageSize: 250})
	require.ElementsMatch(t, []string{created[0], created[2], created[3], created[4]}, ids[0])
	ids, _ = pages(t, b, c, connectors.ListRequest{Object: models.ObjectCustomers, Cursor: last, FullScan: true, PageSize: 250})
	require.Equal(t, [][]string{{created[0]}}, ids, "resumed at the cursor, less the lookback")
	_, err := b.conn.ListDeleted(t.Context(), c, models.ObjectCustomers, t0, t0.Add(time.Hour))
	require.ErrorIs(t, err, connectors.ErrWindowExpired)
	_, err = b.conn.ListDeleted(t.Context(), c, models.ObjectContacts, t0, t0.Add(time.Hour))
	require.ErrorIs(t, err, connectors.ErrUnsupportedObject)

	// A bad cursor is an error, not a panic.
	require.Error(t, b.conn.ListChanges(t.Context(), c, connectors.ListRequest{Object: models.ObjectCustomers, Cursor: "yesterday"}, func(connectors.Page) error { return nil }))
	require.ErrorIs(t, b.conn.ListChanges(t.Context(), c, connectors.ListRequest{Object: "contacts"}, func(connectors.Page) error { return nil }), connectors.ErrUnsupportedObject)
}

// stub serves one canned response for every API request.
func stub(t *testing.T, status int, header http.Header, body string) (*Connector, *connectors.Conn) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	k := New(connectors.AppConfig{BaseURL: srv.URL})
	return k, &connectors.Conn{ExternalID: "s.myshopify.com", Metadata: map[string]string{"shop": "s.myshopify.com"},
		Credentials: map[string]string{"access_token": "t"}, HTTP: srv.Client()}
}

func TestPollErrors(t *testing.T) {
	list := func(k *Connector, c *connectors.Conn) (int, error) {
		calls := 0
		err := k.ListChanges(t.Context(), c, connectors.ListRequest{Object: models.ObjectOrders, Cursor: formatCursor(t0)}, func(connectors.Page) error {
			calls++
			return nil
		})
		return calls, err
	}
	t.Run("429 with fractional Retry-After", func(t *testing.T) {
		k, c := stub(t, 429, http.Header{"Retry-After": {"1.5"}, "X-Shopify-Shop-Api-Call-Limit": {"40/40"}}, `{"errors":"Exceeded 2 calls per second for api client."}`)
		_, err := list(k, c)
		var rl *connectors.RateLimitedError
		require.True(t, errors.As(err, &rl), "%v", err)
		require.Equal(t, 1500*time.Millisecond, rl.RetryAfter)
		require.Contains(t, rl.Reason, "40/40")
	})
	t.Run("5xx is temporary", func(t *testing.T) {
		k, c := stub(t, 503, nil, `{"errors":"Service Unavailable"}`)
		_, err := list(k, c)
		var pe *connectors.ProviderError
		require.True(t, errors.As(err, &pe))
		require.True(t, pe.Temporary)
		require.Equal(t, 503, pe.StatusCode)
	})
	t.Run("401 without refresh", func(t *testing.T) {
		k, c := stub(t, 401, nil, `{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}`)
		_, err := list(k, c)
		require.ErrorIs(t, err, connectors.ErrUnauthorized)
		require.Contains(t, err.Error(), "Invalid API key")
	})
	t.Run("401 after one refresh", func(t *testing.T) {
		k, c := stub(t, 401, nil, `{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}`)
		refreshes := 0
		c.Refresh = func(context.Context) error { refreshes++; return nil }
		_, err := list(k, c)
		require.ErrorIs(t, err, connectors.ErrUnauthorized)
		require.Equal(t, 1, refreshes)
	})
	for name, body := range map[string]string{
		"not json":        `<html>`,
		"no orders array": `{"products":[]}`,
		"orders not list": `{"orders":{}}`,
		"bad record":      `{"orders":[{"id":1,"updated_at":"soon"}]}`,
	} {
		t.Run("malformed page: "+name, func(t *testing.T) {
			k, c := stub(t, 200, nil, body)
			calls, err := list(k, c)
			require.Error(t, err)
			require.Zero(t, calls, "no page, so no cursor advance")
		})
	}
	t.Run("next link without page_info", func(t *testing.T) {
		k, c := stub(t, 200, http.Header{"link": {`<https://s.myshopify.com/admin/api/2025-01/orders.json?limit=2>; rel="next"`}}, `{"orders":[]}`)
		calls, err := list(k, c)
		require.Error(t, err)
		require.Zero(t, calls)
	})
	t.Run("page_info loop", func(t *testing.T) {
		k, c := stub(t, 200, http.Header{"link": {`<https://s.myshopify.com/admin/api/2025-01/orders.json?limit=2&page_info=abc>; rel="next"`}}, `{"orders":[]}`)
		calls, err := list(k, c)
		require.Error(t, err)
		require.Equal(t, 1, calls)
	})
}

func TestNextPageInfo(t *testing.T) {
	for link, want := range map[string]string{
		``: ``,
		`<https://test-shop.myshopify.com/path?limit=1&page_info=page-info>; rel="next"`:                                                                                           `page-info`,
		`<https://test-shop.myshopify.com/path?limit=1&page_info=page-info>; rel="previous", <https://test-shop.myshopify.com/path?limit=1&page_info=other-page-info>; rel="next"`: `other-page-info`,
		`<https://test-shop.myshopify.com/path?limit=1&page_info=page-info>; rel="previous"`:                                                                                       ``,
	} {
		got, err := nextPageInfo(link)
		require.NoError(t, err, link)
		require.Equal(t, want, got, link)
	}
}
