package storage_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/storage"
)

// Attack: the embedded SQLite file (sealed secrets, key hashes) was created
// 0644, readable by every local user. It and its -wal and -shm files are
// now 0600, even under a permissive umask.
func TestSQLiteFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o002) // process-wide: this test does not run in parallel
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	db, err := storage.Open(context.Background(), storage.Options{DataDir: dir})
	require.NoError(t, err)
	_, err = storage.Migrate(context.Background(), db)
	require.NoError(t, err)
	for _, f := range []string{"tributary.db", "tributary.db-wal", "tributary.db-shm"} {
		st, err := os.Stat(filepath.Join(dir, f))
		require.NoError(t, err, f)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm(), f)
	}
	st, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	require.NoError(t, storage.Close(db))
}
