package secrets_test

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/secrets"
)

func TestSealOpen(t *testing.T) {
	key, err := secrets.ParseKey(secrets.GenerateKey())
	require.NoError(t, err)
	box, err := secrets.New(key)
	require.NoError(t, err)

	sealed := box.SealString("refresh-token-123", "con_1")
	require.NotContains(t, string(sealed), "refresh-token-123")
	got, err := box.OpenString(sealed, "con_1")
	require.NoError(t, err)
	require.Equal(t, "refresh-token-123", got)

	_, err = box.OpenString(sealed, "con_2")
	require.Error(t, err, "a value moved to another row must not open")

	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	_, err = box.OpenString(tampered, "con_1")
	require.Error(t, err)

	other, _ := secrets.New(make([]byte, 32))
	_, err = other.OpenString(sealed, "con_1")
	require.Error(t, err, "wrong master key")
}

func TestParseKey(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(i)
	}
	for _, s := range []string{hex.EncodeToString(raw), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"} {
		k, err := secrets.ParseKey(s)
		require.NoError(t, err, s)
		require.Equal(t, raw, k)
	}
	for _, s := range []string{"", "short", "zz" + hex.EncodeToString(raw)[2:]} {
		_, err := secrets.ParseKey(s)
		require.Error(t, err, s)
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "master.key")
	k1, err := secrets.LoadOrCreateKeyFile(path)
	require.NoError(t, err)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	k2, err := secrets.LoadOrCreateKeyFile(path)
	require.NoError(t, err)
	require.Equal(t, k1, k2, "the key survives restarts")

	require.NoError(t, os.Chmod(path, 0o644))
	_, err = secrets.LoadOrCreateKeyFile(path)
	require.ErrorContains(t, err, "readable by others")
}

func TestRingAcceptsOldAndNewKeys(t *testing.T) {
	oldKey, _ := secrets.ParseKey(secrets.GenerateKey())
	newKey, _ := secrets.ParseKey(secrets.GenerateKey())
	oldBox, err := secrets.New(oldKey)
	require.NoError(t, err)
	ring, err := secrets.NewRing(newKey, oldKey)
	require.NoError(t, err)
	require.Equal(t, secrets.KeyID(newKey), ring.PrimaryID())
	require.Equal(t, []string{secrets.KeyID(newKey), secrets.KeyID(oldKey)}, ring.IDs())
	require.Len(t, ring.PrimaryID(), 16)
	require.NotEqual(t, secrets.KeyID(oldKey), secrets.KeyID(newKey))

	underOld := oldBox.SealString("token", "con_1")
	id, ok := secrets.SealedKeyID(underOld)
	require.True(t, ok)
	require.Equal(t, oldBox.PrimaryID(), id)
	got, err := ring.OpenString(underOld, "con_1")
	require.NoError(t, err, "the ring opens values of the old key")
	require.Equal(t, "token", got)

	underNew := ring.SealString("token", "con_1")
	id, _ = secrets.SealedKeyID(underNew)
	require.Equal(t, ring.PrimaryID(), id, "the ring seals with its primary")
	_, err = oldBox.OpenString(underNew, "con_1")
	require.ErrorIs(t, err, secrets.ErrUnknownKey)
	require.ErrorContains(t, err, id)
}

// TestFirstFormatStillOpens: values sealed by releases before key ids
// (1 || nonce || ciphertext) open under any key of the ring.
func TestFirstFormatStillOpens(t *testing.T) {
	raw := make([]byte, 32)
	raw[0] = 7
	block, _ := aes.NewCipher(raw)
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, aead.NonceSize())
	v1 := aead.Seal(append([]byte{1}, nonce...), nonce, []byte("secret"), []byte("sub_1"))

	other, _ := secrets.ParseKey(secrets.GenerateKey())
	ring, err := secrets.NewRing(other, raw)
	require.NoError(t, err)
	got, err := ring.OpenString(v1, "sub_1")
	require.NoError(t, err)
	require.Equal(t, "secret", got)
	_, ok := secrets.SealedKeyID(v1)
	require.False(t, ok)

	alone, _ := secrets.New(other)
	_, err = alone.OpenString(v1, "sub_1")
	require.Error(t, err)
	_, err = ring.OpenString([]byte{9, 1, 2}, "sub_1")
	require.Error(t, err)
	_, err = ring.OpenString(nil, "sub_1")
	require.Error(t, err)
}
