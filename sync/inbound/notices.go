package inbound

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// target is one connection a delivery's notices route to, with the records
// to reconcile for it in occurred order.
type target struct {
	conn    models.Connection
	notices []connectors.Notice
	recs    []models.Record
}

// prepare parses the item, routes its notices to connections and turns them
// into records, fetching thin notices with the provider's batch read.
func (p *Processor) prepare(ctx context.Context, item *models.InboxItem, routes *routeCache) (connectors.Info, []*target, error) {
	c, wr, err := webhookApp(p.Apps, item.App)
	if err != nil {
		return connectors.Info{}, nil, permanent(err)
	}
	info := c.Info()
	req := &connectors.InboundRequest{Method: item.Method, URL: item.URL, Header: http.Header{}, Body: item.Body, ReceivedAt: item.ReceivedAt}
	if err := json.Unmarshal([]byte(item.Header), &req.Header); err != nil {
		return info, nil, permanent(fmt.Errorf("stored header: %w", err))
	}
	notices, err := wr.ParseWebhook(req)
	if err != nil {
		return info, nil, permanent(fmt.Errorf("parse: %w", err))
	}
	slices.SortStableFunc(notices, func(a, b connectors.Notice) int { return a.OccurredAt.Compare(b.OccurredAt) })

	var ext []string
	for _, n := range notices {
		ext = append(ext, n.ExternalID)
	}
	slices.Sort(ext)
	ext = slices.Compact(ext)
	conns, err := routes.find(ctx, p.DB, item.App, ext)
	if err != nil {
		return info, nil, fmt.Errorf("route: %w", err)
	}
	byExt := map[string][]*target{}
	var targets []*target
	for _, conn := range conns {
		t := &target{conn: conn}
		byExt[conn.ExternalID] = append(byExt[conn.ExternalID], t)
		targets = append(targets, t)
	}
	for _, n := range notices {
		ts := byExt[n.ExternalID]
		if len(ts) == 0 {
			p.log().InfoContext(ctx, "inbound notice for no connection; skipped", "inbox", item.ID, "app", item.App,
				"externalId", n.ExternalID, "object", n.Object, "remoteId", n.RemoteID)
			continue
		}
		for _, t := range ts {
			t.notices = append(t.notices, n)
		}
	}
	for _, t := range targets {
		t.recs, err = p.records(ctx, c, item, t)
		if err != nil {
			return info, nil, fmt.Errorf("connection %s: %w", t.conn.ID, err)
		}
	}
	return info, targets, nil
}

// routeCache remembers, for one batch, the connections of (app, external
// id): a batch of webhooks from one shop routes with one query.
type routeCache map[[2]string][]models.Connection

// find returns the connections of app with one of the external ids ext, in
// id order, querying only the ids not seen yet in this batch.
func (rc *routeCache) find(ctx context.Context, db *gorm.DB, app string, ext []string) ([]models.Connection, error) {
	if *rc == nil {
		*rc = routeCache{}
	}
	var missing []string
	for _, e := range ext {
		if _, ok := (*rc)[[2]string{app, e}]; !ok {
			missing = append(missing, e)
		}
	}
	if len(missing) > 0 {
		var conns []models.Connection
		if err := db.WithContext(ctx).Where("app = ? AND external_id IN ?", app, missing).Order("id").Find(&conns).Error; err != nil {
			return nil, err
		}
		for _, e := range missing {
			(*rc)[[2]string{app, e}] = nil
		}
		for _, c := range conns {
			k := [2]string{app, c.ExternalID}
			(*rc)[k] = append((*rc)[k], c)
		}
	}
	var out []models.Connection
	for _, e := range ext {
		out = append(out, (*rc)[[2]string{app, e}]...)
	}
	slices.SortFunc(out, func(a, b models.Connection) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

type recKey struct{ object, remoteID string }

// records turns a connection's notices into records in occurred order. Full
// notices carry their record; deletes become tombstones versioned by their
// occurred time; thin notices are read with one batch read per object, and
// the current record is placed at the last thin notice of its id. A thin
// notice whose record the provider no longer returns is skipped (its
// deletion arrives as its own notice, or the next poll sees it).
func (p *Processor) records(ctx context.Context, c connectors.Connector, item *models.InboxItem, t *target) ([]models.Record, error) {
	lastThin := map[recKey]int{}
	want := map[string][]string{}
	asked := map[recKey]bool{}
	for _, n := range t.notices {
		// Deletions the signature does not vouch for are checked against
		// the provider: the record must be gone.
		k := recKey{n.Object, n.RemoteID}
		if n.Deleted && n.ConfirmDeletion && !asked[k] {
			asked[k] = true
			want[n.Object] = append(want[n.Object], n.RemoteID)
		}
	}
	for i, n := range t.notices {
		if n.Record != nil || n.Deleted {
			continue
		}
		k := recKey{n.Object, n.RemoteID}
		if _, seen := lastThin[k]; !seen && !asked[k] {
			want[n.Object] = append(want[n.Object], n.RemoteID)
		}
		lastThin[k] = i
	}
	fetched := map[recKey]models.Record{}
	fetchedOK := false
	if len(want) > 0 {
		err := p.fetch(ctx, c, item, t, want, fetched)
		fetchedOK = err == nil
		if errors.Is(err, connectors.ErrUnauthorized) {
			// Retrying cannot help until the user reconnects; the poll after
			// that catches these changes up. Full notices still apply.
			p.log().WarnContext(ctx, "inbound thin notices skipped: provider rejects the connection's credentials",
				"inbox", item.ID, "connection", t.conn.ID, "err", err)
			clear(fetched)
		} else if err != nil {
			return nil, err
		}
	}
	out := make([]models.Record, 0, len(t.notices))
	for i, n := range t.notices {
		switch {
		case n.Record != nil:
			r := *n.Record
			r.Object = cmp.Or(r.Object, n.Object)
			r.RemoteID = cmp.Or(r.RemoteID, n.RemoteID)
			out = append(out, r)
		case n.Deleted && n.ConfirmDeletion && !fetchedOK:
			p.log().WarnContext(ctx, "inbound delete notice not confirmed (the provider could not be asked); skipped, the next poll decides",
				"inbox", item.ID, "connection", t.conn.ID, "object", n.Object, "remoteId", n.RemoteID)
		case n.Deleted && n.ConfirmDeletion && hasRecord(fetched, n):
			p.log().WarnContext(ctx, "inbound delete notice for a record the provider still has; not a deletion",
				"inbox", item.ID, "connection", t.conn.ID, "object", n.Object, "remoteId", n.RemoteID)
		case n.Deleted:
			out = append(out, models.Record{Object: n.Object, RemoteID: n.RemoteID, Deleted: true, RemoteUpdatedAt: n.OccurredAt})
		default:
			k := recKey{n.Object, n.RemoteID}
			if lastThin[k] != i {
				continue
			}
			r, ok := fetched[k]
			if !ok {
				p.log().InfoContext(ctx, "inbound notice's record not found at the provider; skipped", "inbox", item.ID,
					"connection", t.conn.ID, "object", n.Object, "remoteId", n.RemoteID)
				continue
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func hasRecord(fetched map[recKey]models.Record, n connectors.Notice) bool {
	_, ok := fetched[recKey{n.Object, n.RemoteID}]
	return ok
}

// fetch batch-reads the wanted ids (object → ids) into fetched.
func (p *Processor) fetch(ctx context.Context, c connectors.Connector, item *models.InboxItem, t *target,
	want map[string][]string, fetched map[recKey]models.Record) error {
	f, ok := c.(connectors.Fetcher)
	if !ok {
		return permanent(fmt.Errorf("app %s sent thin notices but cannot fetch records", item.App))
	}
	if p.Opener == nil {
		return errors.New("no Opener to fetch thin notices")
	}
	conn, err := p.Opener.Open(ctx, &t.conn)
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	objects := make([]string, 0, len(want))
	for o := range want {
		objects = append(objects, o)
	}
	slices.Sort(objects)
	for _, object := range objects {
		recs, err := f.FetchRecords(ctx, conn, object, want[object])
		var pe *connectors.ProviderError
		switch {
		case errors.Is(err, connectors.ErrUnsupportedObject):
			p.log().WarnContext(ctx, "inbound notices of an unsupported object; skipped", "inbox", item.ID, "object", object)
			continue
		case errors.Is(err, connectors.ErrUnauthorized):
			if merr := p.Opener.MarkNeedsReauth(ctx, t.conn.ID, err.Error()); merr != nil {
				p.log().ErrorContext(ctx, "mark needs_reauth", "connection", t.conn.ID, "err", merr)
			}
			return fmt.Errorf("fetch %s: %w", object, err)
		case errors.As(err, &pe) && !pe.Temporary:
			return permanent(fmt.Errorf("fetch %s: %w", object, err))
		case err != nil:
			return fmt.Errorf("fetch %s: %w", object, err)
		}
		for _, r := range recs {
			r.Object = cmp.Or(r.Object, object)
			fetched[recKey{r.Object, r.RemoteID}] = r
		}
	}
	return nil
}
