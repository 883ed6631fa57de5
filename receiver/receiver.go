// Package receiver verifies Tributary deliveries on the receiving side: an
// ISV imports it in the HTTP handler of its webhook endpoint. It covers the
// three signing schemes (rsa — the default, standard and hmac), uses only
// the standard library, and imports nothing else of Tributary, so it can be
// copied or vendored alone. The same checks in Node and Python are in
// docs/receiving.md.
//
//	keys, _ := receiver.FetchJWKS(ctx, http.DefaultClient, "https://tributary.example.com", "acc_…")
//	body, _ := io.ReadAll(r.Body) // the raw bytes, never a re-serialization
//	if err := receiver.VerifyRSA(keys, "acc_…", r.Header, body, receiver.Options{}); err != nil { … 401 … }
package receiver

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Errors returned (wrapped) by the Verify functions.
var (
	ErrMissingHeader = errors.New("missing signature header")
	ErrTimestamp     = errors.New("timestamp outside tolerance")
	ErrUnknownKey    = errors.New("unknown signing key")
	ErrSignature     = errors.New("invalid signature")
	ErrAccount       = errors.New("event signed for another account")
)

// DefaultTolerance is how far a delivery's timestamp may be from now.
const DefaultTolerance = 5 * time.Minute

// Options tune a verification; the zero value is DefaultTolerance and the
// system clock.
type Options struct {
	Tolerance time.Duration
	Now       func() time.Time
}

func (o Options) check(ts string) (int64, error) {
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is not Unix seconds", ErrTimestamp, ts)
	}
	now := time.Now()
	if o.Now != nil {
		now = o.Now()
	}
	tol := o.Tolerance
	if tol == 0 {
		tol = DefaultTolerance
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tol || d < -tol {
		return 0, fmt.Errorf("%w: %s off", ErrTimestamp, d.Round(time.Second))
	}
	return sec, nil
}

// KeySet is an account's RSA public keys by kid (a parsed JWKS document).
type KeySet map[string]*rsa.PublicKey

// ParseJWKS reads a JWKS document ({"keys": [{"kty":"RSA","kid","n","e"}]}).
func ParseJWKS(doc []byte) (KeySet, error) {
	var set struct {
		Keys []struct {
			Kty, Kid, N, E string
		} `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, fmt.Errorf("parse jwks: %w", err)
	}
	out := KeySet{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("parse jwks key %s: %w", k.Kid, err)
		}
		out[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	return out, nil
}

// FetchJWKS downloads an account's key set from
// <baseURL>/.well-known/jwks/<accountID>.json. Cache it, and fetch again
// when a delivery names a kid it lacks (after a rotation).
func FetchJWKS(ctx context.Context, client *http.Client, baseURL, accountID string) (KeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(baseURL, "/")+"/.well-known/jwks/"+accountID+".json", nil)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	defer resp.Body.Close()
	doc, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch jwks: %s: %.200s", resp.Status, doc)
	}
	return ParseJWKS(doc)
}

// VerifyRSA checks the default scheme: an RSASSA-PKCS1-v1_5 SHA-256
// signature ("v1,<base64>" in X-Tributary-Signature) by the key named in
// X-Tributary-Key-Id, taken from your account's key set, over
// "<X-Tributary-Event-Id>.<X-Tributary-Timestamp>.<raw body>"; then the
// body's accountId must be accountID (a delivery signed for another account
// fails even when its key were trusted).
func VerifyRSA(keys KeySet, accountID string, h http.Header, body []byte, o Options) error {
	id, ts, kid, sig := h.Get("X-Tributary-Event-Id"), h.Get("X-Tributary-Timestamp"), h.Get("X-Tributary-Key-Id"), h.Get("X-Tributary-Signature")
	if id == "" || ts == "" || kid == "" || sig == "" {
		return fmt.Errorf("verify rsa: %w (X-Tributary-Event-Id, -Timestamp, -Key-Id, -Signature)", ErrMissingHeader)
	}
	if _, err := o.check(ts); err != nil {
		return fmt.Errorf("verify rsa: %w", err)
	}
	pub, ok := keys[kid]
	if !ok {
		return fmt.Errorf("verify rsa: %w %q (fetch the key set again)", ErrUnknownKey, kid)
	}
	sum := sha256.Sum256([]byte(id + "." + ts + "." + string(body)))
	verified := false
	for _, entry := range strings.Fields(sig) {
		b64, ok := strings.CutPrefix(entry, "v1,")
		if !ok {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], raw) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return fmt.Errorf("verify rsa: %w", ErrSignature)
	}
	var ev struct {
		AccountID string `json:"accountId"`
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.AccountID != accountID {
		return fmt.Errorf("verify rsa: %w (body accountId %q)", ErrAccount, ev.AccountID)
	}
	return nil
}

// VerifyStandard checks a Standard Webhooks signature: HMAC-SHA256 keyed by
// the base64 secret after "whsec_", over "<webhook-id>.<webhook-timestamp>.
// <raw body>", as "v1,<base64>" among the space-separated entries of
// webhook-signature (two during a secret rotation).
func VerifyStandard(secret string, h http.Header, body []byte, o Options) error {
	id, ts, sig := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sig == "" {
		return fmt.Errorf("verify standard: %w (webhook-id, webhook-timestamp, webhook-signature)", ErrMissingHeader)
	}
	if _, err := o.check(ts); err != nil {
		return fmt.Errorf("verify standard: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return fmt.Errorf("verify standard: secret is not whsec_<base64>: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := []byte("v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	for _, entry := range strings.Fields(sig) {
		if subtle.ConstantTimeCompare([]byte(entry), want) == 1 {
			return nil
		}
	}
	return fmt.Errorf("verify standard: %w", ErrSignature)
}

// VerifyHMAC checks the plain scheme: X-Webhook-Signature is
// "sha256=<hex HMAC-SHA256(secret, raw body)>" (during a secret rotation,
// X-Webhook-Signature-Previous carries the old secret's). It signs no
// timestamp: deduplicate on X-Tributary-Event-Id.
func VerifyHMAC(secret string, h http.Header, body []byte) error {
	sig := h.Get("X-Webhook-Signature")
	if sig == "" {
		return fmt.Errorf("verify hmac: %w X-Webhook-Signature", ErrMissingHeader)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	want := []byte("sha256=" + hex.EncodeToString(mac.Sum(nil)))
	for _, got := range []string{sig, h.Get("X-Webhook-Signature-Previous")} {
		if got != "" && subtle.ConstantTimeCompare([]byte(got), want) == 1 {
			return nil
		}
	}
	return fmt.Errorf("verify hmac: %w", ErrSignature)
}
