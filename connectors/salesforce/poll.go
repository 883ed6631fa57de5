package salesforce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// Paging limits of the query resource: Sforce-Query-Options batchSize is a
// hint between 200 and 2000 (the default).
const (
	minBatchSize = 200
	maxBatchSize = 2000
)

// soqlTimeLayout is a SOQL dateTime literal (unquoted, UTC).
const soqlTimeLayout = "2006-01-02T15:04:05Z"

// queryPage is the body of the query resource.
type queryPage struct {
	TotalSize      *int              `json:"totalSize"`
	Done           *bool             `json:"done"`
	NextRecordsURL string            `json:"nextRecordsUrl"`
	Records        []json.RawMessage `json:"records"`
}

// decodeQueryPage parses and validates one page of the query resource.
func decodeQueryPage(body []byte) (*queryPage, error) {
	var p queryPage
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("malformed query page: %w", err)
	}
	if p.Done == nil || p.TotalSize == nil {
		return nil, errors.New("malformed query page: missing done or totalSize")
	}
	if !*p.Done {
		if p.NextRecordsURL == "" {
			return nil, errors.New("malformed query page: done is false but there is no nextRecordsUrl")
		}
		if !validNextRecordsURL(p.NextRecordsURL) {
			return nil, fmt.Errorf("malformed query page: unexpected nextRecordsUrl %q", p.NextRecordsURL)
		}
	}
	return &p, nil
}

// validNextRecordsURL accepts only a path on the same instance under the
// query resource, so the bearer token never leaves for another host.
func validNextRecordsURL(s string) bool {
	if !strings.HasPrefix(s, "/services/data/") || strings.ContainsAny(s, "?#\\ ") || strings.Contains(s, "..") {
		return false
	}
	parts := strings.Split(strings.TrimPrefix(s, "/services/data/"), "/")
	// queryAll pages come back under query too (Salesforce: "although the
	// nextRecordsUrl has query in the URL, it still provides the remaining
	// results from the initial QueryAll request").
	return len(parts) == 3 && strings.HasPrefix(parts[0], "v") && (parts[1] == "query" || parts[1] == "queryAll") && parts[2] != ""
}

// buildSOQL is the query the connector sends for object from since (zero:
// every record).
func buildSOQL(spec objectSpec, since time.Time) string {
	var b strings.Builder
	b.WriteString("SELECT ")
	b.WriteString(strings.Join(spec.Fields, ", "))
	b.WriteString(" FROM ")
	b.WriteString(spec.SObject)
	if !since.IsZero() {
		b.WriteString(" WHERE SystemModstamp >= ")
		b.WriteString(since.UTC().Truncate(time.Second).Format(soqlTimeLayout))
	}
	b.WriteString(" ORDER BY SystemModstamp, Id")
	return b.String()
}

// parseCursor reads a cursor this connector wrote (RFC 3339 with fraction).
func parseCursor(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("salesforce: bad cursor %q: %w", s, err)
	}
	return t.UTC(), nil
}

func formatCursor(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// ListChanges streams the records of req.Object modified since the cursor
// (minus Lookback), ordered by SystemModstamp then Id, one query page at a
// time. Each page's Cursor is the SystemModstamp of its last record: every
// record strictly older is covered, and ties are re-read next time because
// the next query uses >=. A full scan drops the WHERE clause and uses
// queryAll, which also returns archived activities (Tasks the archival job
// moved away, still live records: handed on, so the scan does not take
// them for deleted) and soft-deleted rows (IsDeleted true: left out, so the
// scan does count them as deleted).
func (c *Connector) ListChanges(ctx context.Context, conn *connectors.Conn, req connectors.ListRequest, fn func(connectors.Page) error) error {
	spec, ok := specFor(req.Object)
	if !ok {
		return fmt.Errorf("salesforce list %q: %w", req.Object, connectors.ErrUnsupportedObject)
	}
	var since, covered time.Time
	if req.Cursor != "" {
		cur, err := parseCursor(req.Cursor)
		if err != nil {
			return err
		}
		covered = cur
		if !req.FullScan {
			since = cur.Add(-Lookback)
		}
	}
	var header http.Header
	if req.PageSize > 0 {
		header = http.Header{"Sforce-Query-Options": {"batchSize=" + strconv.Itoa(min(max(req.PageSize, minBatchSize), maxBatchSize))}}
	}
	resource := "/query"
	if req.FullScan {
		resource = "/queryAll"
	}
	path := "/services/data/" + APIVersion + resource + "?q=" + url.QueryEscape(buildSOQL(spec, since))
	for page := 1; ; page++ {
		body, err := c.get(ctx, conn, path, header)
		if err != nil {
			return fmt.Errorf("list %s page %d: %w", req.Object, page, err)
		}
		qp, err := decodeQueryPage(body)
		if err != nil {
			return fmt.Errorf("list %s page %d: %w", req.Object, page, &connectors.ProviderError{StatusCode: http.StatusOK, Code: "MALFORMED_RESPONSE", Message: err.Error()})
		}
		out := connectors.Page{Records: make([]models.Record, 0, len(qp.Records))}
		for _, raw := range qp.Records {
			var flags struct {
				IsDeleted bool `json:"IsDeleted"`
			}
			if err := json.Unmarshal(raw, &flags); err == nil && flags.IsDeleted {
				continue // in the recycle bin: a deletion, not a live record
			}
			rec, err := normalize(req.Object, raw)
			if err != nil {
				return fmt.Errorf("list %s page %d: %w", req.Object, page, &connectors.ProviderError{StatusCode: http.StatusOK, Code: "MALFORMED_RECORD", Message: err.Error()})
			}
			if rec.RemoteUpdatedAt.IsZero() {
				return fmt.Errorf("list %s page %d: %s: %w", req.Object, page, rec.RemoteID, errNoModstamp)
			}
			if rec.RemoteUpdatedAt.After(covered) {
				covered = rec.RemoteUpdatedAt
			}
			out.Records = append(out.Records, rec)
		}
		if !covered.IsZero() {
			out.Cursor = formatCursor(covered)
		}
		if err := fn(out); err != nil {
			return err
		}
		if *qp.Done {
			return nil
		}
		path = qp.NextRecordsURL
	}
}

// deletedResult is the body of sobjects/{type}/deleted/.
type deletedResult struct {
	DeletedRecords []struct {
		ID          string `json:"id"`
		DeletedDate string `json:"deletedDate"`
	} `json:"deletedRecords"`
	EarliestDateAvailable string `json:"earliestDateAvailable"`
	LatestDateCovered     string `json:"latestDateCovered"`
}

// decodeDeleted parses a getDeleted answer: the deletions and
// latestDateCovered (zero when absent).
func decodeDeleted(body []byte) ([]connectors.Deletion, time.Time, error) {
	var r deletedResult
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, time.Time{}, fmt.Errorf("malformed getDeleted answer: %w", err)
	}
	if r.DeletedRecords == nil && r.LatestDateCovered == "" {
		return nil, time.Time{}, errors.New("malformed getDeleted answer: no deletedRecords")
	}
	var covered time.Time
	if r.LatestDateCovered != "" {
		c, err := ParseTime(r.LatestDateCovered)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("malformed getDeleted answer: latestDateCovered: %w", err)
		}
		covered = c
	}
	out := make([]connectors.Deletion, 0, len(r.DeletedRecords))
	for _, d := range r.DeletedRecords {
		if d.ID == "" {
			return nil, time.Time{}, errors.New("malformed getDeleted answer: record without id")
		}
		at, err := ParseTime(d.DeletedDate)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("malformed getDeleted answer: %w", err)
		}
		out = append(out, connectors.Deletion{RemoteID: d.ID, DeletedAt: at})
	}
	return out, covered, nil
}

// ListDeleted lists the records of object deleted in [since, until] through
// the getDeleted resource. until is capped at the connector's clock; a window
// shorter than the two minutes Salesforce requires is widened backwards
// (re-reading deletions is harmless). A window starting before Salesforce's
// 15-day retention, an INVALID_REPLICATION_DATE answer, and objects without
// getDeleted (OpportunityStage) all return connectors.ErrWindowExpired, so
// sync runs a full scan instead.
func (c *Connector) ListDeleted(ctx context.Context, conn *connectors.Conn, object string, since, until time.Time) ([]connectors.Deletion, error) {
	dels, _, err := c.ListDeletedCovered(ctx, conn, object, since, until, "")
	return dels, err
}

// ListDeletedCovered is ListDeleted that also returns getDeleted's
// latestDateCovered: Salesforce vouches for deletions only up to it (a
// delete in a transaction still open is dated earlier but listed later), so
// the next window starts there rather than at until.
func (c *Connector) ListDeletedCovered(ctx context.Context, conn *connectors.Conn, object string, since, until time.Time, _ string) ([]connectors.Deletion, time.Time, error) {
	spec, ok := specFor(object)
	if !ok {
		return nil, time.Time{}, fmt.Errorf("salesforce list deleted %q: %w", object, connectors.ErrUnsupportedObject)
	}
	if !spec.GetDeleted {
		return nil, time.Time{}, fmt.Errorf("salesforce list deleted %s: getDeleted is not supported for this sObject, full scan needed: %w", spec.SObject, connectors.ErrWindowExpired)
	}
	now := c.now().UTC()
	if until.IsZero() || until.After(now) {
		until = now
	}
	if since.Before(now.Add(-DeletedRetention)) {
		return nil, time.Time{}, fmt.Errorf("salesforce list deleted %s since %s: older than 15 days: %w", spec.SObject, since.Format(time.RFC3339), connectors.ErrWindowExpired)
	}
	if until.Sub(since) < 2*time.Minute {
		since = until.Add(-2 * time.Minute)
	}
	q := url.Values{"start": {since.UTC().Format(time.RFC3339)}, "end": {until.UTC().Format(time.RFC3339)}}
	path := "/services/data/" + APIVersion + "/sobjects/" + spec.SObject + "/deleted/?" + q.Encode()
	body, err := c.get(ctx, conn, path, nil)
	if err != nil {
		var pe *connectors.ProviderError
		if errors.As(err, &pe) && pe.Code == "INVALID_REPLICATION_DATE" {
			return nil, time.Time{}, fmt.Errorf("salesforce list deleted %s: %s: %w", spec.SObject, pe.Message, connectors.ErrWindowExpired)
		}
		return nil, time.Time{}, fmt.Errorf("salesforce list deleted %s: %w", spec.SObject, err)
	}
	dels, covered, err := decodeDeleted(body)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("salesforce list deleted %s: %w", spec.SObject, &connectors.ProviderError{StatusCode: http.StatusOK, Code: "MALFORMED_RESPONSE", Message: err.Error()})
	}
	if !covered.IsZero() && covered.After(until) {
		covered = until
	}
	return dels, covered, nil
}
