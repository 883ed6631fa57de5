package sandbox

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// A cursor is "<modifiedAt RFC 3339 nano UTC>|<remoteId>": the position of the
// last record of a fully stored page in (ModifiedAt, RemoteID) order. ""
// lists from the beginning.

func formatCursor(t time.Time, remoteID string) string {
	return t.UTC().Format(time.RFC3339Nano) + "|" + remoteID
}

func parseCursor(s string) (time.Time, string, error) {
	if s == "" {
		return time.Time{}, "", nil
	}
	ts, id, ok := strings.Cut(s, "|")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if !ok || err != nil {
		return time.Time{}, "", fmt.Errorf("sandbox: bad cursor %q", s)
	}
	return t.UTC(), id, nil
}

// laterCursor returns the later of two cursors (b when a does not parse).
func laterCursor(a, b string) string {
	ta, ia, errA := parseCursor(a)
	tb, ib, errB := parseCursor(b)
	if errA != nil || errB != nil {
		return b
	}
	if ta.After(tb) || (ta.Equal(tb) && ia > ib) {
		return a
	}
	return b
}

func pageSize(hint int) int {
	if hint <= 0 {
		return DefaultPageSize
	}
	return min(hint, MaxPageSize)
}

// ListChanges streams records of req.Object modified since req.Cursor minus
// Lookback, deleted ones as Record{Deleted: true}, each page's cursor being
// its last record. With req.FullScan it lists every live record instead; the
// last page's cursor is the newest modification seen before the scan began,
// so anything changed during the scan is found by the next incremental poll.
func (c *Connector) ListChanges(ctx context.Context, conn *connectors.Conn, req connectors.ListRequest, fn func(connectors.Page) error) error {
	if err := supported(req.Object); err != nil {
		return err
	}
	if req.FullScan {
		return c.scan(ctx, conn, req, fn)
	}
	since, _, err := parseCursor(req.Cursor)
	if err != nil {
		return err
	}
	after := ""
	if !since.IsZero() {
		since = since.Add(-Lookback)
	}
	limit := pageSize(req.PageSize)
	for {
		recs, err := c.store.ListChanged(ctx, conn.ID, req.Object, since, after, limit)
		if err != nil {
			return storeError("list changed "+req.Object, err)
		}
		if len(recs) == 0 {
			return nil
		}
		page, err := c.page(req.Object, recs)
		if err != nil {
			return err
		}
		last := recs[len(recs)-1]
		page.Cursor = laterCursor(req.Cursor, formatCursor(last.ModifiedAt, last.RemoteID))
		if err := fn(page); err != nil {
			return err
		}
		if len(recs) < limit {
			return nil
		}
		since, after = last.ModifiedAt, last.RemoteID
	}
}

func (c *Connector) scan(ctx context.Context, conn *connectors.Conn, req connectors.ListRequest, fn func(connectors.Page) error) error {
	latest, latestID, err := c.store.Latest(ctx, conn.ID, req.Object)
	if err != nil {
		return storeError("latest "+req.Object, err)
	}
	end := req.Cursor
	if !latest.IsZero() {
		end = laterCursor(req.Cursor, formatCursor(latest, latestID))
	}
	limit := pageSize(req.PageSize)
	after := ""
	for {
		recs, err := c.store.ListLive(ctx, conn.ID, req.Object, after, limit)
		if err != nil {
			return storeError("list "+req.Object, err)
		}
		page, err := c.page(req.Object, recs)
		if err != nil {
			return err
		}
		done := len(recs) < limit
		page.Cursor = req.Cursor
		if done {
			page.Cursor = end
		}
		if err := fn(page); err != nil {
			return err
		}
		if done {
			return nil
		}
		after = recs[len(recs)-1].RemoteID
	}
}

func (c *Connector) page(object string, recs []StoredRecord) (connectors.Page, error) {
	page := connectors.Page{Records: make([]models.Record, 0, len(recs))}
	for _, r := range recs {
		rec, err := RecordOf(object, r)
		if err != nil {
			return page, storeError("read "+object, err)
		}
		page.Records = append(page.Records, rec)
	}
	return page, nil
}

// FetchRecords reads records by id; deleted ones come back as
// Record{Deleted: true}, unknown ids are left out.
func (c *Connector) FetchRecords(ctx context.Context, conn *connectors.Conn, object string, remoteIDs []string) ([]models.Record, error) {
	if err := supported(object); err != nil {
		return nil, err
	}
	if len(remoteIDs) == 0 {
		return nil, nil
	}
	recs, err := c.store.Get(ctx, conn.ID, object, remoteIDs)
	if err != nil {
		return nil, storeError("get "+object, err)
	}
	page, err := c.page(object, recs)
	if err != nil {
		return nil, err
	}
	return page.Records, nil
}

// RecordOf normalizes one stored record of object.
func RecordOf(object string, r StoredRecord) (models.Record, error) {
	raw, err := AppRecord(r)
	if err != nil {
		return models.Record{}, err
	}
	return normalize(object, raw)
}
