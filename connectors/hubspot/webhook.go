package hubspot

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// Webhook headers (HubSpot spells the v3 one with "-v3" and "-V3"; headers
// are matched case-insensitively).
const (
	HeaderSignatureV3 = "X-HubSpot-Signature-v3"
	HeaderTimestamp   = "X-HubSpot-Request-Timestamp"
	HeaderSignature   = "X-HubSpot-Signature"
	HeaderSigVersion  = "X-HubSpot-Signature-Version"
)

// uriEscapes are the escapes HubSpot decodes in the request URI before it
// signs (docs, "Validate the v3 request signature").
var uriEscapes = strings.NewReplacer(
	"%3A", ":", "%2F", "/", "%3F", "?", "%40", "@", "%21", "!", "%24", "$",
	"%27", "'", "%28", "(", "%29", ")", "%2A", "*", "%2C", ",", "%3B", ";",
	"%3a", ":", "%2f", "/", "%3f", "?", "%2a", "*", "%2c", ",", "%3b", ";",
)

// DecodeSignedURI applies HubSpot's v3 URI decoding: the 12 listed escapes
// and nothing else.
func DecodeSignedURI(uri string) string { return uriEscapes.Replace(uri) }

// SignV3 computes X-HubSpot-Signature-v3: base64(HMAC-SHA256(secret, method +
// uri + body + timestamp)), uri as given (decode it first with DecodeSignedURI).
func SignV3(secret, method, uri string, body []byte, timestamp string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(method))
	m.Write([]byte(uri))
	m.Write(body)
	m.Write([]byte(timestamp))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// signV1 is the legacy v1 signature hex(SHA-256(secret + body)). It is kept
// for the fixture vectors and for the fake's legacy header; VerifyWebhook does
// not accept it alone (it carries no timestamp, so it can be replayed).
func signV1(secret string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(secret))
	h.Write(body)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// signV2 is the v2 signature hex(SHA-256(secret + method + uri + body)) used
// by workflow actions and CRM cards, not webhooks; kept for the vectors.
func signV2(secret, method, uri string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(secret + method + uri))
	h.Write(body)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// SignV1 computes the legacy X-HubSpot-Signature (v1) header value.
func SignV1(secret string, body []byte) string { return signV1(secret, body) }

func headerValue(h http.Header, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	for k, vs := range h {
		if strings.EqualFold(k, name) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

func (c *Connector) webhookSecret() string {
	return cmp.Or(c.cfg.WebhookSecret, c.cfg.ClientSecret)
}

// VerifyWebhook checks the v3 signature over method + URI + raw body +
// timestamp with the app's client secret, and that the timestamp lies within
// five minutes of now. Anything missing or wrong is ErrBadSignature.
func (c *Connector) VerifyWebhook(r *connectors.InboundRequest) error {
	if r == nil {
		return fmt.Errorf("%w: no request", connectors.ErrBadSignature)
	}
	sig := headerValue(r.Header, HeaderSignatureV3)
	ts := headerValue(r.Header, HeaderTimestamp)
	if sig == "" || ts == "" {
		return fmt.Errorf("%w: missing %s or %s", connectors.ErrBadSignature, HeaderSignatureV3, HeaderTimestamp)
	}
	ms, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: bad timestamp %q", connectors.ErrBadSignature, ts)
	}
	now := c.now()
	sent := time.UnixMilli(ms)
	if now.Sub(sent) > signatureWindow || sent.Sub(now) > signatureWindow {
		return fmt.Errorf("%w: timestamp %s outside the 5-minute window", connectors.ErrBadSignature, sent.UTC().Format(time.RFC3339))
	}
	got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sig))
	if err != nil {
		return fmt.Errorf("%w: signature is not base64", connectors.ErrBadSignature)
	}
	secret := c.webhookSecret()
	if secret == "" {
		return fmt.Errorf("%w: no client secret configured", connectors.ErrBadSignature)
	}
	method := cmp.Or(r.Method, http.MethodPost)
	// HubSpot signs the URI with the listed escapes decoded; the official
	// SDKs sign it verbatim. Either form proves knowledge of the secret.
	for _, uri := range candidateURIs(r.URL) {
		want, _ := base64.StdEncoding.DecodeString(SignV3(secret, method, uri, r.Body, ts))
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: v3 signature mismatch", connectors.ErrBadSignature)
}

func candidateURIs(u string) []string {
	d := DecodeSignedURI(u)
	if d == u {
		return []string{u}
	}
	return []string{d, u}
}

// notice is one element of a webhook delivery. Ids arrive as JSON numbers
// (strings in some generic payloads); flexID accepts both.
type notice struct {
	ObjectID         flexID   `json:"objectId"`
	EventID          flexID   `json:"eventId"`
	SubscriptionID   flexID   `json:"subscriptionId"`
	PortalID         flexID   `json:"portalId"`
	AppID            flexID   `json:"appId"`
	OccurredAt       flexID   `json:"occurredAt"`
	SubscriptionType string   `json:"subscriptionType"`
	EventType        string   `json:"eventType"`
	ObjectTypeID     string   `json:"objectTypeId"`
	PropertyName     string   `json:"propertyName"`
	AttemptNumber    int      `json:"attemptNumber"`
	ChangeFlag       string   `json:"changeFlag"`
	PrimaryObjectID  flexID   `json:"primaryObjectId"`
	NewObjectID      flexID   `json:"newObjectId"`
	MergedObjectIDs  []flexID `json:"mergedObjectIds"`
	FromObjectID     flexID   `json:"fromObjectId"`
}

// flexID is an id or millisecond time sent as a JSON number or string.
type flexID string

// UnmarshalJSON accepts a number, a string or null.
func (f *flexID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		*f = ""
		return nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexID(strings.TrimSpace(s))
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*f = flexID(n.String())
	return nil
}

// ParseWebhook turns a delivery (a JSON array of thin notices) into Notices
// ordered by occurredAt. Notices of object types Tributary does not capture
// (tickets, products, conversations, …) are skipped.
//
// EventID: HubSpot says eventId "is not guaranteed to be unique", and a retry
// of the same event resends the same fields with a higher attemptNumber. The
// id is therefore portalId:subscriptionId:eventId:objectId:occurredAt (plus
// the property for propertyChange): stable across retries, distinct for
// distinct events.
func (c *Connector) ParseWebhook(r *connectors.InboundRequest) ([]connectors.Notice, error) {
	if r == nil {
		return nil, fmt.Errorf("hubspot webhook: no request")
	}
	return parseNotices(r.Body)
}

func parseNotices(body []byte) ([]connectors.Notice, error) {
	var raw []notice
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("hubspot webhook: body is not an array of notices: %w", err)
	}
	out := make([]connectors.Notice, 0, len(raw))
	for i, n := range raw {
		typ := cmp.Or(n.SubscriptionType, n.EventType)
		prefix, action, ok := strings.Cut(typ, ".")
		if !ok {
			return nil, fmt.Errorf("hubspot webhook: notice %d: bad subscriptionType %q", i, typ)
		}
		var object string
		if prefix == "object" {
			object = objectTypeIDs[n.ObjectTypeID]
		} else if spec, ok := crmObjectForPrefix(prefix); ok {
			object = spec.unified
		}
		if object == "" {
			continue // not a captured object type
		}
		if n.PortalID == "" {
			return nil, fmt.Errorf("hubspot webhook: notice %d: missing portalId", i)
		}
		occurred, err := parseMillis(n.OccurredAt)
		if err != nil {
			return nil, fmt.Errorf("hubspot webhook: notice %d: %w", i, err)
		}
		base := connectors.Notice{ExternalID: string(n.PortalID), Object: object, OccurredAt: occurred}
		id := func(objectID flexID, suffix string) string {
			s := strings.Join([]string{string(n.PortalID), string(n.SubscriptionID), string(n.EventID), string(objectID), string(n.OccurredAt)}, ":")
			if suffix != "" {
				s += ":" + suffix
			}
			return s
		}
		add := func(objectID flexID, deleted bool, suffix string) error {
			if objectID == "" {
				return fmt.Errorf("hubspot webhook: notice %d (%s): missing object id", i, typ)
			}
			nn := base
			nn.RemoteID = string(objectID)
			nn.Deleted = deleted
			nn.EventID = id(objectID, suffix)
			out = append(out, nn)
			return nil
		}
		switch action {
		case "deletion", "privacyDeletion":
			err = add(n.ObjectID, true, "")
		case "merge":
			// The winner (newObjectId when HubSpot created a new record,
			// else primaryObjectId) changed; the losers are gone.
			winner := cmp.Or(n.NewObjectID, n.PrimaryObjectID, n.ObjectID)
			err = add(winner, false, "merge")
			for _, m := range n.MergedObjectIDs {
				if err == nil && m != winner {
					err = add(m, true, "merged")
				}
			}
		case "associationChange":
			err = add(cmp.Or(n.FromObjectID, n.ObjectID), false, "association")
		default: // creation, propertyChange, restore, …
			err = add(n.ObjectID, false, n.PropertyName)
		}
		if err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(out, func(a, b connectors.Notice) int { return a.OccurredAt.Compare(b.OccurredAt) })
	return out, nil
}

func parseMillis(f flexID) (time.Time, error) {
	if f == "" {
		return time.Time{}, fmt.Errorf("missing occurredAt")
	}
	ms, err := strconv.ParseInt(string(f), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad occurredAt %q", string(f))
	}
	return time.UnixMilli(ms).UTC(), nil
}

// batchReadResponse is POST /crm/v3/objects/{type}/batch/read (200, or 207
// when some ids were not found).
type batchReadResponse struct {
	Status    string            `json:"status"`
	Results   []json.RawMessage `json:"results"`
	NumErrors int               `json:"numErrors"`
}

type batchInput struct {
	ID string `json:"id"`
}

// batchReadRequest is BatchReadInputSimplePublicObjectId: inputs,
// properties and propertiesWithHistory are required.
type batchReadRequest struct {
	Properties            []string     `json:"properties"`
	PropertiesWithHistory []string     `json:"propertiesWithHistory"`
	Inputs                []batchInput `json:"inputs"`
}

// FetchRecords reads records by id with the CRM v3 batch read, 100 ids a
// call. Ids HubSpot does not find (errors with status 207) are not returned.
func (c *Connector) FetchRecords(ctx context.Context, conn *connectors.Conn, object string, remoteIDs []string) ([]models.Record, error) {
	spec, ok := crmObjectFor(object)
	if !ok {
		return nil, fmt.Errorf("hubspot fetch %s: %w", object, connectors.ErrUnsupportedObject)
	}
	ids := make([]string, 0, len(remoteIDs))
	seen := map[string]bool{}
	for _, id := range remoteIDs {
		if id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	var out []models.Record
	for chunk := range slices.Chunk(ids, batchReadMax) {
		body := batchReadRequest{Properties: spec.properties, PropertiesWithHistory: []string{}, Inputs: make([]batchInput, 0, len(chunk))}
		for _, id := range chunk {
			body.Inputs = append(body.Inputs, batchInput{ID: id})
		}
		var resp batchReadResponse
		if err := c.do(ctx, conn, "POST", "/crm/v3/objects/"+spec.urlPath()+"/batch/read", map[string][]string{"archived": {"false"}}, body, &resp); err != nil {
			return nil, fmt.Errorf("batch read %s: %w", spec.path, err)
		}
		raws, err := c.attachAssociations(ctx, conn, spec, resp.Results)
		if err != nil {
			return nil, fmt.Errorf("batch read %s: %w", spec.path, err)
		}
		for _, raw := range raws {
			rec, err := normalize(object, raw)
			if err != nil {
				return nil, malformed("batch read "+spec.path, err)
			}
			out = append(out, rec)
		}
	}
	return out, nil
}

// Subscribe is a no-op: HubSpot webhook subscriptions belong to the app
// (configured once in the developer portal, or with the webhooks API under
// the developer key), not to a connection. Every portal that installs the app
// gets them; notices are routed by portalId.
func (c *Connector) Subscribe(context.Context, *connectors.Conn, string) (map[string]string, error) {
	return nil, nil
}

// Unsubscribe removes nothing webhook-wise for the same reason (uninstalling
// the app in HubSpot stops its notices); it revokes the connection's refresh
// token with POST /oauth/2026-03/token/revoke, so a removed connection keeps
// no access to the portal.
func (c *Connector) Unsubscribe(ctx context.Context, conn *connectors.Conn) error {
	return c.revoke(ctx, conn)
}
