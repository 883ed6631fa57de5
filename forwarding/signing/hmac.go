package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// HeaderHMACSignature carries the plain HMAC scheme's signature.
const HeaderHMACSignature = "X-Webhook-Signature"

// HeaderHMACSignaturePrevious carries, during a secret rotation's overlap
// window, the signature made with the previous secret.
const HeaderHMACSignaturePrevious = "X-Webhook-Signature-Previous"

// SignHMAC returns "sha256=<hex HMAC-SHA256(secret, body)>" for the
// X-Webhook-Signature header, for receivers written against older systems.
func SignHMAC(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
