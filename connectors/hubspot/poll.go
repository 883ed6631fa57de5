package hubspot

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// The cursor is the RFC 3339 (nanosecond) UTC time of the last modification a
// page fully covered; "" lists from the beginning.

func formatCursor(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// midListing marks the cursor of a page that was not the listing's last:
// an interrupted listing (a rate limit) goes on from it without the
// lookback, else a burst of changes inside the lookback would be re-read
// from its start on every resumption and never get past the budget.
const midListing = "+resume"

func parseCursor(s string) (time.Time, error) {
	s, _ = splitCursor(s)
	s = strings.TrimSuffix(s, midListing)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("hubspot: bad cursor %q: %w", s, err)
	}
	return t, nil
}

// searchFilter, searchSort and searchRequest are the CRM search body.
type searchFilter struct {
	PropertyName string `json:"propertyName"`
	Operator     string `json:"operator"`
	Value        string `json:"value,omitempty"`
}

type searchFilterGroup struct {
	Filters []searchFilter `json:"filters"`
}

type searchRequest struct {
	FilterGroups []searchFilterGroup `json:"filterGroups"`
	// Sorts are property names, "-name" for descending: the published
	// schema types them as strings.
	Sorts      []string `json:"sorts"`
	Properties []string `json:"properties"`
	Limit      int      `json:"limit"`
	// After is required by PublicObjectSearchRequest: "0" on the first page.
	After string `json:"after"`
}

// pagedResponse is the shape shared by search (with total), the basic list
// and archived list, and owners: results plus forward paging.
type pagedResponse struct {
	Total   *int              `json:"total"`
	Results []json.RawMessage `json:"results"`
	Paging  *struct {
		Next *struct {
			After string `json:"after"`
			Link  string `json:"link"`
		} `json:"next"`
	} `json:"paging"`
}

func (p *pagedResponse) next() string {
	if p.Paging == nil || p.Paging.Next == nil {
		return ""
	}
	return p.Paging.Next.After
}

// ListChanges streams records of req.Object changed since req.Cursor (with
// the lookback), or every live record when req.FullScan is set.
func (c *Connector) ListChanges(ctx context.Context, conn *connectors.Conn, req connectors.ListRequest, fn func(connectors.Page) error) error {
	switch req.Object {
	case models.ObjectStages:
		return c.listStages(ctx, conn, req, fn)
	case models.ObjectUsers:
		return c.listOwners(ctx, conn, req, fn)
	}
	spec, ok := crmObjectFor(req.Object)
	if !ok {
		return fmt.Errorf("hubspot list %s: %w", req.Object, connectors.ErrUnsupportedObject)
	}
	if req.FullScan {
		return c.scanObjects(ctx, conn, spec, req, fn)
	}
	return c.searchChanges(ctx, conn, spec, req, fn)
}

func clampLimit(hint, max int) int {
	if hint <= 0 || hint > max {
		return max
	}
	return hint
}

// searchChanges pages POST /crm/v3/objects/{type}/search ascending on the
// last-modified property from cursor − lookback. When paging would pass the
// search API's 10,000-result cap it starts a new search from the last
// modification time seen (re-reading rows at that instant is harmless).
func (c *Connector) searchChanges(ctx context.Context, conn *connectors.Conn, spec crmObject, req connectors.ListRequest, fn func(connectors.Page) error) error {
	since, err := parseCursor(req.Cursor)
	if err != nil {
		return err
	}
	from := int64(0)
	switch {
	case strings.HasSuffix(req.Cursor, midListing):
		from = since.UnixMilli() // resuming: rows at that instant are re-read (GTE)
	case !since.IsZero():
		from = max(since.Add(-lookback).UnixMilli(), 0)
	}
	limit := clampLimit(req.PageSize, searchMaxLimit)
	after, consumed := "", 0
	lastMod := int64(-1)
	for {
		if after != "" && consumed+limit > c.searchCap {
			if lastMod <= from {
				return &connectors.ProviderError{Code: "search_cap",
					Message: fmt.Sprintf("more than %d %s share %s %d; the search API cannot page past them", c.searchCap, spec.path, spec.modified, from)}
			}
			from, after, consumed = lastMod, "", 0
		}
		body := searchRequest{
			FilterGroups: []searchFilterGroup{{Filters: []searchFilter{{PropertyName: spec.modified, Operator: "GTE", Value: strconv.FormatInt(from, 10)}}}},
			Sorts:        []string{spec.modified},
			Properties:   spec.properties,
			Limit:        limit,
			After:        cmp.Or(after, "0"),
		}
		var resp pagedResponse
		if err := c.do(ctx, conn, "POST", "/crm/v3/objects/"+spec.urlPath()+"/search", nil, body, &resp); err != nil {
			return fmt.Errorf("search %s page: %w", spec.path, err)
		}
		raws, err := c.attachAssociations(ctx, conn, spec, resp.Results)
		if err != nil {
			return fmt.Errorf("search %s page: %w", spec.path, err)
		}
		page := connectors.Page{Records: make([]models.Record, 0, len(raws)), Cursor: req.Cursor}
		for _, raw := range raws {
			rec, err := normalize(spec.unified, raw)
			if err != nil {
				return malformed("search "+spec.path, err)
			}
			var o simpleObject
			_ = json.Unmarshal(raw, &o) // normalize already decoded it
			mod := parseTime(o.prop(spec.modified))
			if mod.IsZero() {
				mod = rec.RemoteUpdatedAt
			}
			if mod.IsZero() {
				return malformed("search "+spec.path, fmt.Errorf("record %s has no %s", o.ID, spec.modified))
			}
			if ms := mod.UnixMilli(); ms > lastMod {
				lastMod = ms
			}
			page.Records = append(page.Records, rec)
		}
		next := resp.next()
		if len(page.Records) > 0 {
			// Ascending order: every row modified before the latest one seen
			// is covered; rows at that instant are re-read by the lookback.
			page.Cursor = formatCursor(time.UnixMilli(lastMod))
		}
		if next == "" {
			// The listing is complete: record the live count the next
			// deletion check compares with (see deletions.go).
			if err := c.stampLiveCount(ctx, conn, spec, &page); err != nil {
				return err
			}
			return fn(page)
		}
		if len(page.Records) > 0 {
			page.Cursor += midListing
			if err := fn(page); err != nil {
				return err
			}
		}
		after = next
		consumed += len(resp.Results)
	}
}

// scanObjects pages GET /crm/v3/objects/{type} over every live record. Its
// last page carries the scan's start time as cursor: whatever changed later is
// found by the next incremental poll.
func (c *Connector) scanObjects(ctx context.Context, conn *connectors.Conn, spec crmObject, req connectors.ListRequest, fn func(connectors.Page) error) error {
	start := c.now()
	limit := clampLimit(req.PageSize, listMaxLimit)
	after := ""
	for {
		q := url.Values{}
		q.Set("limit", strconv.Itoa(limit))
		q.Set("properties", strings.Join(spec.properties, ","))
		q.Set("archived", "false")
		if after != "" {
			q.Set("after", after)
		}
		var resp pagedResponse
		if err := c.do(ctx, conn, "GET", "/crm/v3/objects/"+spec.urlPath(), q, nil, &resp); err != nil {
			return fmt.Errorf("list %s page: %w", spec.path, err)
		}
		raws, err := c.attachAssociations(ctx, conn, spec, resp.Results)
		if err != nil {
			return fmt.Errorf("list %s page: %w", spec.path, err)
		}
		page := connectors.Page{Records: make([]models.Record, 0, len(raws)), Cursor: req.Cursor}
		for _, raw := range raws {
			rec, err := normalize(spec.unified, raw)
			if err != nil {
				return malformed("list "+spec.path, err)
			}
			page.Records = append(page.Records, rec)
		}
		next := resp.next()
		if next == "" {
			page.Cursor = laterCursor(req.Cursor, start)
			if err := c.stampLiveCount(ctx, conn, spec, &page); err != nil {
				return err
			}
		}
		if err := fn(page); err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		after = next
	}
}

// stampLiveCount appends the object's live count to the last page's cursor.
func (c *Connector) stampLiveCount(ctx context.Context, conn *connectors.Conn, spec crmObject, page *connectors.Page) error {
	at := c.now()
	n, err := c.countLive(ctx, conn, spec, time.Time{})
	if err != nil {
		return err
	}
	page.Cursor = withCount(page.Cursor, liveCount{n: n, at: at})
	return nil
}

// laterCursor returns the later of cursor and t.
func laterCursor(cursor string, t time.Time) string {
	if c, err := parseCursor(cursor); err == nil && c.After(t) {
		return cursor
	}
	return formatCursor(t)
}

// pipelinesResponse is GET /crm/v3/pipelines/deals.
type pipelinesResponse struct {
	Results []struct {
		ID       string            `json:"id"`
		Label    string            `json:"label"`
		Archived bool              `json:"archived"`
		Stages   []json.RawMessage `json:"stages"`
	} `json:"results"`
}

// listStages reads every deal pipeline with its stages: the pipelines API has
// neither a modification filter nor paging, so stages are listed whole on
// every poll and the cursor is the listing's start time.
func (c *Connector) listStages(ctx context.Context, conn *connectors.Conn, req connectors.ListRequest, fn func(connectors.Page) error) error {
	start := c.now()
	var resp pipelinesResponse
	if err := c.do(ctx, conn, "GET", "/crm/v3/pipelines/deals", nil, nil, &resp); err != nil {
		return fmt.Errorf("list deal pipelines: %w", err)
	}
	page := connectors.Page{Cursor: laterCursor(req.Cursor, start)}
	for _, p := range resp.Results {
		if p.Archived {
			continue
		}
		for _, raw := range p.Stages {
			withPipeline, err := addPipelineID(raw, p.ID)
			if err != nil {
				return malformed("list deal pipelines", err)
			}
			rec, err := normalizeStage(withPipeline)
			if err != nil {
				return malformed("list deal pipelines", err)
			}
			if rec.Deleted {
				continue
			}
			page.Records = append(page.Records, rec)
		}
	}
	return fn(page)
}

// addPipelineID adds "pipelineId" to a stage object as received.
func addPipelineID(raw json.RawMessage, pipelineID string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("stage is not an object")
	}
	id, _ := json.Marshal(pipelineID)
	m["pipelineId"] = id
	return json.Marshal(m)
}

// listOwners pages GET /crm/v3/owners. Owners have no modification filter,
// so every owner is read; an incremental poll hands on those updated since
// cursor − lookback, a full scan all of them.
func (c *Connector) listOwners(ctx context.Context, conn *connectors.Conn, req connectors.ListRequest, fn func(connectors.Page) error) error {
	since, err := parseCursor(req.Cursor)
	if err != nil {
		return err
	}
	if !since.IsZero() {
		since = since.Add(-lookback)
	}
	start := c.now()
	return c.pageOwners(ctx, conn, false, req.PageSize, func(recs []models.Record, last bool) error {
		page := connectors.Page{Cursor: req.Cursor}
		for _, r := range recs {
			if req.FullScan || since.IsZero() || !r.RemoteUpdatedAt.Before(since) {
				page.Records = append(page.Records, r)
			}
		}
		if last {
			page.Cursor = laterCursor(req.Cursor, start)
		}
		if len(page.Records) == 0 && !last {
			return nil
		}
		return fn(page)
	})
}

func (c *Connector) pageOwners(ctx context.Context, conn *connectors.Conn, archived bool, hint int, fn func([]models.Record, bool) error) error {
	limit := clampLimit(hint, ownersMaxLimit)
	after := ""
	for {
		q := url.Values{}
		q.Set("limit", strconv.Itoa(limit))
		q.Set("archived", strconv.FormatBool(archived))
		if after != "" {
			q.Set("after", after)
		}
		var resp pagedResponse
		if err := c.do(ctx, conn, "GET", "/crm/v3/owners", q, nil, &resp); err != nil {
			return fmt.Errorf("list owners page: %w", err)
		}
		recs := make([]models.Record, 0, len(resp.Results))
		for _, raw := range resp.Results {
			rec, err := normalizeOwner(raw)
			if err != nil {
				return malformed("list owners", err)
			}
			recs = append(recs, rec)
		}
		next := resp.next()
		if err := fn(recs, next == ""); err != nil {
			return err
		}
		if next == "" {
			return nil
		}
		after = next
	}
}

// ListDeleted reports records archived between since and until (always
// reading the archived listing).
func (c *Connector) ListDeleted(ctx context.Context, conn *connectors.Conn, object string, since, until time.Time) ([]connectors.Deletion, error) {
	dels, _, err := c.ListDeletedCovered(ctx, conn, object, since, until, "")
	return dels, err
}

// ListDeletedCovered reports records archived between since and until. For
// CRM objects it first compares live counts with the one changeCursor
// recorded (deletions.go): when they show no deletion and the window is
// younger than archiveEvery, it reads nothing and answers covered = since,
// so the window keeps its start until a read.
func (c *Connector) ListDeletedCovered(ctx context.Context, conn *connectors.Conn, object string, since, until time.Time, changeCursor string) ([]connectors.Deletion, time.Time, error) {
	if spec, ok := crmObjectFor(object); ok && until.Sub(since) < archiveEvery && !since.Before(c.now().Add(-archiveRetention)) {
		possible, err := c.deletionsPossible(ctx, conn, spec, changeCursor)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("hubspot deleted %s: %w", object, err)
		}
		if !possible {
			return nil, since, nil
		}
	}
	dels, err := c.listArchived(ctx, conn, object, since, until)
	return dels, until, err
}

// listArchived reports records archived between since and until. CRM objects
// come from GET /crm/v3/objects/{type}?archived=true (archivedAt), which
// HubSpot keeps for 90 days; owners from /crm/v3/owners/?archived=true
// (updatedAt is the archive time). Deal stages have no archived listing:
// ListDeleted answers ErrWindowExpired so that sync runs the (cheap, complete)
// full listing that stages always use.
func (c *Connector) listArchived(ctx context.Context, conn *connectors.Conn, object string, since, until time.Time) ([]connectors.Deletion, error) {
	in := func(t time.Time) bool { return !t.IsZero() && !t.Before(since) && !t.After(until) }
	switch object {
	case models.ObjectStages:
		return nil, fmt.Errorf("hubspot deal stages have no archived listing: %w", connectors.ErrWindowExpired)
	case models.ObjectUsers:
		var out []connectors.Deletion
		err := c.pageOwners(ctx, conn, true, 0, func(recs []models.Record, _ bool) error {
			for _, r := range recs {
				if in(r.RemoteUpdatedAt) {
					out = append(out, connectors.Deletion{RemoteID: r.RemoteID, DeletedAt: r.RemoteUpdatedAt})
				}
			}
			return nil
		})
		return out, err
	}
	spec, ok := crmObjectFor(object)
	if !ok {
		return nil, fmt.Errorf("hubspot deleted %s: %w", object, connectors.ErrUnsupportedObject)
	}
	if since.Before(c.now().Add(-archiveRetention)) {
		return nil, fmt.Errorf("hubspot keeps archived %s for 90 days, window starts %s: %w", spec.path, since.Format(time.RFC3339), connectors.ErrWindowExpired)
	}
	var out []connectors.Deletion
	after := ""
	for {
		q := url.Values{}
		q.Set("limit", strconv.Itoa(listMaxLimit))
		q.Set("archived", "true")
		q.Set("properties", spec.modified)
		if after != "" {
			q.Set("after", after)
		}
		var resp pagedResponse
		if err := c.do(ctx, conn, "GET", "/crm/v3/objects/"+spec.urlPath(), q, nil, &resp); err != nil {
			return nil, fmt.Errorf("list archived %s page: %w", spec.path, err)
		}
		for _, raw := range resp.Results {
			var o simpleObject
			if err := json.Unmarshal(raw, &o); err != nil || o.ID == "" {
				return nil, malformed("list archived "+spec.path, fmt.Errorf("bad record: %v", err))
			}
			at := parseTime(o.ArchivedAt)
			if at.IsZero() {
				at = parseTime(o.UpdatedAt)
			}
			if in(at) {
				out = append(out, connectors.Deletion{RemoteID: o.ID, DeletedAt: at})
			}
		}
		next := resp.next()
		if next == "" {
			return out, nil
		}
		after = next
	}
}

func malformed(what string, err error) error {
	return fmt.Errorf("%s: %w", what, &connectors.ProviderError{StatusCode: 200, Code: "malformed_response", Message: err.Error(), Temporary: true})
}
