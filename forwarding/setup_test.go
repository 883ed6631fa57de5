package forwarding_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/clocktest"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/forwarding/signing/signingtest"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
)

type clock = clocktest.Clock

// received is one request a test receiver got.
type received struct {
	Header http.Header
	Body   []byte
}

// receiver is an httptest endpoint that logs every request and answers
// with respond (200 when nil).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []received
	respond func(n int, w http.ResponseWriter, r *http.Request)
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{Header: r.Header.Clone(), Body: body})
		n, respond := len(rc.got), rc.respond
		rc.mu.Unlock()
		if respond != nil {
			respond(n, w, r)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func (rc *receiver) setRespond(f func(n int, w http.ResponseWriter, r *http.Request)) {
	rc.mu.Lock()
	rc.respond = f
	rc.mu.Unlock()
}

// bundle is one test's forwarding setup.
type bundle struct {
	db    *gorm.DB
	svc   *forwarding.Service
	disp  *forwarding.Dispatcher
	clock *clock
	box   *secrets.Box
}

func testBox(t testing.TB) *secrets.Box {
	box, err := secrets.New(make([]byte, 32))
	require.NoError(t, err)
	return box
}

func setup(t testing.TB, db *gorm.DB, tune ...func(*forwarding.Config)) *bundle {
	b := &bundle{db: db, clock: clocktest.New(time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)), box: testBox(t)}
	cfg := forwarding.Config{DB: db, Box: b.box, AllowHTTP: true, AllowPrivate: true, Now: b.clock.Now,
		Dispatcher: config.Default().Dispatcher}
	for _, f := range tune {
		f(&cfg)
	}
	b.svc = forwarding.New(cfg)
	b.disp = b.svc.NewDispatcher(nil)
	return b
}

func ptr[T any](v T) *T { return &v }

// subscribe creates a subscription of account to addr for topics.
func (b *bundle) subscribe(t testing.TB, account, addr string, topics []string, mod ...func(*forwarding.SubscriptionInput)) *forwarding.Subscription {
	in := forwarding.SubscriptionInput{Address: &addr, Topic: &topics}
	for _, m := range mod {
		m(&in)
	}
	sub, err := b.svc.CreateSubscription(context.Background(), account, in)
	require.NoError(t, err)
	return sub
}

func contactEvent(remoteID string) *models.Envelope {
	return &models.Envelope{Topic: "crm/contacts", UpdateType: models.UpdateCreated, ConnectionID: "con_x",
		Source: models.SourcePoll, DataPayload: json.RawMessage(`{"remoteId":"` + remoteID + `","email":"a@example.com"}`)}
}

// publish publishes events for account in a transaction of their own.
func (b *bundle) publish(t testing.TB, account string, events ...*models.Envelope) {
	require.NoError(t, b.svc.PublishNow(context.Background(), account, events...))
}

// drain dispatches until nothing is due.
func (b *bundle) drain(t testing.TB) {
	for range 100 {
		n, err := b.disp.DispatchDue(context.Background())
		require.NoError(t, err)
		if n == 0 {
			return
		}
	}
	t.Fatal("deliveries still due after 100 rounds")
}

func (b *bundle) deliveries(t testing.TB, where string, args ...any) []models.Delivery {
	var out []models.Delivery
	q := b.db.Order("created_at, id")
	if where != "" {
		q = q.Where(where, args...)
	}
	require.NoError(t, q.Find(&out).Error)
	return out
}

// verifyWithJWKS is a receiver that knows only the JWKS document.
func verifyWithJWKS(t testing.TB, jwksJSON []byte, h http.Header, body []byte) bool {
	t.Helper()
	ok, err := signingtest.VerifyWithJWKS(jwksJSON, h, body)
	require.NoError(t, err)
	return ok
}

func (b *bundle) jwksJSON(t testing.TB) []byte {
	set, err := b.svc.JWKS(context.Background())
	require.NoError(t, err)
	raw, err := json.Marshal(set)
	require.NoError(t, err)
	return raw
}
