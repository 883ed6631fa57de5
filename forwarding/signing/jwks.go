package signing

import (
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
)

// JWK is one RSA public key in JSON Web Key form (RFC 7517/7518).
type JWK struct {
	// Kty is the key type, always "RSA".
	Kty string `json:"kty"`
	// Kid is the key id, as produced by KeyID and sent in X-Tributary-Key-Id.
	Kid string `json:"kid"`
	// Use is the public key use, always "sig".
	Use string `json:"use"`
	// Alg is the algorithm, always "RS256".
	Alg string `json:"alg"`
	// N is the modulus, base64url without padding.
	N string `json:"n"`
	// E is the public exponent, base64url without padding.
	E string `json:"e"`
}

// JWKS is the document served at /.well-known/jwks.json. Old keys stay in it
// after rotation.
type JWKS struct {
	// Keys lists every published key.
	Keys []JWK `json:"keys"`
}

// PublicJWK returns pub as a JWK named kid.
func PublicJWK(pub *rsa.PublicKey, kid string) JWK {
	return JWK{
		Kty: "RSA",
		Kid: kid,
		Use: "sig",
		Alg: "RS256",
		N:   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E:   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}
}

// RSAPublicKey decodes the JWK back into an RSA public key.
func (k JWK) RSAPublicKey() (*rsa.PublicKey, error) {
	if k.Kty != "RSA" {
		return nil, fmt.Errorf("jwk %s: kty %q is not RSA", k.Kid, k.Kty)
	}
	n, err := base64.RawURLEncoding.DecodeString(k.N)
	if err != nil {
		return nil, fmt.Errorf("jwk %s: n: %w", k.Kid, err)
	}
	e, err := base64.RawURLEncoding.DecodeString(k.E)
	if err != nil {
		return nil, fmt.Errorf("jwk %s: e: %w", k.Kid, err)
	}
	eInt := new(big.Int).SetBytes(e)
	if len(n) == 0 || !eInt.IsInt64() || eInt.Int64() < 3 || eInt.Int64() > 1<<31-1 {
		return nil, fmt.Errorf("jwk %s: invalid modulus or exponent", k.Kid)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(eInt.Int64())}, nil
}

// ErrUnknownKey is returned when a key id is not in the JWKS.
var ErrUnknownKey = errors.New("unknown key id")

// Key returns the JWK named kid.
func (s JWKS) Key(kid string) (JWK, error) {
	for _, k := range s.Keys {
		if k.Kid == kid {
			return k, nil
		}
	}
	return JWK{}, fmt.Errorf("%w %q", ErrUnknownKey, kid)
}
