// Package fake is an in-memory sandbox app for tests: it keeps records per
// connection the way sync/sandboxapp does (versions, strictly increasing
// modification times, soft deletes), implements sandbox.Store, and records
// the signed webhooks it would send for connections in webhook mode. It
// needs no database, so connector and sync tests can use it anywhere.
package fake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/sandbox"
	"github.com/tributary/tributary/models"
)

type key struct{ conn, object, id string }

// App is the in-memory sandbox app.
type App struct {
	secret []byte

	mu       sync.Mutex
	now      time.Time
	records  map[key]*sandbox.StoredRecord
	lastMod  map[string]time.Time // per connection
	webhook  map[string]bool      // connections in webhook mode
	sent     map[string][]*connectors.InboundRequest
	seq      int
	inboundU string
}

var _ sandbox.Store = (*App)(nil)

// New returns an empty app signing webhooks with secret; its clock starts
// at a fixed time and moves only with Advance.
func New(secret []byte) *App {
	return &App{
		secret:   slices.Clone(secret),
		now:      time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC),
		records:  map[key]*sandbox.StoredRecord{},
		lastMod:  map[string]time.Time{},
		webhook:  map[string]bool{},
		sent:     map[string][]*connectors.InboundRequest{},
		inboundU: "http://127.0.0.1:8080/inbound/sandbox",
	}
}

// Now returns the fake clock.
func (a *App) Now() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.now
}

// Advance moves the clock forward.
func (a *App) Advance(d time.Duration) {
	a.mu.Lock()
	a.now = a.now.Add(d)
	a.mu.Unlock()
}

// SetMode sets a connection's mode (sandbox.ModeWebhook records webhooks).
func (a *App) SetMode(connectionID, mode string) {
	a.mu.Lock()
	a.webhook[connectionID] = mode == sandbox.ModeWebhook
	a.mu.Unlock()
}

// Create adds a record and returns its id.
func (a *App) Create(connectionID, object string, fields json.RawMessage) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	data, _, err := sandbox.MergeFields(object, nil, fields)
	if err != nil {
		return "", err
	}
	a.seq++
	id := fmt.Sprintf("sbx_%06d", a.seq)
	mod := a.stamp(connectionID)
	r := &sandbox.StoredRecord{RemoteID: id, Data: data, Version: 1, ModifiedAt: mod, CreatedAt: mod}
	a.records[key{connectionID, object, id}] = r
	return id, a.notify(connectionID, object, *r)
}

// Update merges fields into a live record.
func (a *App) Update(connectionID, object, remoteID string, fields json.RawMessage) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, err := a.live(connectionID, object, remoteID)
	if err != nil {
		return err
	}
	data, changed, err := sandbox.MergeFields(object, r.Data, fields)
	if err != nil || !changed {
		return err
	}
	r.Data, r.Version, r.ModifiedAt = data, r.Version+1, a.stamp(connectionID)
	return a.notify(connectionID, object, *r)
}

// Delete soft-deletes a live record.
func (a *App) Delete(connectionID, object, remoteID string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	r, err := a.live(connectionID, object, remoteID)
	if err != nil {
		return err
	}
	r.Deleted, r.Version, r.ModifiedAt = true, r.Version+1, a.stamp(connectionID)
	return a.notify(connectionID, object, *r)
}

// Webhooks returns, and forgets, the webhook requests sent for a connection.
func (a *App) Webhooks(connectionID string) []*connectors.InboundRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.sent[connectionID]
	delete(a.sent, connectionID)
	return out
}

func (a *App) live(conn, object, id string) (*sandbox.StoredRecord, error) {
	if !sandbox.ValidObject(object) {
		return nil, models.Errorf(models.ErrCodeNotFound, "no object %q", object)
	}
	r, ok := a.records[key{conn, object, id}]
	if !ok || r.Deleted {
		return nil, models.Errorf(models.ErrCodeNotFound, "%s %s not found", object, id)
	}
	return r, nil
}

// stamp returns a modification time strictly after the connection's last one.
func (a *App) stamp(conn string) time.Time {
	t := a.now.Truncate(time.Microsecond)
	if last := a.lastMod[conn]; !t.After(last) {
		t = last.Add(time.Microsecond)
	}
	a.lastMod[conn] = t
	return t
}

func (a *App) notify(conn, object string, r sandbox.StoredRecord) error {
	if !a.webhook[conn] {
		return nil
	}
	w, err := sandbox.WebhookFor(conn, object, r)
	if err != nil {
		return err
	}
	body, h, err := w.Sign(a.secret)
	if err != nil {
		return err
	}
	a.sent[conn] = append(a.sent[conn], &connectors.InboundRequest{
		Method: http.MethodPost, URL: a.inboundU, Header: h, Body: body, ReceivedAt: a.now,
	})
	return nil
}

func (a *App) matching(conn, object string, keep func(*sandbox.StoredRecord) bool) []sandbox.StoredRecord {
	var out []sandbox.StoredRecord
	for k, r := range a.records {
		if k.conn == conn && k.object == object && keep(r) {
			out = append(out, *r)
		}
	}
	return out
}

func byModified(x, y sandbox.StoredRecord) int {
	if c := x.ModifiedAt.Compare(y.ModifiedAt); c != 0 {
		return c
	}
	return strings.Compare(x.RemoteID, y.RemoteID)
}

// ListChanged implements sandbox.Store.
func (a *App) ListChanged(_ context.Context, conn, object string, since time.Time, after string, limit int) ([]sandbox.StoredRecord, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.matching(conn, object, func(r *sandbox.StoredRecord) bool {
		return r.ModifiedAt.After(since) || (r.ModifiedAt.Equal(since) && r.RemoteID > after)
	})
	slices.SortFunc(out, byModified)
	return out[:min(limit, len(out))], nil
}

// ListLive implements sandbox.Store.
func (a *App) ListLive(_ context.Context, conn, object, after string, limit int) ([]sandbox.StoredRecord, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.matching(conn, object, func(r *sandbox.StoredRecord) bool { return !r.Deleted && r.RemoteID > after })
	slices.SortFunc(out, func(x, y sandbox.StoredRecord) int { return strings.Compare(x.RemoteID, y.RemoteID) })
	return out[:min(limit, len(out))], nil
}

// Get implements sandbox.Store.
func (a *App) Get(_ context.Context, conn, object string, ids []string) ([]sandbox.StoredRecord, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.matching(conn, object, func(r *sandbox.StoredRecord) bool { return slices.Contains(ids, r.RemoteID) }), nil
}

// Latest implements sandbox.Store.
func (a *App) Latest(_ context.Context, conn, object string) (time.Time, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.matching(conn, object, func(*sandbox.StoredRecord) bool { return true })
	if len(out) == 0 {
		return time.Time{}, "", nil
	}
	last := slices.MaxFunc(out, byModified)
	return last.ModifiedAt, last.RemoteID, nil
}
