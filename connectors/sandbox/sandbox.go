// Package sandbox is the connector of Tributary's built-in sandbox app: a
// simulated CRM + shop that runs inside Tributary (package sync/sandboxapp),
// so a new user sees change events flow with no third-party account.
//
// The connector behaves like any other app: it polls changes since a cursor
// (with a lookback), lists every live record for full scans, reads records by
// id, verifies and parses the app's signed native webhooks, and normalizes the
// app's own snake_case record shapes into the unified model. Instead of HTTP
// it reads the app's records through the small Store interface declared here.
//
// It owns the app's wire format (record shapes, webhook body and signature)
// and nothing else: it never touches storage, sync, forwarding or gin. The
// in-memory fake of the app lives in the fake subpackage.
package sandbox

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// AppName is the sandbox's app name (registry key, /inbound/sandbox).
const AppName = "sandbox"

// Connection modes (credentials {"mode": …}).
const (
	ModeWebhook = "webhook"
	ModePolling = "polling"
)

// Paging and cursor facts.
const (
	// Lookback is subtracted from a cursor before listing, so a record
	// committed late with an earlier modification time is still read.
	// Re-reading is free: reconcile is idempotent.
	Lookback = time.Minute
	// DefaultPageSize is a listing's page size when the request has no hint.
	DefaultPageSize = 100
	// MaxPageSize bounds a listing's page.
	MaxPageSize = 500
)

// StoredRecord is one record of the app as its store keeps it.
type StoredRecord struct {
	RemoteID string
	// Data is the record's fields: a JSON object in the app's own shape,
	// without the bookkeeping fields (id, created_at, updated_at, deleted).
	Data json.RawMessage
	// Deleted marks a record deleted in the app (Data is its last state).
	Deleted bool
	// Version increases with every change, from 1.
	Version int64
	// ModifiedAt is the app's modstamp: strictly increasing per connection.
	ModifiedAt time.Time
	CreatedAt  time.Time
}

// Store is how the connector reads the sandbox app's records. Every method
// is scoped to one connection (the connection id is the app's tenant).
type Store interface {
	// ListChanged returns up to limit records of object, deleted ones
	// included, whose (ModifiedAt, RemoteID) is after (since, afterRemoteID),
	// ordered by ModifiedAt then RemoteID.
	ListChanged(ctx context.Context, connectionID, object string, since time.Time, afterRemoteID string, limit int) ([]StoredRecord, error)
	// ListLive returns up to limit live (not deleted) records of object with
	// RemoteID > afterRemoteID, ordered by RemoteID.
	ListLive(ctx context.Context, connectionID, object, afterRemoteID string, limit int) ([]StoredRecord, error)
	// Get returns the records of object among remoteIDs that exist (deleted
	// ones included), in any order.
	Get(ctx context.Context, connectionID, object string, remoteIDs []string) ([]StoredRecord, error)
	// Latest returns the (ModifiedAt, RemoteID) of the most recently
	// modified record of object, zero values when there is none.
	Latest(ctx context.Context, connectionID, object string) (time.Time, string, error)
}

// Connector is the sandbox app.
type Connector struct {
	store  Store
	secret []byte
}

var (
	_ connectors.Connector       = (*Connector)(nil)
	_ connectors.Normalizer      = (*Connector)(nil)
	_ connectors.ChangeLister    = (*Connector)(nil)
	_ connectors.WebhookReceiver = (*Connector)(nil)
	_ connectors.Fetcher         = (*Connector)(nil)
	_ connectors.CredentialsApp  = (*Connector)(nil)
)

// New builds the connector reading store; webhookSecret verifies the app's
// webhooks (X-Sandbox-Signature). With an empty secret every webhook is refused.
func New(store Store, webhookSecret []byte) *Connector {
	return &Connector{store: store, secret: slices.Clone(webhookSecret)}
}

// DeriveSecret derives the sandbox webhook secret from the deployment's
// master key, so every replica signs and verifies with the same secret
// without storing another one.
func DeriveSecret(masterKey []byte) []byte {
	m := hmac.New(sha256.New, masterKey)
	m.Write([]byte("tributary sandbox webhook secret v1"))
	return m.Sum(nil)
}

// Objects lists the unified objects the sandbox app has: all of them.
func Objects() []string { return models.Objects() }

// Info describes the app.
func (c *Connector) Info() connectors.Info {
	objs := Objects()
	topics := make([]string, 0, len(objs))
	for _, o := range objs {
		topics = append(topics, models.TopicFor(o))
	}
	return connectors.Info{
		Name:        AppName,
		DisplayName: "Sandbox",
		Category:    models.CategoryCRM + "," + models.CategoryCommerce,
		Objects:     objs,
		Topics:      topics,
		Capture:     []string{connectors.CaptureWebhook, connectors.CapturePolling},
		Auth:        connectors.AuthCredentials,
	}
}

// ValidateCredentials accepts {"mode": "webhook"|"polling"} (mode defaults to
// polling). The external id is left empty: the connection id routes the
// app's webhooks. The mode is kept as metadata.
func (c *Connector) ValidateCredentials(_ context.Context, creds map[string]string) (string, map[string]string, error) {
	for _, k := range slices.Sorted(maps.Keys(creds)) {
		if k != "mode" {
			return "", nil, models.FieldError("credentials."+k, "the sandbox app takes only credentials.mode, not %q", k)
		}
	}
	mode := creds["mode"]
	switch mode {
	case "":
		mode = ModePolling
	case ModeWebhook, ModePolling:
	default:
		return "", nil, models.FieldError("credentials.mode", "credentials.mode must be %q or %q, not %q", ModeWebhook, ModePolling, mode)
	}
	return "", map[string]string{"mode": mode}, nil
}

func supported(object string) error {
	if models.TopicFor(object) == "" {
		return fmt.Errorf("sandbox %s: %w", object, connectors.ErrUnsupportedObject)
	}
	return nil
}

// storeError marks a store failure as a temporary provider error, so sync
// keeps the cursor and retries later.
func storeError(what string, err error) error {
	pe := &connectors.ProviderError{Code: "store_error", Message: err.Error(), Temporary: true}
	return fmt.Errorf("sandbox %s: %w (%w)", what, pe, err)
}
