// Package inbound owns native provider webhooks after the HTTP layer: the
// durable inbox (table inbox_items) and its asynchronous processing.
//
// Receiver is the synchronous half behind POST /inbound/{app}. It verifies
// the provider's signature on the raw request before anything is stored
// (bad or missing → unauthorized, nothing stored), stores the raw request
// once per provider event (the unique (app, dedup key) makes a repeated
// delivery a no-op) and returns, so the provider gets its 200 quickly.
//
// Processor is the asynchronous half: it claims due inbox items with a
// lease, parses them into notices, routes each notice to the connections of
// (app, external id), fetches thin notices with the provider's batch read,
// and in one transaction per item reconciles the records, publishes one event
// per change and marks the item processed. Failures are retried with an
// exponential backoff; a request that verified but cannot be parsed is kept
// (it was accepted with 200, so the provider does not retry it forever) and
// marked processed with its parse error for an operator to see.
//
// Prune deletes processed items once no provider would retry them (dedup
// window, default 7 days).
//
// Inbound processing may run beside a poll of the same connection: the
// reconcile upsert decides, so a change seen by both is emitted once.
//
// The package does not touch HTTP, connections' credentials or forwarding's
// tables: it reaches them through the Opener and Publisher interfaces.
package inbound

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/internal/dbtext"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
)

// Apps finds a connector by app name (connectors.Registry implements it).
type Apps interface {
	Get(name string) (connectors.Connector, bool)
}

// maxDedupKey is the width of inbox_items.dedup_key.
const maxDedupKey = 255

// droppedHeaders are request headers not kept in the inbox: credentials of
// the caller's own infrastructure that processing never needs.
var droppedHeaders = []string{"Authorization", "Cookie", "Proxy-Authorization"}

// Receiver verifies and stores native webhooks.
type Receiver struct {
	DB   *gorm.DB
	Apps Apps
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives refused and duplicate deliveries; nil means slog.Default().
	Logger *slog.Logger
	// Notify, when set, is called after a new item is stored (Processor.Wake).
	Notify func()
}

func (r *Receiver) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func (r *Receiver) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

// webhookApp returns app's WebhookReceiver, or a not_found error.
func webhookApp(apps Apps, app string) (connectors.Connector, connectors.WebhookReceiver, error) {
	if apps == nil {
		return nil, nil, models.Errorf(models.ErrCodeNotFound, "no app %q", app)
	}
	c, ok := apps.Get(app)
	if !ok {
		return nil, nil, models.Errorf(models.ErrCodeNotFound, "no app %q", app)
	}
	wr, ok := c.(connectors.WebhookReceiver)
	if !ok {
		return nil, nil, models.Errorf(models.ErrCodeNotFound, "app %q does not receive webhooks", app)
	}
	return c, wr, nil
}

// Receive verifies req's signature for app and stores it in the inbox. It
// returns nil for a stored request and for a repeated delivery of one
// already stored; a not_found error for an app without native webhooks; an
// unauthorized error, with nothing stored, when the signature is missing,
// wrong or stale.
//
// A request that verifies but does not parse is stored too (keyed by the
// hash of its body) and answered 200: the processor records the parse error.
func (r *Receiver) Receive(ctx context.Context, app string, req *connectors.InboundRequest) error {
	if req == nil {
		return models.Errorf(models.ErrCodeInvalid, "no request")
	}
	_, wr, err := webhookApp(r.Apps, app)
	if err != nil {
		return err
	}
	if err := wr.VerifyWebhook(req); err != nil {
		r.log().WarnContext(ctx, "inbound webhook refused", "app", app, "err", err)
		return models.Errorf(models.ErrCodeUnauthorized, "invalid webhook signature")
	}
	// Only the keys are needed now: a connector that can tell them without
	// normalizing the body does (ParseWebhook runs when the item is processed).
	var notices []connectors.Notice
	var perr error
	if k, ok := wr.(connectors.WebhookKeyer); ok {
		notices, perr = k.WebhookKeys(req)
	} else {
		notices, perr = wr.ParseWebhook(req)
	}
	if perr != nil {
		r.log().WarnContext(ctx, "inbound webhook verified but does not parse; stored for the record", "app", app, "err", perr)
	}
	now := r.now()
	header := req.Header.Clone()
	if header == nil {
		header = http.Header{}
	}
	for _, h := range droppedHeaders {
		header.Del(h)
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("inbound %s: encode header: %w", app, err)
	}
	received := req.ReceivedAt.UTC()
	if req.ReceivedAt.IsZero() {
		received = now
	}
	body := req.Body
	if body == nil {
		body = []byte{}
	}
	item := models.InboxItem{
		ID:            models.NewID(models.PrefixInbox),
		App:           app,
		DedupKey:      DedupKey(notices, body),
		OrderKey:      OrderKey(app, notices),
		Method:        req.Method,
		URL:           dbtext.CleanString(req.URL, 2048),
		Header:        string(hj),
		Body:          body,
		ReceivedAt:    received,
		NextAttemptAt: now,
	}
	// One statement, the request's only write (no reflection on the hot path).
	res := r.DB.WithContext(ctx).Exec(`INSERT INTO inbox_items
  (id, app, dedup_key, method, url, header, body, received_at, next_attempt_at, lease_token, attempts, last_error, order_key)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, '', 0, '', ?) ON CONFLICT (app, dedup_key) DO NOTHING`,
		item.ID, item.App, item.DedupKey, item.Method, item.URL, item.Header, item.Body, item.ReceivedAt, item.NextAttemptAt, item.OrderKey)
	if res.Error != nil {
		if storage.IsUniqueViolation(res.Error) {
			return r.duplicate(ctx, app, item.DedupKey)
		}
		return fmt.Errorf("inbound %s: store: %w", app, res.Error)
	}
	if res.RowsAffected == 0 {
		return r.duplicate(ctx, app, item.DedupKey)
	}
	if r.Notify != nil {
		r.Notify()
	}
	return nil
}

func (r *Receiver) duplicate(ctx context.Context, app, key string) error {
	r.log().InfoContext(ctx, "inbound webhook already received; ignored", "app", app, "dedupKey", key)
	return nil
}

// DedupKey is the inbox key of a delivery: the provider's event id when it
// carries one, a hash of its sorted, distinct event ids when it carries
// several (a retried HubSpot batch has the same ids), and the hash of the raw
// body when it carries none (or does not parse).
func DedupKey(notices []connectors.Notice, body []byte) string {
	ids := make([]string, 0, len(notices))
	for _, n := range notices {
		if n.EventID != "" {
			ids = append(ids, n.EventID)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	switch {
	case len(ids) == 1 && len(ids[0]) <= maxDedupKey:
		return ids[0]
	case len(ids) >= 1:
		sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
		return "ids:" + hex.EncodeToString(sum[:])
	}
	sum := sha256.Sum256(body)
	return "body:" + hex.EncodeToString(sum[:])
}

// OrderKey is the inbox ordering key of a delivery: a hash naming its one
// record (app, external id, object, remote id) when all its notices concern
// the same record, else "" (a batch of several records, or none). Items with
// the same key are never processed by two workers at once, so a record's
// changes apply in received order.
func OrderKey(app string, notices []connectors.Notice) string {
	if len(notices) == 0 {
		return ""
	}
	n0 := notices[0]
	for _, n := range notices[1:] {
		if n.ExternalID != n0.ExternalID || n.Object != n0.Object || n.RemoteID != n0.RemoteID {
			return ""
		}
	}
	sum := sha256.Sum256([]byte(app + "\x00" + n0.ExternalID + "\x00" + n0.Object + "\x00" + n0.RemoteID))
	return hex.EncodeToString(sum[:])
}
