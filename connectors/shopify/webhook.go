package shopify

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// Webhook delivery headers. Each is also sent unprefixed and lower-case by
// Shopify's newer event webhooks ("shopify-topic", …); header reads accept both.
const (
	HeaderTopic       = "X-Shopify-Topic"
	HeaderHmac        = "X-Shopify-Hmac-Sha256"
	HeaderShopDomain  = "X-Shopify-Shop-Domain"
	HeaderAPIVersion  = "X-Shopify-API-Version"
	HeaderWebhookID   = "X-Shopify-Webhook-Id"
	HeaderEventID     = "X-Shopify-Event-Id"
	HeaderTriggeredAt = "X-Shopify-Triggered-At"
)

// TopicAppUninstalled is sent when the merchant uninstalls the app.
const TopicAppUninstalled = "app/uninstalled"

// WebhookTopics are the topics Subscribe registers.
var WebhookTopics = []string{
	"orders/create", "orders/updated", "orders/delete",
	"customers/create", "customers/update", "customers/delete",
	"products/create", "products/update", "products/delete",
	TopicAppUninstalled,
}

// topicObject maps a webhook topic's resource part to the unified object.
var topicObject = map[string]string{
	"orders": models.ObjectOrders, "customers": models.ObjectCustomers, "products": models.ObjectProducts,
}

// header reads a Shopify header under its X-Shopify-* name or the newer
// unprefixed shopify-* name, case-insensitively.
func header(h http.Header, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	short := strings.TrimPrefix(name, "X-")
	if v := h.Get(short); v != "" {
		return v
	}
	// Header maps built by hand may hold non-canonical keys.
	for k, vs := range h {
		if len(vs) > 0 && (strings.EqualFold(k, name) || strings.EqualFold(k, short)) {
			return vs[0]
		}
	}
	return ""
}

// Sign returns the X-Shopify-Hmac-Sha256 value of body under secret:
// base64 (standard) of HMAC-SHA256 over the raw bytes.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

func (k *Connector) webhookSecret() string { return cmp.Or(k.cfg.WebhookSecret, k.cfg.ClientSecret) }

// VerifyWebhook checks X-Shopify-Hmac-Sha256 over the raw body with the app
// secret (cfg.WebhookSecret, else cfg.ClientSecret) in constant time. Shopify
// signs no timestamp: replay protection is dedup on the event id.
func (k *Connector) VerifyWebhook(r *connectors.InboundRequest) error {
	if r == nil {
		return fmt.Errorf("shopify webhook: no request: %w", connectors.ErrBadSignature)
	}
	secret := k.webhookSecret()
	if secret == "" {
		return fmt.Errorf("shopify webhook: no app secret configured: %w", connectors.ErrBadSignature)
	}
	got := strings.TrimSpace(header(r.Header, HeaderHmac))
	if got == "" {
		return fmt.Errorf("shopify webhook: missing %s: %w", HeaderHmac, connectors.ErrBadSignature)
	}
	sig, err := base64.StdEncoding.DecodeString(got)
	if err != nil {
		return fmt.Errorf("shopify webhook: %s is not base64: %w", HeaderHmac, connectors.ErrBadSignature)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(r.Body)
	if !hmac.Equal(sig, m.Sum(nil)) {
		return fmt.Errorf("shopify webhook: %w", connectors.ErrBadSignature)
	}
	return nil
}

// deleteBody is the body of */delete topics: {"id": …} (customers/delete
// adds a few empty fields: phone, addresses, tax_exemptions, consents).
type deleteBody struct {
	ID flexString `json:"id"`
	// Fields only a full resource carries; a */delete body never has them.
	CreatedAt json.RawMessage `json:"created_at"`
	UpdatedAt json.RawMessage `json:"updated_at"`
	Email     json.RawMessage `json:"email"`
	Title     json.RawMessage `json:"title"`
	LineItems json.RawMessage `json:"line_items"`
	Variants  json.RawMessage `json:"variants"`
}

// resourceShaped reports whether a */delete body carries fields of a full
// resource: it is then an update or create body under a forged topic
// (X-Shopify-Topic is not covered by the HMAC).
func (d deleteBody) resourceShaped() bool {
	for _, f := range []json.RawMessage{d.CreatedAt, d.UpdatedAt, d.Email, d.Title, d.LineItems, d.Variants} {
		if len(f) > 0 && string(f) != "null" {
			return true
		}
	}
	return false
}

// ErrTopicMismatch: a delivery's body does not have the shape its
// (unsigned) topic header announces.
var ErrTopicMismatch = errors.New("shopify webhook: body does not match its topic")

// ParseWebhook turns one verified delivery into at most one notice. Create
// and update bodies are the bare REST resource, so the notice carries the
// full normalized record; */delete bodies only hold {"id": …}. Because the
// HMAC covers the body but not X-Shopify-Topic, a delete notice is only
// accepted when its body has a delete body's shape (ErrTopicMismatch
// otherwise), and it asks sync to confirm the record is gone. The notice
// routes by X-Shopify-Shop-Domain; its EventID is "<X-Shopify-Event-Id>:
// <topic>" (the event id is shared by the topics one event fires, so the
// topic keeps them apart) or, without an event id, X-Shopify-Webhook-Id.
// app/uninstalled and topics of other resources yield no notice.
func (k *Connector) ParseWebhook(r *connectors.InboundRequest) ([]connectors.Notice, error) {
	n, topic, resource, action, err := headerNotice(r)
	if err != nil || n == nil {
		return []connectors.Notice{}, err
	}
	object := n.Object
	if v := header(r.Header, HeaderTriggeredAt); v != "" {
		if t, err := parseTime(v); err == nil {
			n.OccurredAt = t.UTC()
		}
	}
	if action == "delete" {
		var d deleteBody
		if err := json.Unmarshal(r.Body, &d); err != nil {
			return nil, fmt.Errorf("shopify webhook %s: malformed body: %w", topic, err)
		}
		if d.ID == "" {
			return nil, fmt.Errorf("shopify webhook %s: body has no id", topic)
		}
		if d.resourceShaped() {
			return nil, fmt.Errorf("shopify webhook %s: a full %s body under a delete topic: %w", topic, resource, ErrTopicMismatch)
		}
		// The topic is not signed: sync confirms the record is gone
		// (FetchRecords) before it emits the deletion.
		n.RemoteID, n.Deleted, n.ConfirmDeletion = string(d.ID), true, true
	} else {
		// create, update(d) and the other order topics (paid, cancelled, …)
		// carry the full resource.
		rec, err := normalize(object, r.Body)
		if err != nil {
			return nil, fmt.Errorf("shopify webhook %s: %w", topic, err)
		}
		n.RemoteID = rec.RemoteID
		if n.OccurredAt.IsZero() {
			n.OccurredAt = rec.RemoteUpdatedAt
		}
		n.Record = &rec
	}
	if n.OccurredAt.IsZero() {
		n.OccurredAt = cmp.Or(r.ReceivedAt, k.now()).UTC()
	}
	return []connectors.Notice{*n}, nil
}

// headerNotice reads what the headers say of a delivery: the notice without
// its record (nil for topics of other resources), the topic, its resource
// and action.
func headerNotice(r *connectors.InboundRequest) (n *connectors.Notice, topic, resource, action string, err error) {
	if r == nil {
		return nil, "", "", "", errors.New("shopify webhook: no request")
	}
	topic = strings.ToLower(strings.TrimSpace(header(r.Header, HeaderTopic)))
	if topic == "" {
		return nil, "", "", "", fmt.Errorf("shopify webhook: missing %s", HeaderTopic)
	}
	resource, action, _ = strings.Cut(topic, "/")
	object, ok := topicObject[resource]
	if !ok {
		return nil, topic, resource, action, nil
	}
	shop, err := NormalizeShop(header(r.Header, HeaderShopDomain))
	if err != nil {
		return nil, "", "", "", fmt.Errorf("shopify webhook %s: %s: %w", topic, HeaderShopDomain, err)
	}
	eventID := header(r.Header, HeaderEventID)
	if eventID != "" {
		eventID += ":" + topic
	} else {
		eventID = header(r.Header, HeaderWebhookID)
	}
	if eventID == "" {
		return nil, "", "", "", fmt.Errorf("shopify webhook %s: missing %s and %s", topic, HeaderEventID, HeaderWebhookID)
	}
	return &connectors.Notice{EventID: eventID, ExternalID: shop, Object: object}, topic, resource, action, nil
}

// WebhookKeys implements connectors.WebhookKeyer: the notice of a delivery
// from its headers and the body's top-level "id" alone (Shopify puts it
// first), without normalizing the resource. A body whose shape ParseWebhook
// would refuse is not judged here: the processor's ParseWebhook does.
func (k *Connector) WebhookKeys(r *connectors.InboundRequest) ([]connectors.Notice, error) {
	n, topic, _, action, err := headerNotice(r)
	if err != nil || n == nil {
		return []connectors.Notice{}, err
	}
	id, err := topLevelID(r.Body)
	if err != nil {
		return nil, fmt.Errorf("shopify webhook %s: %w", topic, err)
	}
	n.RemoteID, n.Deleted = id, action == "delete"
	return []connectors.Notice{*n}, nil
}

// topLevelID returns the text of the top-level "id" of a JSON object. It
// scans the bytes once, skipping nested values without decoding them (an
// order body is ~17 kB; decoding it to find the id cost as much as
// normalizing it), and decodes only the id's value.
func topLevelID(body []byte) (string, error) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return "", errors.New("body is not a JSON object")
	}
	depth := 0
	for i < len(body) {
		switch c := body[i]; c {
		case '{', '[':
			depth++
			i++
		case '}', ']':
			depth--
			i++
		case '"':
			end, err := stringEnd(body, i)
			if err != nil {
				return "", err
			}
			key := body[i : end+1]
			i = skipSpace(body, end+1)
			if depth == 1 && i < len(body) && body[i] == ':' && string(key) == `"id"` {
				v := skipSpace(body, i+1)
				e := v
				if e < len(body) && body[e] == '"' {
					if e, err = stringEnd(body, e); err != nil {
						return "", err
					}
					e++
				} else {
					for e < len(body) && !strings.ContainsRune(",}] \t\r\n", rune(body[e])) {
						e++
					}
				}
				var id flexString
				if err := json.Unmarshal(body[v:e], &id); err != nil {
					return "", fmt.Errorf("malformed id: %w", err)
				}
				if id == "" {
					return "", errors.New("body has no id")
				}
				return string(id), nil
			}
		default:
			i++
		}
		if depth == 0 {
			break
		}
	}
	return "", errors.New("body has no id")
}

// stringEnd returns the index of the quote closing the JSON string that
// opens at body[start].
func stringEnd(body []byte, start int) (int, error) {
	for j := start + 1; j < len(body); j++ {
		switch body[j] {
		case '\\':
			j++
		case '"':
			return j, nil
		}
	}
	return 0, errors.New("malformed body: unterminated string")
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// webhookEnvelope is a REST webhook subscription.
type webhookEnvelope struct {
	Webhook struct {
		ID      flexString `json:"id,omitempty"`
		Topic   string     `json:"topic"`
		Address string     `json:"address"`
		Format  string     `json:"format,omitempty"`
	} `json:"webhook"`
}

type webhookList struct {
	Webhooks []struct {
		ID      flexString `json:"id"`
		Topic   string     `json:"topic"`
		Address string     `json:"address"`
	} `json:"webhooks"`
}

// MetaWebhookIDs is the Metadata key holding the comma-separated webhook
// subscription ids Subscribe created.
const MetaWebhookIDs = "webhook_ids"

// Subscribe registers one REST webhook subscription per WebhookTopics topic
// (POST webhooks.json, format json) to callbackURL and returns their ids in
// Metadata["webhook_ids"]. A topic already subscribed to that address (422
// "has already been taken") is adopted.
func (k *Connector) Subscribe(ctx context.Context, c *connectors.Conn, callbackURL string) (map[string]string, error) {
	ids := make([]string, 0, len(WebhookTopics))
	for _, topic := range WebhookTopics {
		var body webhookEnvelope
		body.Webhook.Topic, body.Webhook.Address, body.Webhook.Format = topic, callbackURL, "json"
		_, resp, err := k.do(ctx, c, http.MethodPost, "webhooks.json", nil, body)
		var pe *connectors.ProviderError
		if errors.As(err, &pe) && pe.StatusCode == http.StatusUnprocessableEntity && strings.Contains(pe.Message, "taken") {
			id, lerr := k.findWebhook(ctx, c, topic, callbackURL)
			if lerr != nil {
				return nil, fmt.Errorf("subscribe %s: %w", topic, lerr)
			}
			ids = append(ids, id)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("subscribe %s: %w", topic, err)
		}
		var got webhookEnvelope
		if err := json.Unmarshal(resp, &got); err != nil || got.Webhook.ID == "" {
			return nil, fmt.Errorf("subscribe %s: malformed webhook response", topic)
		}
		ids = append(ids, string(got.Webhook.ID))
	}
	return map[string]string{MetaWebhookIDs: strings.Join(ids, ","), "webhook_address": callbackURL}, nil
}

func (k *Connector) findWebhook(ctx context.Context, c *connectors.Conn, topic, address string) (string, error) {
	_, body, err := k.do(ctx, c, http.MethodGet, "webhooks.json", url.Values{"topic": {topic}, "address": {address}}, nil)
	if err != nil {
		return "", err
	}
	var l webhookList
	if err := json.Unmarshal(body, &l); err != nil {
		return "", fmt.Errorf("malformed webhooks list: %w", err)
	}
	for _, w := range l.Webhooks {
		if w.Topic == topic && w.Address == address {
			return string(w.ID), nil
		}
	}
	return "", fmt.Errorf("webhook for %s already taken but not listed", topic)
}

// Unsubscribe deletes the subscriptions named in Metadata["webhook_ids"]
// (DELETE webhooks/{id}.json); one already gone (404) is fine, and a shop
// that uninstalled the app (401) has dropped them all already.
func (k *Connector) Unsubscribe(ctx context.Context, c *connectors.Conn) error {
	var errs []error
	ids := strings.Split(c.Metadata[MetaWebhookIDs], ",")
	sort.Strings(ids)
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		_, _, err := k.do(ctx, c, http.MethodDelete, "webhooks/"+url.PathEscape(id)+".json", nil, nil)
		var pe *connectors.ProviderError
		switch {
		case err == nil, errors.As(err, &pe) && pe.StatusCode == http.StatusNotFound:
		case errors.Is(err, connectors.ErrUnauthorized):
			return nil
		default:
			errs = append(errs, fmt.Errorf("unsubscribe webhook %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

// FetchRecords reads records by id (GET {resource}/{id}.json, status any for
// orders). Ids Shopify does not find (404) are not returned: sync uses this
// to confirm a delete notice before emitting a deletion.
func (k *Connector) FetchRecords(ctx context.Context, c *connectors.Conn, object string, remoteIDs []string) ([]models.Record, error) {
	resource, ok := resourcePath[object]
	if !ok {
		return nil, fmt.Errorf("shopify fetch %q: %w", object, connectors.ErrUnsupportedObject)
	}
	var out []models.Record
	seen := map[string]bool{}
	for _, id := range remoteIDs {
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		_, body, err := k.do(ctx, c, http.MethodGet, resource+"/"+url.PathEscape(id)+".json", nil, nil)
		var pe *connectors.ProviderError
		if errors.As(err, &pe) && pe.StatusCode == http.StatusNotFound {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("shopify fetch %s %s: %w", object, id, err)
		}
		var env map[string]json.RawMessage
		if err := json.Unmarshal(body, &env); err != nil || len(env) != 1 {
			return nil, &connectors.ProviderError{StatusCode: http.StatusOK, Code: "malformed_response", Message: fmt.Sprintf("fetch %s %s: not a {resource} envelope", object, id)}
		}
		for _, raw := range env {
			rec, err := normalize(object, raw)
			if err != nil {
				return nil, &connectors.ProviderError{StatusCode: http.StatusOK, Code: "malformed_response", Message: err.Error()}
			}
			out = append(out, rec)
		}
	}
	return out, nil
}
