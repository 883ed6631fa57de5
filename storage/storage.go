// Package storage opens Tributary's database — the embedded SQLite file or
// PostgreSQL — and applies the versioned migrations of package models. It
// holds the few dialect differences every domain package needs (row locks
// that skip locked rows, advisory locks); the queries themselves belong to the
// packages that own the tables.
package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
)

// Dialect names as gorm reports them.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

// Options selects the database.
type Options struct {
	// URL is a postgres:// URL; empty means the embedded SQLite file.
	URL string
	// DataDir holds the SQLite file (tributary.db) when URL is empty.
	DataDir string
	// MaxOpenConns bounds the pool on PostgreSQL (default 20).
	MaxOpenConns int
	// Name, when set, is the pool's application_name on PostgreSQL (seen in
	// pg_stat_activity), e.g. "tributary-dispatcher".
	Name string
	// Logger receives slow-query warnings; nil discards them.
	Logger *slog.Logger
}

// Open connects and checks the connection.
func Open(ctx context.Context, o Options) (*gorm.DB, error) {
	gcfg := &gorm.Config{
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		PrepareStmt:            false,
		NowFunc:                func() time.Time { return time.Now().UTC() },
		TranslateError:         true,
	}
	var (
		db  *gorm.DB
		err error
	)
	if o.URL == "" {
		if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir %s: %w", o.DataDir, err)
		}
		if err := createPrivate(filepath.Join(o.DataDir, "tributary.db")); err != nil {
			return nil, err
		}
		// Switching a new file to WAL needs an exclusive lock that the busy
		// handler does not wait for; a second process opening at the same
		// instant retries briefly.
		for attempt := 0; ; attempt++ {
			db, err = gorm.Open(sqlite.Open(SQLiteDSN(filepath.Join(o.DataDir, "tributary.db"))), gcfg)
			if err == nil || attempt == 50 || !strings.Contains(err.Error(), "SQLITE_BUSY") {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			return nil, fmt.Errorf("open sqlite in %s: %w", o.DataDir, err)
		}
		sqlDB, _ := db.DB()
		// SQLite has one writer; a small pool with immediate transactions and a
		// busy timeout serializes writers without "database is locked".
		sqlDB.SetMaxOpenConns(4)
	} else {
		if err := ValidateURL(o.URL); err != nil {
			return nil, err
		}
		dsn := o.URL
		if o.Name != "" {
			dsn = withAppName(dsn, o.Name)
		}
		db, err = gorm.Open(postgres.Open(dsn), gcfg)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		sqlDB, _ := db.DB()
		sqlDB.SetMaxOpenConns(cmpOr(o.MaxOpenConns, 20))
		sqlDB.SetMaxIdleConns(cmpOr(o.MaxOpenConns, 20))
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	if err := Ping(ctx, db); err != nil {
		return nil, err
	}
	return db, nil
}

// createPrivate creates the SQLite file readable by its owner only (0600)
// when it does not exist yet; SQLite gives its -wal and -shm files the
// database file's mode. The file holds sealed secrets and key hashes.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return f.Close()
}

// withAppName sets application_name in a postgres:// URL (unless set).
func withAppName(u, name string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := p.Query()
	if q.Get("application_name") == "" {
		q.Set("application_name", name)
	}
	p.RawQuery = q.Encode()
	return p.String()
}

// SQLiteDSN is the DSN of the SQLite file at path: WAL, foreign keys,
// immediate write transactions and a busy timeout.
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// ValidateURL checks that u is a usable postgres:// URL.
func ValidateURL(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("database url: %w", err)
	}
	if p.Scheme != "postgres" && p.Scheme != "postgresql" {
		return fmt.Errorf("database url: scheme %q is not postgres:// or postgresql://", p.Scheme)
	}
	if p.Host == "" {
		return errors.New("database url: no host")
	}
	return nil
}

// Ping checks that the database answers.
func Ping(ctx context.Context, db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	return nil
}

// Close closes the pool.
func Close(db *gorm.DB) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}

// IsPostgres reports whether db is PostgreSQL.
func IsPostgres(db *gorm.DB) bool { return db.Dialector.Name() == Postgres }

// SkipLocked adds FOR UPDATE SKIP LOCKED on PostgreSQL, so concurrent
// claimers take disjoint rows. On SQLite, whose write transactions are
// exclusive, it is a no-op.
func SkipLocked(tx *gorm.DB) *gorm.DB {
	if IsPostgres(tx) {
		return tx.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
	}
	return tx
}

// ForUpdate adds FOR UPDATE on PostgreSQL (a no-op on SQLite).
func ForUpdate(tx *gorm.DB) *gorm.DB {
	if IsPostgres(tx) {
		return tx.Clauses(clause.Locking{Strength: "UPDATE"})
	}
	return tx
}

// LockKey turns a lock name into a stable 64-bit advisory-lock key (FNV-1a).
func LockKey(name string) int64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 1099511628211
	}
	return int64(h)
}

// TxLock takes a transaction-scoped exclusive lock named name: on PostgreSQL
// pg_advisory_xact_lock, released at commit or rollback. On SQLite the
// immediate write transaction is already exclusive.
func TxLock(tx *gorm.DB, name string) error {
	if !IsPostgres(tx) {
		return nil
	}
	return tx.Exec("SELECT pg_advisory_xact_lock(?)", LockKey(name)).Error
}

// IsUniqueViolation reports a duplicate-key error on either dialect.
func IsUniqueViolation(err error) bool {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "UNIQUE constraint failed") || strings.Contains(s, "duplicate key value")
}

func cmpOr(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

// BatchDeleteSQL is a DELETE of the rows of table whose ids selectIDs (a
// SELECT id ... LIMIT query, with its own parameters) returns. On PostgreSQL
// the ids are collected first and deleted by primary key: with
// "id IN (subquery)" the planner may hash the batch and read the whole table
// to match it, so every batch would cost as much as the table.
func BatchDeleteSQL(db *gorm.DB, table, selectIDs string) string {
	if IsPostgres(db) {
		return "DELETE FROM " + table + " WHERE id = ANY(ARRAY(" + selectIDs + "))"
	}
	return "DELETE FROM " + table + " WHERE id IN (" + selectIDs + ")"
}
