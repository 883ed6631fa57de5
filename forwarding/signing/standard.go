package signing

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks header names (https://www.standardwebhooks.com).
const (
	HeaderStandardID        = "webhook-id"
	HeaderStandardTimestamp = "webhook-timestamp"
	HeaderStandardSignature = "webhook-signature"
)

// StandardSecretPrefix prefixes every Standard Webhooks secret.
const StandardSecretPrefix = "whsec_"

// NewStandardSecret returns a new Standard Webhooks secret: "whsec_" followed
// by the standard base64 encoding of 24 random bytes.
func NewStandardSecret() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new standard secret: %w", err)
	}
	return StandardSecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// SignStandard returns the webhook-signature value "v1,<base64 HMAC-SHA256>"
// keyed by the base64-decoded secret (after the whsec_ prefix) over
// "<msgID>.<unix seconds>.<body>". The signature is interchangeable with the
// official standardwebhooks libraries'.
func SignStandard(secret, msgID string, ts time.Time, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, StandardSecretPrefix))
	if err != nil {
		return "", fmt.Errorf("sign standard %s: secret: %w", msgID, err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write(SignedContent(msgID, ts, body))
	return SignatureVersion + "," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// StandardHeaders returns the webhook-id, webhook-timestamp and
// webhook-signature headers plus Content-Type application/json.
func StandardHeaders(msgID string, ts time.Time, signature string) http.Header {
	h := make(http.Header, 4)
	h.Set("Content-Type", "application/json")
	h.Set(HeaderStandardID, msgID)
	h.Set(HeaderStandardTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderStandardSignature, signature)
	return h
}
