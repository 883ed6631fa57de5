// Package secrets encrypts what Tributary keeps secret at rest — OAuth tokens,
// provider credentials, HMAC secrets, RSA private keys — with AES-256-GCM
// under the deployment's master key. It knows nothing of tables: callers
// store the sealed bytes.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the master key length: 32 bytes (AES-256).
const KeySize = 32

// version prefixes every sealed value so the format can change later.
const version byte = 1

// Box seals and opens values under one master key.
type Box struct{ aead cipher.AEAD }

// New builds a Box from a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("master key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

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

// Seal encrypts plaintext; aad binds the ciphertext to its owner (e.g. the
// row id) so a sealed value copied to another row does not open.
func (b *Box) Seal(plaintext, aad []byte) []byte {
	nonce := make([]byte, b.aead.NonceSize(), 1+b.aead.NonceSize()+len(plaintext)+b.aead.Overhead())
	_, _ = rand.Read(nonce)
	out := append([]byte{version}, nonce...)
	return b.aead.Seal(out, nonce, plaintext, aad)
}

// Open decrypts a value made by Seal with the same aad.
func (b *Box) Open(sealed, aad []byte) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < 1+n+b.aead.Overhead() || sealed[0] != version {
		return nil, errors.New("secrets: malformed sealed value")
	}
	pt, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], aad)
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
