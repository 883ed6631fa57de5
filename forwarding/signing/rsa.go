package signing

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// KeyBits is the RSA modulus size used by GenerateKey.
const KeyBits = 2048

// SignatureVersion is the prefix of every RSA and Standard Webhooks signature value.
const SignatureVersion = "v1"

// GenerateKey returns a fresh RSA-2048 private key for an account.
func GenerateKey() (*rsa.PrivateKey, error) {
	k, err := rsa.GenerateKey(rand.Reader, KeyBits)
	if err != nil {
		return nil, fmt.Errorf("generate rsa key: %w", err)
	}
	return k, nil
}

// EncodePrivateKeyPEM encodes key as a PKCS#8 "PRIVATE KEY" PEM block.
func EncodePrivateKeyPEM(key *rsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// DecodePrivateKeyPEM decodes a PKCS#8 "PRIVATE KEY" PEM block holding an RSA key.
func DecodePrivateKeyPEM(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("decode private key: no PRIVATE KEY PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("decode private key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("decode private key: %T is not an RSA key", k)
	}
	return rk, nil
}

// EncodePublicKeyPEM encodes pub as a PKIX "PUBLIC KEY" PEM block.
func EncodePublicKeyPEM(pub *rsa.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// DecodePublicKeyPEM decodes a PKIX "PUBLIC KEY" PEM block holding an RSA key.
func DecodePublicKeyPEM(data []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PUBLIC KEY" {
		return nil, errors.New("decode public key: no PUBLIC KEY PEM block")
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("decode public key: %w", err)
	}
	rk, ok := k.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("decode public key: %T is not an RSA key", k)
	}
	return rk, nil
}

// KeyID derives the stable key id of pub: "kid_" followed by the unpadded
// base64url encoding of the first 16 bytes of SHA-256 over the PKIX (DER)
// encoding of the public key. The same key always yields the same id, so
// ids need no storage of their own and receivers can recompute them.
func KeyID(pub *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("key id: %w", err)
	}
	sum := sha256.Sum256(der)
	return "kid_" + base64.RawURLEncoding.EncodeToString(sum[:16]), nil
}

// SignedContent returns the exact bytes signed by the RSA scheme:
// "<eventID>.<unix seconds>.<rawBody>".
func SignedContent(eventID string, ts time.Time, body []byte) []byte {
	tsStr := strconv.FormatInt(ts.Unix(), 10)
	b := make([]byte, 0, len(eventID)+len(tsStr)+len(body)+2)
	b = append(b, eventID...)
	b = append(b, '.')
	b = append(b, tsStr...)
	b = append(b, '.')
	return append(b, body...)
}

// Signer signs forwarded events with one account RSA key. It is safe for
// concurrent use.
type Signer struct {
	key   *rsa.PrivateKey
	keyID string
}

// NewSigner returns a Signer for key, with its KeyID computed once.
func NewSigner(key *rsa.PrivateKey) (*Signer, error) {
	if key == nil {
		return nil, errors.New("new signer: nil key")
	}
	kid, err := KeyID(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	key.Precompute()
	return &Signer{key: key, keyID: kid}, nil
}

// KeyID returns the id of the signer's key, sent as X-Tributary-Key-Id.
func (s *Signer) KeyID() string { return s.keyID }

// PublicKey returns the signer's public key.
func (s *Signer) PublicKey() *rsa.PublicKey { return &s.key.PublicKey }

// Sign returns the X-Tributary-Signature value "v1,<base64 std signature>"
// of RSASSA-PKCS1-v1_5 SHA-256 over SignedContent(eventID, ts, body).
func (s *Signer) Sign(eventID string, ts time.Time, body []byte) (string, error) {
	sum := sha256.Sum256(SignedContent(eventID, ts, body))
	sig, err := rsa.SignPKCS1v15(nil, s.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("sign event %s: %w", eventID, err)
	}
	return SignatureVersion + "," + base64.StdEncoding.EncodeToString(sig), nil
}
