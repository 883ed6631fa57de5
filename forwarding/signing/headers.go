package signing

import (
	"net/http"
	"strconv"
	"time"
)

// Header names sent on every forwarded delivery (DESIGN.md §3).
const (
	HeaderEventID         = "X-Tributary-Event-Id"
	HeaderTopic           = "X-Tributary-Topic"
	HeaderTimestamp       = "X-Tributary-Timestamp"
	HeaderKeyID           = "X-Tributary-Key-Id"
	HeaderSignature       = "X-Tributary-Signature"
	HeaderDeliveryAttempt = "X-Tributary-Delivery-Attempt"
)

// Headers returns the delivery headers for one attempt: Content-Type
// application/json, the event id, topic, Unix-seconds timestamp, key id,
// RSA signature and attempt number.
func Headers(eventID, topic string, ts time.Time, keyID, signature string, attempt int) http.Header {
	h := make(http.Header, 7)
	h.Set("Content-Type", "application/json")
	h.Set(HeaderEventID, eventID)
	h.Set(HeaderTopic, topic)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderKeyID, keyID)
	h.Set(HeaderSignature, signature)
	h.Set(HeaderDeliveryAttempt, strconv.Itoa(attempt))
	return h
}
