package storage

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
)

// VersionTable is the table in which goose records applied migrations.
const VersionTable = "goose_db_version"

// legacyTable is where releases before the SQL migrations (AutoMigrate of
// the models) recorded their versions.
const legacyTable = "schema_migrations"

// migrateLock names the exclusive lock migrations run under.
const migrateLock = "tributary.migrate"

// MigrationStatus is one migration and whether it is applied.
type MigrationStatus struct {
	Version   int
	Name      string // the file name, e.g. 00001_initial_schema.sql
	Applied   bool
	AppliedAt time.Time // zero when pending
}

// Migrate applies every pending SQL migration of models.MigrationsFS for the
// database's dialect, under an exclusive lock, so replicas starting at once
// apply each version exactly once; a second run is a no-op. Versions are
// applied out of order when a lower version appears after a higher one was
// applied (each team numbers in its own range). A database created by the
// release that still used AutoMigrate is recognised by its schema_migrations
// table and recorded as being at models.BaselineVersion without running it.
// Each migration runs in its own transaction. It returns the versions it
// applied.
func Migrate(ctx context.Context, db *gorm.DB) ([]int, error) {
	var applied []int
	err := withMigrationLock(ctx, db, func() error {
		p, err := newProvider(db)
		if err != nil {
			return err
		}
		if err := adoptLegacy(ctx, db, p); err != nil {
			return err
		}
		res, err := p.Up(ctx)
		for _, r := range res {
			applied = append(applied, int(r.Source.Version))
		}
		var partial *goose.PartialError
		if errors.As(err, &partial) {
			for _, r := range partial.Applied {
				applied = append(applied, int(r.Source.Version))
			}
			return fmt.Errorf("migration %s: %w", partial.Failed.Source.Path, partial.Err)
		}
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		return nil
	})
	return applied, err
}

// MigrateDown rolls back the most recently applied migration (in the order
// they were applied) and returns its version; 0 when there is none left.
func MigrateDown(ctx context.Context, db *gorm.DB) (int, error) {
	var version int
	err := withMigrationLock(ctx, db, func() error {
		p, err := newProvider(db)
		if err != nil {
			return err
		}
		if err := adoptLegacy(ctx, db, p); err != nil {
			return err
		}
		res, err := p.Down(ctx)
		if errors.Is(err, goose.ErrNoNextVersion) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("migrate down: %w", err)
		}
		if res != nil {
			version = int(res.Source.Version)
		}
		return nil
	})
	return version, err
}

// Status lists every known migration in version order with its state. It
// writes nothing.
func Status(ctx context.Context, db *gorm.DB) ([]MigrationStatus, error) {
	p, err := newProvider(db)
	if err != nil {
		return nil, err
	}
	done, err := appliedVersions(ctx, db)
	if err != nil {
		return nil, err
	}
	var out []MigrationStatus
	for _, s := range p.ListSources() {
		st := MigrationStatus{Version: int(s.Version), Name: baseName(s.Path)}
		st.AppliedAt, st.Applied = done[st.Version]
		out = append(out, st)
	}
	return out, nil
}

// Pending reports the versions not yet applied. It writes nothing.
func Pending(ctx context.Context, db *gorm.DB) ([]int, error) {
	all, err := Status(ctx, db)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, s := range all {
		if !s.Applied {
			out = append(out, s.Version)
		}
	}
	return out, nil
}

// appliedVersions reads the applied versions and when they were applied. A
// database of the AutoMigrate release that was not migrated since counts as
// being at the baseline.
func appliedVersions(ctx context.Context, db *gorm.DB) (map[int]time.Time, error) {
	done := map[int]time.Time{}
	m := db.WithContext(ctx).Migrator()
	if m.HasTable(VersionTable) {
		var rows []struct {
			VersionID int64
			IsApplied bool
			Tstamp    time.Time
		}
		// Newest row per version decides (goose appends a row per change).
		if err := db.WithContext(ctx).Table(VersionTable).Select("version_id, is_applied, tstamp").Order("id").Scan(&rows).Error; err != nil {
			return nil, fmt.Errorf("read %s: %w", VersionTable, err)
		}
		for _, r := range rows {
			if r.IsApplied {
				done[int(r.VersionID)] = r.Tstamp
			} else {
				delete(done, int(r.VersionID))
			}
		}
		delete(done, 0)
		return done, nil
	}
	legacy, at, err := legacyVersions(ctx, db)
	if err != nil {
		return nil, err
	}
	if legacyComplete(legacy) {
		done[models.BaselineVersion] = at
		for _, v := range legacy {
			if !slices.Contains(models.LegacyVersions, v) {
				done[v] = at // a development build's AutoMigrate step, now SQL
			}
		}
	}
	return done, nil
}

// adoptLegacy records a database created by the AutoMigrate release as being
// at the baseline version, without running it, once: when goose has no
// version table yet. It must run under the migration lock. A database with an incomplete legacy history (a release
// older than the last AutoMigrate one) is refused: nothing would bring its
// schema to the baseline.
func adoptLegacy(ctx context.Context, db *gorm.DB, p *goose.Provider) error {
	if db.WithContext(ctx).Migrator().HasTable(VersionTable) {
		return nil // adopted already, or never a legacy database
	}
	legacy, _, err := legacyVersions(ctx, db)
	if err != nil || len(legacy) == 0 {
		return err
	}
	if !legacyComplete(legacy) {
		return fmt.Errorf("migrate: this database was created by an old release (schema_migrations has versions %v, expected %v): start the last release that used them once to bring it up to date, then this one", legacy, models.LegacyVersions)
	}
	var known []int64
	for _, src := range p.ListSources() {
		known = append(known, src.Version)
	}
	store, err := database.NewStore(gooseDialect(db), VersionTable)
	if err != nil {
		return err
	}
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx)
		if !ok {
			return fmt.Errorf("migrate: unexpected connection type %T", tx.Statement.ConnPool)
		}
		if err := store.CreateVersionTable(ctx, sqlTx); err != nil {
			return fmt.Errorf("create %s: %w", VersionTable, err)
		}
		if err := store.Insert(ctx, sqlTx, database.InsertRequest{Version: 0}); err != nil {
			return fmt.Errorf("record version 0: %w", err)
		}
		// The baseline, and the versions development builds applied with
		// AutoMigrate before they became SQL files of the same number.
		adopt := []int64{models.BaselineVersion}
		for _, v := range legacy {
			if !slices.Contains(models.LegacyVersions, v) && slices.Contains(known, int64(v)) {
				adopt = append(adopt, int64(v))
			}
		}
		for _, v := range adopt {
			if err := store.Insert(ctx, sqlTx, database.InsertRequest{Version: v}); err != nil {
				return fmt.Errorf("record version %d: %w", v, err)
			}
		}
		return nil
	})
}

// legacyVersions reads the AutoMigrate release's schema_migrations table (nil
// when it does not exist) and when its last version was applied.
func legacyVersions(ctx context.Context, db *gorm.DB) ([]int, time.Time, error) {
	if !db.WithContext(ctx).Migrator().HasTable(legacyTable) {
		return nil, time.Time{}, nil
	}
	var rows []struct {
		Version   int
		AppliedAt time.Time
	}
	if err := db.WithContext(ctx).Table(legacyTable).Select("version, applied_at").Order("version").Scan(&rows).Error; err != nil {
		return nil, time.Time{}, fmt.Errorf("read %s: %w", legacyTable, err)
	}
	var (
		out  []int
		last time.Time
	)
	for _, r := range rows {
		out = append(out, r.Version)
		if r.AppliedAt.After(last) {
			last = r.AppliedAt
		}
	}
	return out, last, nil
}

func legacyComplete(have []int) bool {
	for _, v := range models.LegacyVersions {
		if !slices.Contains(have, v) {
			return false
		}
	}
	return len(have) > 0
}

func newProvider(db *gorm.DB) (*goose.Provider, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	fsys, err := models.MigrationsFS(db.Dialector.Name())
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(gooseDialect(db), sqlDB, fsys,
		goose.WithTableName(VersionTable),
		goose.WithAllowOutofOrder(true),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

func gooseDialect(db *gorm.DB) goose.Dialect {
	if IsPostgres(db) {
		return goose.DialectPostgres
	}
	return goose.DialectSQLite3
}

// withMigrationLock runs fn holding the exclusive migration lock: a session
// advisory lock on PostgreSQL (the key of TxLock("tributary.migrate"), which
// earlier releases took), a lease row on SQLite (several processes may open
// one file; the lease expires if its holder dies).
func withMigrationLock(ctx context.Context, db *gorm.DB, fn func() error) error {
	sqlDB, err := db.DB()
	if err != nil {
		return err
	}
	if IsPostgres(db) {
		// The lock holds one connection while goose uses another: a pool
		// of one would wait forever.
		if limit := sqlDB.Stats().MaxOpenConnections; limit == 1 {
			sqlDB.SetMaxOpenConns(2)
			defer sqlDB.SetMaxOpenConns(limit)
		}
		conn, err := sqlDB.Conn(ctx)
		if err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", LockKey(migrateLock)); err != nil {
			return fmt.Errorf("migration lock: %w", err)
		}
		defer func() {
			if _, err := conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", LockKey(migrateLock)); err != nil {
				// Never hand a connection still holding the lock back to
				// the pool: closing the session releases it.
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}()
		return fn()
	}
	release, err := leaseLock(ctx, sqlDB)
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer release()
	return fn()
}

// sqliteLease is how long a SQLite migration lock is held without renewal;
// the holder renews it every third of that.
const sqliteLease = 30 * time.Second

// leaseLock takes the SQLite migration lock: one row in migration_lock,
// taken over only once its lease expired.
func leaseLock(ctx context.Context, sqlDB *sql.DB) (func(), error) {
	if _, err := sqlDB.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS migration_lock (id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL, expires_at INTEGER NOT NULL)`); err != nil {
		return nil, err
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	holder := hex.EncodeToString(b)
	for {
		now := time.Now().UnixMilli()
		res, err := sqlDB.ExecContext(ctx, `INSERT INTO migration_lock (id, holder, expires_at) VALUES (1, ?, ?)
			ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
			WHERE migration_lock.expires_at < ?`, holder, now+sqliteLease.Milliseconds(), now)
		if err != nil {
			return nil, err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(sqliteLease / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_, _ = sqlDB.Exec(`UPDATE migration_lock SET expires_at = ? WHERE id = 1 AND holder = ?`, time.Now().UnixMilli()+sqliteLease.Milliseconds(), holder)
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		_, _ = sqlDB.Exec(`DELETE FROM migration_lock WHERE id = 1 AND holder = ?`, holder)
	}, nil
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}
