package secrets_test

import (
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
