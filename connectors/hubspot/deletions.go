package hubspot

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary/connectors"
)

// HubSpot has no time-filtered listing of archived (deleted) records: the
// archived listing pages every record archived in the last 90 days, in id
// order. Reading it on every poll costs a page per 100 archived records, so
// the connector reads it only when something was deleted:
//
//   - a completed change listing records, in its last page's cursor, how many
//     live records the object had and when it counted them
//     ("<time>;live=<n>;at=<time>");
//   - the next poll counts the live records now and those created since that
//     count (two search requests with limit 1). live now − created since <
//     live then means records went away: the archived listing is read for
//     the whole window. Otherwise nothing was deleted and the listing is
//     skipped; the deletion window stays where the last read left it.
//   - whatever the counts say, the archive is read once the window is
//     archiveEvery old, and whenever the cursor carries no count.

// liveCount is what a change cursor records about the live records.
type liveCount struct {
	n  int64
	at time.Time
}

// splitCursor separates a change cursor into its time and the live count
// it may carry.
func splitCursor(s string) (string, *liveCount) {
	t, rest, ok := strings.Cut(s, ";")
	if !ok {
		return s, nil
	}
	var lc liveCount
	var haveN, haveAt bool
	for _, kv := range strings.Split(rest, ";") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "live":
			n, err := strconv.ParseInt(v, 10, 64)
			haveN = err == nil && n >= 0
			lc.n = n
		case "at":
			at, err := time.Parse(time.RFC3339Nano, v)
			haveAt = err == nil
			lc.at = at
		}
	}
	if !haveN || !haveAt {
		return t, nil
	}
	return t, &lc
}

// withCount appends a live count to a cursor's time.
func withCount(cursor string, lc liveCount) string {
	t, _ := splitCursor(cursor)
	return t + ";live=" + strconv.FormatInt(lc.n, 10) + ";at=" + lc.at.UTC().Format(time.RFC3339Nano)
}

// countLive asks the search API how many live records of spec exist
// (createdFrom zero) or were created at or after createdFrom.
func (c *Connector) countLive(ctx context.Context, conn *connectors.Conn, spec crmObject, createdFrom time.Time) (int64, error) {
	f := searchFilter{PropertyName: "hs_object_id", Operator: "HAS_PROPERTY"}
	if !createdFrom.IsZero() {
		f = searchFilter{PropertyName: spec.created, Operator: "GTE", Value: strconv.FormatInt(createdFrom.UnixMilli(), 10)}
	}
	body := searchRequest{
		FilterGroups: []searchFilterGroup{{Filters: []searchFilter{f}}},
		Sorts:        []string{},
		Properties:   []string{"hs_object_id"},
		Limit:        1,
		After:        "0",
	}
	var resp pagedResponse
	if err := c.do(ctx, conn, "POST", "/crm/v3/objects/"+spec.urlPath()+"/search", nil, body, &resp); err != nil {
		return 0, fmt.Errorf("count %s: %w", spec.path, err)
	}
	if resp.Total == nil {
		return 0, malformed("count "+spec.path, fmt.Errorf("search answer without total"))
	}
	return int64(*resp.Total), nil
}

// deletionsPossible reports whether records of spec may have been archived
// since the count in changeCursor; it costs two search requests.
func (c *Connector) deletionsPossible(ctx context.Context, conn *connectors.Conn, spec crmObject, changeCursor string) (bool, error) {
	_, then := splitCursor(changeCursor)
	if then == nil {
		return true, nil
	}
	now, err := c.countLive(ctx, conn, spec, time.Time{})
	if err != nil {
		return false, err
	}
	// Created since the count, with the lookback: records created just
	// before it may have been indexed just after, so counting more here only
	// errs towards reading the archive.
	created, err := c.countLive(ctx, conn, spec, then.at.Add(-lookback))
	if err != nil {
		return false, err
	}
	return now-created < then.n, nil
}
