// Package sandboxapp is the built-in sandbox app: a simulated CRM + shop that
// lives inside Tributary, so that `make run` and the README quickstart show
// change events flowing end to end with no third-party account.
//
// It owns the sandbox_records table. The ISV writes records through
// POST/PATCH/DELETE /v1/sandbox/{connectionId}/{object}…; each change bumps the
// record's version and stamps a modification time strictly increasing per
// connection, so polling by (modifiedAt, remoteId) is exact. A connection in
// webhook mode also gets each change as a signed native webhook, POSTed
// synchronously to Tributary's /inbound/sandbox after the write commits.
// The Service implements connectors/sandbox.Store, through which the sandbox
// connector polls and reads records like any provider API.
//
// It does not touch connections, snapshots or events: those belong to
// sync/connections, sync/reconcile and forwarding.
package sandboxapp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/sandbox"
	"github.com/tributary/tributary/models"
)

// Connections finds an account's connection (sync/connections.Service does).
type Connections interface {
	// Get returns the connection; another account's id is a models not_found.
	Get(ctx context.Context, accountID, connectionID string) (*models.Connection, error)
}

// DefaultWebhookTimeout bounds one webhook POST to the inbound endpoint.
const DefaultWebhookTimeout = 10 * time.Second

// Service is the sandbox app.
type Service struct {
	// DB holds sandbox_records.
	DB *gorm.DB
	// Connections checks that a connection belongs to the account and is a
	// sandbox connection, and tells its mode (Metadata "mode").
	Connections Connections
	// Secret signs webhooks (X-Sandbox-Signature); the sandbox connector
	// verifies with the same secret (see sandbox.DeriveSecret).
	Secret []byte
	// InboundURL is where webhooks go, e.g. http://127.0.0.1:8080/inbound/sandbox.
	InboundURL string
	// HTTP sends webhooks (default: a client with DefaultWebhookTimeout).
	HTTP *http.Client
	// Deliver, when set, hands each signed webhook to the engine's inbound
	// receiver in-process instead of POSTing it to InboundURL: the same
	// signature check and inbox, without a loopback HTTP round trip or the
	// per-address limits meant for outside providers.
	Deliver func(ctx context.Context, req *connectors.InboundRequest) error
	// Now is the app's clock (default time.Now).
	Now func() time.Time

	clockMu sync.Mutex
	clock   map[string]time.Time // connection → last modification time stamped
}

var _ sandbox.Store = (*Service)(nil)

// New returns a Service with its defaults filled in.
func New(db *gorm.DB, conns Connections, secret []byte, inboundURL string) *Service {
	return &Service{DB: db, Connections: conns, Secret: secret, InboundURL: inboundURL,
		HTTP: newClient(), Now: time.Now}
}

// defaultClient sends the webhooks of a Service without its own client.
var defaultClient = newClient()

// newClient keeps enough idle connections to the one inbound address for
// concurrent writers (net/http keeps 2 per host by default: the rest would
// dial, and leave TIME_WAIT sockets, for every webhook).
func newClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 256, 256
	return &http.Client{Timeout: DefaultWebhookTimeout, Transport: tr}
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) client() *http.Client {
	if s.HTTP != nil {
		return s.HTTP
	}
	return defaultClient
}

// connection returns the account's sandbox connection; anything else
// (another account's, another app's, a missing one) is not_found.
func (s *Service) connection(ctx context.Context, accountID, connectionID string) (*models.Connection, error) {
	c, err := s.Connections.Get(ctx, accountID, connectionID)
	if err != nil {
		return nil, err
	}
	if c == nil || c.App != sandbox.AppName {
		return nil, models.Errorf(models.ErrCodeNotFound, "no sandbox connection %s", connectionID)
	}
	return c, nil
}

// webhookMode reports whether the connection asked for native webhooks.
func webhookMode(c *models.Connection) bool {
	var meta map[string]any
	if err := json.Unmarshal([]byte(c.Metadata), &meta); err != nil {
		return false
	}
	return meta["mode"] == sandbox.ModeWebhook
}

func checkObject(object string) error {
	if !sandbox.ValidObject(object) {
		return models.Errorf(models.ErrCodeNotFound, "the sandbox app has no object %q", object)
	}
	return nil
}

func notFound(object, remoteID string) error {
	return models.Errorf(models.ErrCodeNotFound, "no sandbox %s record %s", object, remoteID)
}

func stored(r *models.SandboxRecord) sandbox.StoredRecord {
	return sandbox.StoredRecord{
		RemoteID: r.RemoteID, Data: json.RawMessage(r.Data), Deleted: r.Deleted, Version: r.Version,
		ModifiedAt: r.ModifiedAt.UTC(), CreatedAt: r.CreatedAt.UTC(),
	}
}

// DeleteConnection removes every record of a connection (call it when the
// connection is deleted).
func (s *Service) DeleteConnection(ctx context.Context, connectionID string) error {
	if err := s.DB.WithContext(ctx).Where("connection_id = ?", connectionID).Delete(&models.SandboxRecord{}).Error; err != nil {
		return fmt.Errorf("delete sandbox records of %s: %w", connectionID, err)
	}
	s.clockMu.Lock()
	delete(s.clock, connectionID)
	s.clockMu.Unlock()
	return nil
}
