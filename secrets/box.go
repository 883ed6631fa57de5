// Package secrets encrypts what Tributary keeps secret at rest — OAuth tokens,
// provider credentials, HMAC secrets, RSA private keys — with AES-256-GCM
// under the deployment's master key. It knows nothing of tables: callers
// store the sealed bytes.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// KeySize is the master key length: 32 bytes (AES-256).
const KeySize = 32

// Sealed formats. Version 1 (the first releases) is 1 || nonce || ciphertext;
// version 2 names its key: 2 || key id (8 bytes) || nonce || ciphertext.
const (
	version1 byte = 1
	version2 byte = 2
)

// KeyIDSize is the length of a key id inside a sealed value.
const KeyIDSize = 8

// Box seals values under its primary master key and opens values sealed under
// any of its keys, so replicas accept the old and the new key while a key is
// rotated.
type Box struct {
	primary key
	keys    []key // primary first
}

type key struct {
	id   [KeyIDSize]byte
	aead cipher.AEAD
}

// New builds a Box from a 32-byte key.
func New(k []byte) (*Box, error) { return NewRing(k) }

// NewRing builds a Box that seals with primary and also opens values sealed
// with any of extra (a key rotation in progress).
func NewRing(primary []byte, extra ...[]byte) (*Box, error) {
	b := &Box{}
	for i, raw := range append([][]byte{primary}, extra...) {
		k, err := newKey(raw)
		if err != nil {
			if i > 0 {
				return nil, fmt.Errorf("extra master key %d: %w", i, err)
			}
			return nil, err
		}
		if slices.ContainsFunc(b.keys, func(o key) bool { return o.id == k.id }) {
			continue
		}
		b.keys = append(b.keys, k)
	}
	b.primary = b.keys[0]
	return b, nil
}

func newKey(raw []byte) (key, error) {
	if len(raw) != KeySize {
		return key{}, fmt.Errorf("master key must be %d bytes, got %d", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return key{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return key{}, err
	}
	k := key{aead: aead}
	copy(k.id[:], keyID(raw))
	return k, nil
}

// keyID derives a key's public id: a truncated SHA-256 of a label and the
// key. It reveals nothing usable about the key.
func keyID(raw []byte) []byte {
	h := sha256.Sum256(append([]byte("tributary master key id\x00"), raw...))
	return h[:KeyIDSize]
}

// KeyID returns the id (16 hex characters) of the key a raw master key has.
func KeyID(raw []byte) string { return hex.EncodeToString(keyID(raw)) }

// PrimaryID is the id of the key this Box seals with.
func (b *Box) PrimaryID() string { return hex.EncodeToString(b.primary.id[:]) }

// IDs lists the ids of every key this Box holds, the primary first.
func (b *Box) IDs() []string {
	out := make([]string, len(b.keys))
	for i, k := range b.keys {
		out[i] = hex.EncodeToString(k.id[:])
	}
	return out
}

// WithPrimary returns a Box that seals with raw and opens values sealed
// under raw or any key of b.
func (b *Box) WithPrimary(raw []byte) (*Box, error) {
	k, err := newKey(raw)
	if err != nil {
		return nil, err
	}
	out := &Box{primary: k, keys: []key{k}}
	for _, o := range b.keys {
		if o.id != k.id {
			out.keys = append(out.keys, o)
		}
	}
	return out, nil
}

// SealedKeyID returns the id of the key a sealed value names; ok is false
// for a value of the first format, which names none.
func SealedKeyID(sealed []byte) (id string, ok bool) {
	if len(sealed) < 1+KeyIDSize || sealed[0] != version2 {
		return "", false
	}
	return hex.EncodeToString(sealed[1 : 1+KeyIDSize]), true
}

// ErrUnknownKey is returned by Open for a value sealed under a key the Box
// does not hold.
var ErrUnknownKey = errors.New("secrets: sealed under a master key this process does not have")

// ParseKey decodes a master key given as base64 (standard or URL, padded or
// not) or 64 hex characters.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	if len(s) == 2*KeySize {
		b := make([]byte, KeySize)
		if _, err := fmt.Sscanf(s, "%x", &b); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("master key must be %d random bytes in base64 or hex", KeySize)
}

// GenerateKey returns a new random key, base64-encoded.
func GenerateKey() string {
	b := make([]byte, KeySize)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// LoadOrCreateKeyFile reads the key in path, or creates it (mode 0600) with a
// new random key when the file does not exist. It refuses a key file that
// others can read.
func LoadOrCreateKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			return LoadOrCreateKeyFile(path)
		}
		if err != nil {
			return nil, fmt.Errorf("create master key file: %w", err)
		}
		key := GenerateKey()
		if _, err := f.WriteString(key + "\n"); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		return ParseKey(key)
	}
	if err != nil {
		return nil, fmt.Errorf("read master key file: %w", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("master key file %s is readable by others (mode %v); chmod 600 it", path, st.Mode().Perm())
	}
	return ParseKey(string(b))
}

// Seal encrypts plaintext under the primary key; aad binds the ciphertext to
// its owner (e.g. the row id) so a sealed value copied to another row does
// not open.
func (b *Box) Seal(plaintext, aad []byte) []byte {
	k := b.primary
	n := k.aead.NonceSize()
	out := make([]byte, 1+KeyIDSize+n, 1+KeyIDSize+n+len(plaintext)+k.aead.Overhead())
	out[0] = version2
	copy(out[1:], k.id[:])
	nonce := out[1+KeyIDSize:]
	_, _ = rand.Read(nonce)
	return k.aead.Seal(out, nonce, plaintext, aad)
}

// Open decrypts a value made by Seal with the same aad, under whichever of
// the Box's keys sealed it.
func (b *Box) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, errors.New("secrets: malformed sealed value")
	}
	switch sealed[0] {
	case version2:
		if len(sealed) < 1+KeyIDSize {
			return nil, errors.New("secrets: malformed sealed value")
		}
		for _, k := range b.keys {
			if [KeyIDSize]byte(sealed[1:1+KeyIDSize]) == k.id {
				return open(k, sealed[1+KeyIDSize:], aad)
			}
		}
		id, _ := SealedKeyID(sealed)
		return nil, fmt.Errorf("%w (key id %s; this process has %s)", ErrUnknownKey, id, strings.Join(b.IDs(), ", "))
	case version1:
		// The first format names no key: try each.
		var err error
		for _, k := range b.keys {
			var pt []byte
			if pt, err = open(k, sealed[1:], aad); err == nil {
				return pt, nil
			}
		}
		return nil, err
	}
	return nil, errors.New("secrets: malformed sealed value")
}

func open(k key, body, aad []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(body) < n+k.aead.Overhead() {
		return nil, errors.New("secrets: malformed sealed value")
	}
	pt, err := k.aead.Open(nil, body[:n], body[n:], aad)
	if err != nil {
		return nil, errors.New("secrets: cannot decrypt (wrong master key or tampered value)")
	}
	return pt, nil
}

// SealString is Seal for strings.
func (b *Box) SealString(s, aad string) []byte { return b.Seal([]byte(s), []byte(aad)) }

// OpenString is Open for strings.
func (b *Box) OpenString(sealed []byte, aad string) (string, error) {
	pt, err := b.Open(sealed, []byte(aad))
	return string(pt), err
}
