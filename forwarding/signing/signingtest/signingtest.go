// Package signingtest is an independent receiver for tests: it knows only a
// JWKS JSON document and checks X-Tributary-Signature with crypto/rsa. It
// deliberately shares no code with package signing, so a test that verifies
// with it proves the wire format, not the implementation agreeing with itself.
package signingtest

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
)

// PublicKeys parses a JWKS document into its RSA signing keys by kid. Every
// key must be kty RSA, alg RS256, use sig.
func PublicKeys(jwksJSON []byte) (map[string]*rsa.PublicKey, error) {
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(jwksJSON, &doc); err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	out := make(map[string]*rsa.PublicKey, len(doc.Keys))
	for _, k := range doc.Keys {
		if k["kty"] != "RSA" || k["alg"] != "RS256" || k["use"] != "sig" {
			return nil, fmt.Errorf("jwks: key %q is kty=%q alg=%q use=%q", k["kid"], k["kty"], k["alg"], k["use"])
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k["n"])
		e, err2 := base64.RawURLEncoding.DecodeString(k["e"])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("jwks: key %q: bad n or e", k["kid"])
		}
		out[k["kid"]] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	}
	return out, nil
}

// Verify checks the delivery's "v1,<base64>" RSA signature over
// "<event id>.<timestamp>.<raw body>" with pub.
func Verify(pub *rsa.PublicKey, h http.Header, body []byte) bool {
	b64, ok := strings.CutPrefix(h.Get("X-Tributary-Signature"), "v1,")
	if !ok || pub == nil {
		return false
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(h.Get("X-Tributary-Event-Id") + "." + h.Get("X-Tributary-Timestamp") + "." + string(body)))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig) == nil
}

// VerifyWithJWKS verifies with the key of jwksJSON named by
// X-Tributary-Key-Id; an unknown kid does not verify.
func VerifyWithJWKS(jwksJSON []byte, h http.Header, body []byte) (bool, error) {
	keys, err := PublicKeys(jwksJSON)
	if err != nil {
		return false, err
	}
	return Verify(keys[h.Get("X-Tributary-Key-Id")], h, body), nil
}

// VerifyForAccount is the documented receiver check: the signature verifies
// with the key named by X-Tributary-Key-Id in the account's own JWKS
// document and the body's accountId is accountID.
func VerifyForAccount(accountJWKSJSON []byte, accountID string, h http.Header, body []byte) (bool, error) {
	ok, err := VerifyWithJWKS(accountJWKSJSON, h, body)
	if err != nil || !ok {
		return false, err
	}
	var ev struct {
		AccountID string `json:"accountId"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return false, nil
	}
	return ev.AccountID == accountID, nil
}
