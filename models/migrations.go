package models

import (
	"embed"
	"fmt"
	"io/fs"
)

// migrationFiles holds the versioned SQL migrations, one directory per
// dialect (postgres/, sqlite/). Each file is a goose SQL migration named
// NNNNN_what.sql with a "-- +goose Up" and a "-- +goose Down" section.
//
// Rules for adding one:
//   - add the same version to both directories (the test in package storage
//     fails when a version exists for one dialect only);
//   - number it in your range (see docs/operations.md, "Migrations"): versions
//     are applied out of order, so ranges never clash;
//   - never edit a version that has been merged: add a new one;
//   - every model field needs its column (storage's schema test checks it).
//
//go:embed migrations/postgres/*.sql migrations/sqlite/*.sql
var migrationFiles embed.FS

// MigrationsFS returns the SQL migrations of one dialect ("postgres" or
// "sqlite"), rooted at the dialect's directory.
func MigrationsFS(dialect string) (fs.FS, error) {
	switch dialect {
	case "postgres", "sqlite":
		return fs.Sub(migrationFiles, "migrations/"+dialect)
	}
	return nil, fmt.Errorf("no migrations for dialect %q", dialect)
}

// BaselineVersion is the first SQL migration: the schema that the last
// release still using AutoMigrate (schema_migrations versions 1–5) produced.
// A database from that release is recorded as being at this version without
// running it.
const BaselineVersion = 1

// LegacyVersions are the versions that release recorded in its
// schema_migrations table.
var LegacyVersions = []int{1, 2, 3, 4, 5}

// Tables returns one value of every table model, for schema checks (every
// field must have its column in the migrated schema).
func Tables() []any {
	var all []any
	all = append(all, accountTables()...)
	all = append(all, forwardingTables()...)
	all = append(all, syncTables()...)
	all = append(all, secretTables()...)
	all = append(all, sweepTables()...)
	return all
}
