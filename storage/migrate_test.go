package storage_test

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
)

// versions lists the migration versions of one dialect.
func versions(t *testing.T, dialect string) []int {
	t.Helper()
	fsys, err := models.MigrationsFS(dialect)
	require.NoError(t, err)
	files, err := fs.Glob(fsys, "*.sql")
	require.NoError(t, err)
	var out []int
	for _, f := range files {
		var v int
		_, err := fmt.Sscanf(f, "%d_", &v)
		require.NoError(t, err, f)
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

func TestEveryVersionExistsForBothDialects(t *testing.T) {
	pg, lite := versions(t, storage.Postgres), versions(t, storage.SQLite)
	require.Equal(t, pg, lite, "each migration version needs a postgres and a sqlite file")
	require.Equal(t, models.BaselineVersion, pg[0])
}

func TestMigrateIsIdempotentAndSafeConcurrently(t *testing.T) {
	for _, d := range storagetest.Dialects {
		t.Run(d, func(t *testing.T) {
			opts := storagetest.Options(t, d)
			ctx := context.Background()
			// Three "replicas" start at once.
			var wg sync.WaitGroup
			applied := make([][]int, 3)
			errs := make([]error, 3)
			for i := range applied {
				wg.Add(1)
				go func() {
					defer wg.Done()
					db, err := storage.Open(ctx, opts)
					if err != nil {
						errs[i] = err
						return
					}
					defer storage.Close(db)
					applied[i], errs[i] = storage.Migrate(ctx, db)
				}()
			}
			wg.Wait()
			var all []int
			for i := range applied {
				require.NoError(t, errs[i])
				all = append(all, applied[i]...)
			}
			slices.Sort(all)
			require.Equal(t, versions(t, d), all, "each migration applied exactly once")

			db, err := storage.Open(ctx, opts)
			require.NoError(t, err)
			defer storage.Close(db)
			again, err := storage.Migrate(ctx, db)
			require.NoError(t, err)
			require.Empty(t, again)
			pending, err := storage.Pending(ctx, db)
			require.NoError(t, err)
			require.Empty(t, pending)
			require.True(t, db.Migrator().HasTable(&models.Account{}))
		})
	}
}

// TestMigrateWithAPoolOfOne: the lock's connection and goose's are two.
func TestMigrateWithAPoolOfOne(t *testing.T) {
	for _, d := range storagetest.Dialects {
		t.Run(d, func(t *testing.T) {
			opts := storagetest.Options(t, d)
			opts.MaxOpenConns = 1
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			db, err := storage.Open(ctx, opts)
			require.NoError(t, err)
			defer storage.Close(db)
			if d == storage.SQLite {
				sqlDB, _ := db.DB()
				sqlDB.SetMaxOpenConns(1)
			}
			applied, err := storage.Migrate(ctx, db)
			require.NoError(t, err)
			require.Equal(t, versions(t, d), applied)
			sqlDB, _ := db.DB()
			require.Equal(t, 1, sqlDB.Stats().MaxOpenConnections, "the pool size is restored")
		})
	}
}

// TestEveryModelFieldHasAColumn catches a model field added without its
// migration.
func TestEveryModelFieldHasAColumn(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		for _, m := range models.Tables() {
			stmt := &gorm.Statement{DB: db}
			require.NoError(t, stmt.Parse(m))
			require.True(t, db.Migrator().HasTable(stmt.Schema.Table), stmt.Schema.Table)
			for _, f := range stmt.Schema.Fields {
				if f.DBName == "" {
					continue
				}
				require.True(t, db.Migrator().HasColumn(m, f.DBName), "%s.%s has no column: add a migration", stmt.Schema.Table, f.DBName)
			}
		}
	})
}

func TestMigrateDownToNothingAndUpAgain(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		want := versions(t, db.Dialector.Name())
		var down []int
		for {
			v, err := storage.MigrateDown(ctx, db)
			require.NoError(t, err)
			if v == 0 {
				break
			}
			down = append(down, v)
		}
		require.ElementsMatch(t, want, down)
		for _, m := range models.Tables() {
			require.False(t, db.Migrator().HasTable(m), "%T left after migrating down", m)
		}
		pending, err := storage.Pending(ctx, db)
		require.NoError(t, err)
		require.Equal(t, want, pending)
		up, err := storage.Migrate(ctx, db)
		require.NoError(t, err)
		require.Equal(t, want, up)
		st, err := storage.Status(ctx, db)
		require.NoError(t, err)
		for _, s := range st {
			require.True(t, s.Applied, s.Name)
			require.False(t, s.AppliedAt.IsZero(), s.Name)
		}
	})
}

// TestUpgradeFromAutoMigrateRelease creates a database the way the last
// AutoMigrate release did, fills every table, upgrades it and finds every row
// and the same schema a fresh database gets.
func TestUpgradeFromAutoMigrateRelease(t *testing.T) {
	for _, d := range storagetest.Dialects {
		t.Run(d, func(t *testing.T) {
			ctx := context.Background()
			opts := storagetest.Options(t, d)
			db, err := storage.Open(ctx, opts)
			require.NoError(t, err)
			defer storage.Close(db)
			require.NoError(t, legacyMigrate(db))
			seedLegacy(t, db)
			before := dumpRows(t, db)

			pending, err := storage.Pending(ctx, db)
			require.NoError(t, err)
			require.NotContains(t, pending, models.BaselineVersion, "the AutoMigrate release's schema is the baseline")

			applied, err := storage.Migrate(ctx, db)
			require.NoError(t, err)
			require.NotContains(t, applied, models.BaselineVersion, "the baseline is recorded, not re-run")
			again, err := storage.Migrate(ctx, db)
			require.NoError(t, err)
			require.Empty(t, again)

			// A fresh pool: PostgreSQL refuses cached plans whose columns changed.
			db, err = storage.Open(ctx, opts)
			require.NoError(t, err)
			defer storage.Close(db)
			after := dumpRows(t, db)
			for table, rows := range before {
				require.Len(t, after[table], len(rows), table)
				for i, row := range rows {
					for col, v := range row {
						require.Equal(t, v, after[table][i][col], "%s.%s lost or changed", table, col)
					}
				}
			}
			for _, m := range models.Tables() {
				stmt := &gorm.Statement{DB: db}
				require.NoError(t, stmt.Parse(m))
				if before[stmt.Schema.Table] == nil {
					continue
				}
				var n int64
				require.NoError(t, db.Model(m).Count(&n).Error)
				require.EqualValues(t, 1, n, "%T", m)
				require.NoError(t, db.Model(m).First(m).Error, "%T reads through today's model", m)
			}

			fresh := storagetest.New(t, d)
			require.Equal(t, schemaOf(t, fresh), schemaOf(t, db), "an upgraded database has the schema of a fresh one")

			// Down to nothing, then up again: the legacy table does not
			// bring the baseline back.
			for {
				v, err := storage.MigrateDown(ctx, db)
				require.NoError(t, err)
				if v == 0 {
					break
				}
			}
			require.False(t, db.Migrator().HasTable("schema_migrations"))
			up, err := storage.Migrate(ctx, db)
			require.NoError(t, err)
			require.Equal(t, versions(t, d), up)
		})
	}
}

// TestDevelopmentLegacyVersionsAreAdopted: a development build recorded an
// AutoMigrate step (140) that is now a SQL file of the same number.
func TestDevelopmentLegacyVersionsAreAdopted(t *testing.T) {
	for _, d := range storagetest.Dialects {
		t.Run(d, func(t *testing.T) {
			ctx := context.Background()
			db, err := storage.Open(ctx, storagetest.Options(t, d))
			require.NoError(t, err)
			defer storage.Close(db)
			require.NoError(t, legacyMigrate(db))
			require.NoError(t, db.Exec("ALTER TABLE api_keys ADD COLUMN name varchar(200) NOT NULL DEFAULT ''").Error)
			require.NoError(t, db.Exec("ALTER TABLE api_keys ADD COLUMN last_used_at timestamp").Error)
			require.NoError(t, db.Create(&legacySchemaMigration{Version: 140, Name: "api key name and last use", AppliedAt: time.Now()}).Error)
			pending, err := storage.Pending(ctx, db)
			require.NoError(t, err)
			require.NotContains(t, pending, 140)
			applied, err := storage.Migrate(ctx, db)
			require.NoError(t, err)
			require.NotContains(t, applied, 140)
			require.NotContains(t, applied, models.BaselineVersion)
		})
	}
}

func TestOlderLegacyDatabaseIsRefused(t *testing.T) {
	for _, d := range storagetest.Dialects {
		t.Run(d, func(t *testing.T) {
			ctx := context.Background()
			db, err := storage.Open(ctx, storagetest.Options(t, d))
			require.NoError(t, err)
			defer storage.Close(db)
			require.NoError(t, legacyMigrate(db))
			require.NoError(t, db.Exec("DELETE FROM schema_migrations WHERE version = 5").Error)
			_, err = storage.Migrate(ctx, db)
			require.ErrorContains(t, err, "old release")
			require.False(t, db.Migrator().HasTable(storage.VersionTable))
		})
	}
}

func TestSQLiteMigrationLockTakesOverAnExpiredLease(t *testing.T) {
	ctx := context.Background()
	db, err := storage.Open(ctx, storagetest.Options(t, storage.SQLite))
	require.NoError(t, err)
	defer storage.Close(db)
	// A process died holding the lock: its lease has expired.
	require.NoError(t, db.Exec(`CREATE TABLE migration_lock (id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL, expires_at INTEGER NOT NULL)`).Error)
	require.NoError(t, db.Exec(`INSERT INTO migration_lock VALUES (1, 'dead', ?)`, time.Now().Add(-time.Second).UnixMilli()).Error)
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = storage.Migrate(ctx, db)
	require.NoError(t, err)
	var n int64
	require.NoError(t, db.Table("migration_lock").Count(&n).Error)
	require.Zero(t, n, "released")

	// A live holder blocks until the context ends.
	require.NoError(t, db.Exec(`INSERT INTO migration_lock VALUES (1, 'alive', ?)`, time.Now().Add(time.Hour).UnixMilli()).Error)
	short, cancel2 := context.WithCancel(ctx)
	cancel2()
	_, err = storage.Migrate(short, db)
	require.ErrorIs(t, err, context.Canceled)
}

// seedLegacy writes one row, every column set, in each table through the
// AutoMigrate release's models.
func seedLegacy(t *testing.T, db *gorm.DB) {
	t.Helper()
	at := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	later := at.Add(time.Hour)
	acc := "acc_1"
	rows := []any{
		&legacyAccount{ID: acc, Name: "Acme", DefaultPollInterval: time.Hour, MinPollInterval: time.Minute, CreatedAt: at, UpdatedAt: at},
		&legacyAPIKey{ID: "key_1", AccountID: &acc, Role: "isv", Hash: strings.Repeat("a", 64), Prefix: "trb_live_abc", CreatedAt: at, RevokedAt: &later},
		&legacySubscription{ID: "sub_1", AccountID: acc, Address: "https://example.com/hook", Topics: `["crm/*"]`, Active: true, DisabledReason: "410", DisabledAt: &later,
			Scheme: "hmac", SecretEnc: []byte{1, 2, 3}, MaxRetries: 5, BackoffMultiplier: 2.5, Schedule: `["1m"]`, TimeoutSeconds: 10, RateLimit: 3,
			ConsecutiveFailures: 2, FailingSince: &at, CircuitOpenUntil: &later, CreatedAt: at, UpdatedAt: at},
		&legacyEvent{ID: "evt_1", AccountID: acc, Seq: 1, Topic: "crm/contacts", UpdateType: "created", ConnectionID: "con_1", Body: []byte(`{"a":1}`), CreatedAt: at},
		&legacyEventCounter{AccountID: acc, Seq: 1},
		&legacyDelivery{ID: "dlv_1", AccountID: acc, EventID: "evt_1", SubscriptionID: "sub_1", Status: "failed", NextAttemptAt: later, LeaseToken: "tok",
			Attempts: 2, Retries: 1, LastStatusCode: 500, LastError: "boom", LastAttemptAt: &at, CreatedAt: at, UpdatedAt: at},
		&legacyAttempt{ID: "att_1", DeliveryID: "dlv_1", SubscriptionID: "sub_1", AccountID: acc, Number: 1, AttemptedAt: at, StatusCode: 500, ResponseTimeMs: 12, ResponseBody: "oops", Error: "status 500"},
		&legacySigningKey{ID: "kid_1", AccountID: acc, PrivateKeyEnc: []byte{9, 9}, PublicKeyPEM: "-----BEGIN PUBLIC KEY-----", CreatedAt: at, RetiredAt: &later},
		&legacySnapshot{ConnectionID: "con_1", Object: "contacts", RemoteID: "r1", ContentHash: strings.Repeat("b", 64), Payload: []byte(`{"x":1}`), RemoteUpdatedAt: at, Deleted: true, ScanGeneration: 3, UpdatedAt: at},
		&legacyConnection{ID: "con_1", AccountID: acc, App: "hubspot", UserID: "u1", UserName: "User", Status: "active", ExternalID: "portal-1", CredentialsEnc: []byte{7},
			Metadata: `{"m":1}`, PollInterval: time.Minute, NextSyncAt: later, LeaseToken: "lt", LastSyncAt: &at, LastError: "e", Cursors: `{"contacts":"c"}`,
			InitialSyncDone: true, EmitBackfill: true, IncludeRaw: true, Generation: 4, CreatedAt: at, UpdatedAt: at},
		&legacyConnectSession{ID: "cs_1", AccountID: acc, App: "hubspot", UserID: "u1", UserName: "User", RedirectURL: "https://example.com/back", State: "state-1",
			VerifierEnc: []byte{5}, Params: `{"shop":"x"}`, ExpiresAt: later, UsedAt: &at, ConnectionID: "con_1", CreatedAt: at},
		&legacyInboxItem{ID: "inb_1", App: "hubspot", DedupKey: "d1", Method: "POST", URL: "/inbound/hubspot", Header: `{}`, Body: []byte(`[]`), ReceivedAt: at,
			ProcessedAt: &later, NextAttemptAt: at, LeaseToken: "l", Attempts: 1, LastError: "x"},
		&legacySyncRun{ID: "run_1", AccountID: acc, ConnectionID: "con_1", StartedAt: at, FinishedAt: &later, Status: "completed", Initial: true, Created: 1, Updated: 2, Deleted: 3, Scanned: 4, Error: "none"},
		&legacySandboxRecord{ConnectionID: "con_1", Object: "contacts", RemoteID: "r1", Data: `{"n":1}`, Deleted: true, Version: 2, ModifiedAt: at, CreatedAt: at},
	}
	for _, r := range rows {
		require.NoError(t, db.Create(r).Error, "%T", r)
	}
}

// dumpRows reads every row of every model table.
func dumpRows(t *testing.T, db *gorm.DB) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	for _, m := range models.Tables() {
		stmt := &gorm.Statement{DB: db}
		require.NoError(t, stmt.Parse(m))
		if !db.Migrator().HasTable(stmt.Schema.Table) {
			continue // added after the AutoMigrate release
		}
		var rows []map[string]any
		require.NoError(t, db.Table(stmt.Schema.Table).Order(strings.Join(stmt.Schema.PrimaryFieldDBNames, ", ")).Find(&rows).Error)
		out[stmt.Schema.Table] = rows
	}
	return out
}

// schemaOf describes the tables, columns and indexes of the database, less
// the migration bookkeeping tables.
func schemaOf(t *testing.T, db *gorm.DB) []string {
	t.Helper()
	skip := map[string]bool{"schema_migrations": true, storage.VersionTable: true, "migration_lock": true, "sqlite_sequence": true}
	var out []string
	if storage.IsPostgres(db) {
		var cols []struct {
			TableName, ColumnName, DataType, IsNullable, ColumnDefault string
			Len                                                        int
		}
		require.NoError(t, db.Raw(`SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '') AS column_default,
			coalesce(character_maximum_length, 0) AS len FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY 1, 2`).Scan(&cols).Error)
		for _, c := range cols {
			if !skip[c.TableName] {
				out = append(out, fmt.Sprintf("column %s.%s %s(%d) null=%s default=%s", c.TableName, c.ColumnName, c.DataType, c.Len, c.IsNullable, c.ColumnDefault))
			}
		}
		var idx []struct{ Tablename, Indexname, Indexdef, Schemaname string }
		require.NoError(t, db.Raw(`SELECT tablename, indexname, indexdef, schemaname FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1, 2`).Scan(&idx).Error)
		for _, i := range idx {
			if !skip[i.Tablename] {
				out = append(out, "index "+strings.ReplaceAll(i.Indexdef, i.Schemaname+".", ""))
			}
		}
		require.NotEmpty(t, out)
		return out
	}
	var objs []struct{ Type, Name, TblName, SQL string }
	require.NoError(t, db.Raw(`SELECT type, name, tbl_name, coalesce(sql, '') AS sql FROM sqlite_master ORDER BY type, name`).Scan(&objs).Error)
	for _, o := range objs {
		if !skip[o.TblName] {
			out = append(out, o.Type+" "+o.Name+": "+o.SQL)
		}
	}
	require.NotEmpty(t, out)
	return out
}
