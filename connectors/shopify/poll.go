package shopify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// linkRE matches one "<url>; rel=..." entry of a Link header.
var linkRE = regexp.MustCompile(`<([^>]*)>([^<]*)`)

// nextPageInfo returns the page_info of the rel="next" entry of a Link
// header, "" when there is none (single or last page).
func nextPageInfo(link string) (string, error) {
	for _, m := range linkRE.FindAllStringSubmatch(link, -1) {
		params := strings.ToLower(m[2])
		if !strings.Contains(params, `rel="next"`) && !strings.Contains(params, "rel=next") {
			continue
		}
		u, err := url.Parse(strings.TrimSpace(m[1]))
		if err != nil {
			return "", fmt.Errorf("bad next link %q: %w", m[1], err)
		}
		pi := u.Query().Get("page_info")
		if pi == "" {
			return "", fmt.Errorf("next link %q has no page_info", m[1])
		}
		return pi, nil
	}
	return "", nil
}

// formatCursor and parseCursor define the opaque cursor: the RFC 3339 UTC
// updated_at (nanoseconds) that the listing fully covered.
func formatCursor(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// resumeMark separates, in the cursor of a page that was not the listing's
// last, the covered time from the page_info of the next page: an
// interrupted listing or full scan (a rate limit) goes on from that page
// instead of starting over (pages come in the shop's order, so no time can
// say where it stopped). A page_info Shopify no longer accepts starts the
// listing over.
const resumeMark = "+page_info="

// splitResume returns the covered-time part of a cursor and its page_info.
func splitResume(s string) (string, string) {
	t, pi, _ := strings.Cut(s, resumeMark)
	return t, pi
}

func parseCursor(s string) (time.Time, error) {
	s, _ = splitResume(s)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("shopify: bad cursor %q: %w", s, err)
	}
	return t, nil
}

// parsePage decodes a list response {"<resource>": [...]} into records.
func parsePage(object, resource string, body []byte) ([]models.Record, error) {
	var env map[string]json.RawMessage
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("malformed %s page: %w", resource, err)
	}
	rawList, ok := env[resource]
	if !ok {
		return nil, fmt.Errorf("malformed %s page: no %q array", resource, resource)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(rawList, &items); err != nil {
		return nil, fmt.Errorf("malformed %s page: %w", resource, err)
	}
	recs := make([]models.Record, 0, len(items))
	for i, it := range items {
		r, err := normalize(object, it)
		if err != nil {
			return nil, fmt.Errorf("malformed %s page, item %d: %w", resource, i, err)
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// ListChanges lists the orders, customers or products updated since the
// cursor (minus Lookback) with GET {resource}.json?updated_at_min=…&order=
// updated_at asc (status=any for orders), following the Link header's
// rel="next" page_info. Each page's cursor is the updated_at of its last
// record (records come sorted by updated_at, id); should a page arrive out of
// order, the cursor stays put until the listing completes. FullScan lists
// every live record; Shopify's REST API has no deleted-records endpoint. A
// listing or full scan given the cursor of an interrupted one's page goes on
// from the next page (its page_info, kept in the cursor).
func (k *Connector) ListChanges(ctx context.Context, c *connectors.Conn, req connectors.ListRequest, fn func(connectors.Page) error) error {
	resource, ok := resourcePath[req.Object]
	if !ok {
		return fmt.Errorf("shopify list %q: %w", req.Object, connectors.ErrUnsupportedObject)
	}
	limit := req.PageSize
	if limit <= 0 {
		limit = defaultPageSize
	}
	limit = min(limit, maxPageSize)
	var covered time.Time
	if req.Cursor != "" {
		t, err := parseCursor(req.Cursor)
		if err != nil {
			return err
		}
		covered = t
	}
	// No "order" parameter: Shopify's REST docs do not list one for these
	// resources, so pages come in Shopify's own order and the cursor only
	// moves when the listing completes.
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if req.Object == models.ObjectOrders {
		q.Set("status", "any")
	}
	if !covered.IsZero() {
		q.Set("updated_at_min", covered.Add(-Lookback).Format(time.RFC3339))
	}
	fresh := q
	if _, pi := splitResume(req.Cursor); pi != "" {
		q = url.Values{"limit": {strconv.Itoa(limit)}, "page_info": {pi}}
	}
	var (
		maxSeen  time.Time
		seenInfo = map[string]bool{}
	)
	for page := 1; ; page++ {
		h, body, err := k.do(ctx, c, http.MethodGet, resource+".json", q, nil)
		var pe *connectors.ProviderError
		if page == 1 && q.Has("page_info") && errors.As(err, &pe) && pe.StatusCode >= 400 && pe.StatusCode < 500 {
			// The stored page_info is no longer valid: start over.
			q = fresh
			h, body, err = k.do(ctx, c, http.MethodGet, resource+".json", q, nil)
		}
		if err != nil {
			return fmt.Errorf("list %s page %d: %w", req.Object, page, err)
		}
		recs, err := parsePage(req.Object, resource, body)
		if err != nil {
			return fmt.Errorf("list %s page %d: %w", req.Object, page, &connectors.ProviderError{StatusCode: http.StatusOK, Code: "malformed_page", Message: err.Error()})
		}
		next, err := nextPageInfo(h.Get("Link"))
		if err != nil {
			return fmt.Errorf("list %s page %d: %w", req.Object, page, &connectors.ProviderError{StatusCode: http.StatusOK, Code: "malformed_link", Message: err.Error()})
		}
		if next != "" && seenInfo[next] {
			return fmt.Errorf("list %s page %d: %w", req.Object, page, &connectors.ProviderError{StatusCode: http.StatusOK, Code: "paging_loop", Message: "page_info repeats"})
		}
		seenInfo[next] = true
		for _, r := range recs {
			if u := r.RemoteUpdatedAt; u.After(maxSeen) {
				maxSeen = u
			}
		}
		if next == "" && maxSeen.After(covered) {
			covered = maxSeen
		}
		cur, _ := splitResume(req.Cursor)
		if !covered.IsZero() {
			cur = formatCursor(covered)
		}
		if next != "" {
			cur += resumeMark + next
		}
		if err := fn(connectors.Page{Records: recs, Cursor: cur}); err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		// With page_info only limit (and fields) may be sent: the filters are
		// baked into the cursor.
		q = url.Values{"limit": {strconv.Itoa(limit)}, "page_info": {next}}
	}
}

// ListDeleted always answers ErrWindowExpired: Shopify's REST API has no
// deleted-records listing, so the only way a poll can see a deletion is a
// completed full scan (sync then marks what the scan did not list deleted).
// Native orders/delete, customers/delete and products/delete webhooks carry
// deletions as they happen.
func (k *Connector) ListDeleted(_ context.Context, _ *connectors.Conn, object string, _, _ time.Time) ([]connectors.Deletion, error) {
	if _, ok := resourcePath[object]; !ok {
		return nil, fmt.Errorf("shopify list deleted %q: %w", object, connectors.ErrUnsupportedObject)
	}
	return nil, fmt.Errorf("shopify has no deleted-records listing for %s, full scan needed: %w", object, connectors.ErrWindowExpired)
}
