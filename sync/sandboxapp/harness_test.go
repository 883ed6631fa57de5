package sandboxapp_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/clocktest"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/sandbox"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/sync/sandboxapp"
)

var secret = []byte("sandboxapp-test-secret")

type clock = clocktest.Clock

// fakeConns is the Connections lookup: rows by id, scoped by account.
type fakeConns struct {
	mu   sync.Mutex
	rows map[string]*models.Connection
}

func (f *fakeConns) Get(_ context.Context, accountID, id string) (*models.Connection, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.rows[id]
	if !ok || c.AccountID != accountID {
		return nil, models.Errorf(models.ErrCodeNotFound, "no connection %s", id)
	}
	cp := *c
	return &cp, nil
}

// inboundEndpoint is Tributary's /inbound/sandbox as the app sees it: it verifies
// every webhook with the connector and keeps the requests per account.
type inboundEndpoint struct {
	conn *sandbox.Connector
	mu   sync.Mutex
	got  map[string][]*connectors.InboundRequest
	fail int // answer this status instead of 202 when set
}

func (in *inboundEndpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := &connectors.InboundRequest{Method: r.Method, URL: "http://" + r.Host + r.URL.String(), Header: r.Header.Clone(), Body: body, ReceivedAt: time.Now()}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.fail != 0 {
		http.Error(w, "inbox unavailable", in.fail)
		return
	}
	if r.URL.Path != "/inbound/sandbox" || in.conn.VerifyWebhook(req) != nil {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	ns, err := in.conn.ParseWebhook(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	in.got[ns[0].ExternalID] = append(in.got[ns[0].ExternalID], req)
	w.WriteHeader(http.StatusAccepted)
}

func (in *inboundEndpoint) take(account string) []*connectors.InboundRequest {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := in.got[account]
	delete(in.got, account)
	return out
}

func (in *inboundEndpoint) setFail(status int) {
	in.mu.Lock()
	in.fail = status
	in.mu.Unlock()
}

// bundle is one app on a fresh database with its connector and inbound endpoint.
type bundle struct {
	db    *gorm.DB
	svc   *sandboxapp.Service
	conn  *sandbox.Connector
	clock *clock
	conns *fakeConns
	in    *inboundEndpoint
	seq   int
}

func setup(t *testing.T, db *gorm.DB) *bundle {
	t.Helper()
	b := &bundle{db: db, clock: clocktest.New(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)),
		conns: &fakeConns{rows: map[string]*models.Connection{}}}
	svc := sandboxapp.New(db, b.conns, secret, "")
	svc.Now = b.clock.Now
	b.svc = svc
	b.conn = sandbox.New(svc, secret)
	b.in = &inboundEndpoint{conn: b.conn, got: map[string][]*connectors.InboundRequest{}}
	srv := httptest.NewServer(b.in)
	t.Cleanup(srv.Close)
	svc.InboundURL = srv.URL + "/inbound/sandbox"
	return b
}

// newConnection registers a connection of app for account in mode and
// returns it as the connector sees it (ExternalID = connection id).
func (b *bundle) newConnection(t *testing.T, account, app, mode string) *connectors.Conn {
	t.Helper()
	_, meta, err := b.conn.ValidateCredentials(t.Context(), map[string]string{"mode": mode})
	require.NoError(t, err)
	b.conns.mu.Lock()
	b.seq++
	id := fmt.Sprintf("con_%s_%d", mode, b.seq)
	b.conns.rows[id] = &models.Connection{ID: id, AccountID: account, App: app, ExternalID: id,
		Metadata: fmt.Sprintf(`{"mode":%q}`, meta["mode"]), Status: models.ConnectionActive}
	b.conns.mu.Unlock()
	return &connectors.Conn{ID: id, ExternalID: id, Metadata: meta}
}

// rows reads a connection's records straight from the table.
func (b *bundle) rows(t *testing.T, connectionID string) []models.SandboxRecord {
	t.Helper()
	var out []models.SandboxRecord
	require.NoError(t, b.db.Where("connection_id = ?", connectionID).Order("modified_at").Find(&out).Error)
	return out
}

func raw(s string) []byte { return bytes.Clone([]byte(s)) }
