// Package storagetest gives tests a fresh, migrated database on SQLite and on
// the real PostgreSQL. Each PostgreSQL database is a schema of its own,
// dropped when the test ends, so tests run in parallel without seeing each
// other's rows.
//
// PostgreSQL comes from TRIBUTARY_TEST_DATABASE_URL. When it is unset the
// PostgreSQL variants skip with a visible message — unless CI is set, where a
// missing or unreachable database fails the test.
package storagetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"gorm.io/gorm"

	"github.com/tributary/tributary/storage"
)

// EnvURL names the variable holding the test PostgreSQL URL.
const EnvURL = "TRIBUTARY_TEST_DATABASE_URL"

// Dialects are the databases Each runs on.
var Dialects = []string{storage.SQLite, storage.Postgres}

// Each runs fn as a subtest on a fresh SQLite database and on a fresh
// PostgreSQL schema ("sqlite" and "postgres" in the test name).
func Each(t *testing.T, fn func(t *testing.T, db *gorm.DB)) {
	t.Helper()
	for _, d := range Dialects {
		t.Run(d, func(t *testing.T) {
			fn(t, New(t, d))
		})
	}
}

// New returns a fresh migrated database of the given dialect.
func New(t testing.TB, dialect string) *gorm.DB {
	t.Helper()
	opts := Options(t, dialect)
	db, err := storage.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("open %s: %v", dialect, err)
	}
	t.Cleanup(func() { _ = storage.Close(db) })
	if _, err := storage.Migrate(context.Background(), db); err != nil {
		t.Fatalf("migrate %s: %v", dialect, err)
	}
	return db
}

// Options returns storage options for a fresh, empty (unmigrated) database of
// the given dialect; open it as many times as a test needs (two "replicas").
func Options(t testing.TB, dialect string) storage.Options {
	t.Helper()
	switch dialect {
	case storage.SQLite:
		return storage.Options{DataDir: filepath.Join(t.TempDir(), "data")}
	case storage.Postgres:
		return storage.Options{URL: freshSchema(t), MaxOpenConns: 8}
	}
	t.Fatalf("unknown dialect %q", dialect)
	return storage.Options{}
}

// PostgresURL returns the base test URL, skipping (or failing in CI) when unset.
func PostgresURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: PostgreSQL tests are required in CI", EnvURL)
		}
		t.Skipf("SKIP PostgreSQL: %s is not set (set it to run this test on PostgreSQL)", EnvURL)
	}
	return u
}

func freshSchema(t testing.TB) string {
	base := PostgresURL(t)
	admin, err := storage.Open(context.Background(), storage.Options{URL: base, MaxOpenConns: 1})
	if err != nil {
		t.Fatalf("PostgreSQL at %s: %v", EnvURL, err)
	}
	defer storage.Close(admin)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := storage.Open(context.Background(), storage.Options{URL: base, MaxOpenConns: 1})
		if err != nil {
			return
		}
		defer storage.Close(db)
		db.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvURL, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Name is a helper for table-driven tests: "<dialect>".
func Name(db *gorm.DB) string { return fmt.Sprint(db.Dialector.Name()) }
