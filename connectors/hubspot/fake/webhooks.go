package fake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/tributary/tributary/connectors"
)

// maxBatch is the most notices HubSpot puts in one delivery.
const maxBatch = 100

// notice is one event of a webhook delivery, field for field as the
// webhooks docs' example payload.
type notice struct {
	ObjectID         int64  `json:"objectId"`
	PropertyName     string `json:"propertyName,omitempty"`
	PropertyValue    string `json:"propertyValue,omitempty"`
	ChangeSource     string `json:"changeSource"`
	EventID          int64  `json:"eventId"`
	SubscriptionID   int64  `json:"subscriptionId"`
	PortalID         int64  `json:"portalId"`
	AppID            int64  `json:"appId"`
	OccurredAt       int64  `json:"occurredAt"`
	SubscriptionType string `json:"subscriptionType"`
	AttemptNumber    int    `json:"attemptNumber"`
}

// noticeLocked builds one notice. Each subscription (type, and property for
// propertyChange) has its own subscription id, as app subscriptions do.
func (s *Server) noticeLocked(p *portal, subType, property, objectID, value, _ string) notice {
	key := subType + "/" + property
	sub, ok := s.subIDs[key]
	if !ok {
		sub = int64(len(s.subIDs) + 1)
		s.subIDs[key] = sub
	}
	s.nextEventID++
	id, _ := strconv.ParseInt(objectID, 10, 64)
	return notice{
		ObjectID: id, PropertyName: property, PropertyValue: value, ChangeSource: "CRM",
		EventID: s.nextEventID, SubscriptionID: sub, PortalID: p.id, AppID: s.appID,
		OccurredAt: s.nowLocked().UnixMilli(), SubscriptionType: subType,
	}
}

// enqueueLocked signs the notices of one change as deliveries of at most
// HubSpot's batch size, keeps them in the portal's outbox and returns them;
// deliver POSTs them when a target is configured.
func (s *Server) enqueueLocked(p *portal, ns []notice) []*connectors.InboundRequest {
	var out []*connectors.InboundRequest
	for start := 0; start < len(ns); start += maxBatch {
		end := min(start+maxBatch, len(ns))
		body, _ := json.Marshal(ns[start:end])
		req := s.signLocked(body)
		p.outbox = append(p.outbox, req)
		out = append(out, req)
	}
	return out
}

func (s *Server) signLocked(body []byte) *connectors.InboundRequest {
	target := s.target
	if target == "" {
		target = DefaultWebhookURL
	}
	now := s.nowLocked()
	ts := strconv.FormatInt(now.UnixMilli(), 10)
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-HubSpot-Request-Timestamp", ts)
	h.Set("X-HubSpot-Signature-v3", SignV3(s.clientSecret, http.MethodPost, target, body, ts))
	// Legacy webhook deliveries also carry the v1 signature.
	v1 := sha256.Sum256(append([]byte(s.clientSecret), body...))
	h.Set("X-HubSpot-Signature", hex.EncodeToString(v1[:]))
	h.Set("X-HubSpot-Signature-Version", "v1")
	return &connectors.InboundRequest{Method: http.MethodPost, URL: target, Header: h, Body: body, ReceivedAt: now}
}

// signedURIDecoder decodes the escapes HubSpot decodes before signing.
var signedURIDecoder = strings.NewReplacer(
	"%3A", ":", "%2F", "/", "%3F", "?", "%40", "@", "%21", "!", "%24", "$",
	"%27", "'", "%28", "(", "%29", ")", "%2A", "*", "%2C", ",", "%3B", ";",
)

// SignV3 is HubSpot's v3 request signature as the fake computes it:
// base64(HMAC-SHA256(secret, method + decoded URI + body + timestamp)).
func SignV3(secret, method, uri string, body []byte, timestamp string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(method + signedURIDecoder.Replace(uri)))
	m.Write(body)
	m.Write([]byte(timestamp))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// deliver POSTs a signed request to the target, if one is configured. It is
// called without the lock held; failures are ignored like a dropped delivery
// (HubSpot would retry; the next poll reconciles).
func (s *Server) deliver(reqs []*connectors.InboundRequest, target string) {
	for _, req := range reqs {
		if target == "" || req.URL != target {
			continue
		}
		hr, err := http.NewRequest(req.Method, req.URL, bytes.NewReader(req.Body))
		if err != nil {
			continue
		}
		hr.Header = req.Header.Clone()
		resp, err := s.httpClient.Do(hr)
		if err != nil {
			continue
		}
		_ = resp.Body.Close()
	}
}
