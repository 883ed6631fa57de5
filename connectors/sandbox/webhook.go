package sandbox

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// Webhook headers.
const (
	// HeaderSignature is "sha256=<hex HMAC-SHA256(secret, raw body)>".
	HeaderSignature = "X-Sandbox-Signature"
	// HeaderEventID repeats the body's eventId.
	HeaderEventID = "X-Sandbox-Event-Id"
)

// Webhook actions.
const (
	ActionCreated = "created"
	ActionUpdated = "updated"
	ActionDeleted = "deleted"
)

// Webhook is the body of one sandbox webhook: one change of one record.
type Webhook struct {
	// EventID is unique per change ("<remoteId>.v<version>"), so a repeated
	// delivery of the same change carries the same id.
	EventID string `json:"eventId"`
	// Account is the connection id (the app's tenant); it routes the notice.
	Account string `json:"account"`
	Object  string `json:"object"`
	Action  string `json:"action"`
	// OccurredAt is the record's modification time (RFC 3339, nanoseconds).
	OccurredAt time.Time `json:"occurredAt"`
	// Record is the record as the app serves it (see AppRecord).
	Record json.RawMessage `json:"record"`
}

// WebhookFor builds the webhook announcing the current state of r, a record
// of object in the app tenant account (a connection id).
func WebhookFor(account, object string, r StoredRecord) (*Webhook, error) {
	raw, err := AppRecord(r)
	if err != nil {
		return nil, err
	}
	action := ActionUpdated
	switch {
	case r.Deleted:
		action = ActionDeleted
	case r.Version <= 1:
		action = ActionCreated
	}
	return &Webhook{
		EventID: fmt.Sprintf("%s.v%d", r.RemoteID, r.Version), Account: account, Object: object,
		Action: action, OccurredAt: r.ModifiedAt.UTC(), Record: raw,
	}, nil
}

// Sign serializes w and returns the body with the headers to send it with.
func (w *Webhook) Sign(secret []byte) ([]byte, http.Header, error) {
	body, err := json.Marshal(w)
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox webhook %s: %w", w.EventID, err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(HeaderSignature, Signature(secret, body))
	h.Set(HeaderEventID, w.EventID)
	return body, h, nil
}

// Signature is the X-Sandbox-Signature value of body: "sha256=" + hex HMAC-SHA256.
func Signature(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifyWebhook checks X-Sandbox-Signature over the raw body in constant
// time; a missing or wrong signature is connectors.ErrBadSignature.
func (c *Connector) VerifyWebhook(r *connectors.InboundRequest) error {
	if len(c.secret) == 0 {
		return fmt.Errorf("sandbox webhook secret not configured: %w", connectors.ErrBadSignature)
	}
	got := strings.TrimSpace(r.Header.Get(HeaderSignature))
	hexSig, ok := strings.CutPrefix(got, "sha256=")
	if !ok {
		return fmt.Errorf("missing %s sha256= signature: %w", HeaderSignature, connectors.ErrBadSignature)
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%s is not hex: %w", HeaderSignature, connectors.ErrBadSignature)
	}
	m := hmac.New(sha256.New, c.secret)
	m.Write(r.Body)
	if !hmac.Equal(sig, m.Sum(nil)) {
		return fmt.Errorf("%s does not match the body: %w", HeaderSignature, connectors.ErrBadSignature)
	}
	return nil
}

// ParseWebhook turns a verified webhook into one notice carrying the full
// normalized record.
func (c *Connector) ParseWebhook(r *connectors.InboundRequest) ([]connectors.Notice, error) {
	return parseWebhook(r.Body)
}

func parseWebhook(body []byte) ([]connectors.Notice, error) {
	var w Webhook
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, models.Errorf(models.ErrCodeInvalid, "sandbox webhook: %v", err)
	}
	switch {
	case w.EventID == "":
		return nil, models.Errorf(models.ErrCodeInvalid, "sandbox webhook: no eventId")
	case w.Account == "":
		return nil, models.Errorf(models.ErrCodeInvalid, "sandbox webhook %s: no account", w.EventID)
	case !ValidObject(w.Object):
		return nil, models.Errorf(models.ErrCodeInvalid, "sandbox webhook %s: unknown object %q", w.EventID, w.Object)
	case w.Action != ActionCreated && w.Action != ActionUpdated && w.Action != ActionDeleted:
		return nil, models.Errorf(models.ErrCodeInvalid, "sandbox webhook %s: unknown action %q", w.EventID, w.Action)
	}
	rec, err := normalize(w.Object, w.Record)
	if err != nil {
		return nil, models.Errorf(models.ErrCodeInvalid, "sandbox webhook %s: %v", w.EventID, err)
	}
	deleted := w.Action == ActionDeleted || rec.Deleted
	if deleted && !rec.Deleted {
		rec = markDeleted(rec)
	}
	occurred := w.OccurredAt.UTC()
	if occurred.IsZero() {
		occurred = rec.RemoteUpdatedAt
	}
	return []connectors.Notice{{
		EventID: w.EventID, ExternalID: w.Account, Object: w.Object, RemoteID: rec.RemoteID,
		Deleted: deleted, OccurredAt: occurred, Record: &rec,
	}}, nil
}

// markDeleted flags a record (and its unified Common) as deleted.
func markDeleted(rec models.Record) models.Record {
	rec.Deleted = true
	raw, err := withDeleted(rec.Raw)
	if err != nil {
		return rec
	}
	if again, err := normalize(rec.Object, raw); err == nil {
		return again
	}
	return rec
}

func withDeleted(raw json.RawMessage) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, fmt.Errorf("record is not an object")
	}
	m[FieldDeleted] = json.RawMessage("true")
	return json.Marshal(m)
}
