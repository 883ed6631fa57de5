// Package signing owns the signatures Tributary puts on forwarded events
// (DESIGN.md §3): the default RSA scheme (RSASSA-PKCS1-v1_5 SHA-256 over
// "<event id>.<timestamp>.<raw body>", published as a JWKS), the Standard
// Webhooks scheme (HMAC-SHA256 with a whsec_ secret) and the plain HMAC
// header for older receivers, plus a receiver-side RSA verifier.
//
// It signs raw bytes only, never a re-serialization. It must not touch
// storage, HTTP delivery, or connectors: callers load keys and send requests.
package signing
