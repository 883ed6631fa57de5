package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"gorm.io/gorm"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/secrets/masterkeys"
	"github.com/tributary/tributary/storage"
)

// loadConfig reads the configuration for cmd from its flags and the environment.
func loadConfig(cmd *cobra.Command) (*config.Config, error) {
	return config.Load(cmd.Flags(), os.Environ())
}

// newLogger builds the process logger: JSON in production, text on a terminal.
func newLogger(c *config.Config, w io.Writer) *slog.Logger {
	level := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}[c.Log.Level]
	opts := &slog.HandlerOptions{Level: level}
	format := c.Log.Format
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// openDB opens the configured database and, when migrate is set, applies
// pending migrations.
func openDB(ctx context.Context, c *config.Config, log *slog.Logger, migrate bool) (*gorm.DB, error) {
	return openPool(ctx, c, log, migrate, storage.Options{}, nil)
}

// openDBWithKey is openDB for a process that holds secrets: before anything
// is written (migrations included) it checks box's master key against the
// database, and after migrating it records the key on first start. A wrong
// key is an error naming master_key.
func openDBWithKey(ctx context.Context, c *config.Config, log *slog.Logger, migrate bool, box *secrets.Box) (*gorm.DB, error) {
	return openPool(ctx, c, log, migrate, storage.Options{}, box)
}

// openPool is openDBWithKey with pool options (size, name) for PostgreSQL;
// box may be nil (no master key check).
func openPool(ctx context.Context, c *config.Config, log *slog.Logger, migrate bool, pool storage.Options, box *secrets.Box) (*gorm.DB, error) {
	db, err := storage.Open(ctx, storage.Options{URL: c.DatabaseURL, DataDir: c.DataDir, Logger: log,
		MaxOpenConns: pool.MaxOpenConns, Name: pool.Name})
	if err != nil {
		if c.DatabaseURL != "" {
			return nil, fmt.Errorf("database_url: %w", err)
		}
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	if box != nil {
		if err := masterkeys.Check(ctx, db, box); err != nil {
			storage.Close(db)
			return nil, fmt.Errorf("master_key: %w", err)
		}
	}
	if migrate {
		applied, err := storage.Migrate(ctx, db)
		if err != nil {
			storage.Close(db)
			return nil, err
		}
		if len(applied) > 0 {
			log.Info("migrations applied", "versions", applied)
		}
	} else {
		pending, err := storage.Pending(ctx, db)
		if err != nil {
			storage.Close(db)
			return nil, err
		}
		if len(pending) > 0 {
			storage.Close(db)
			return nil, fmt.Errorf("migrate: %d migrations pending (%v); run `tributary migrate` or start with --migrate=true", len(pending), pending)
		}
	}
	if box != nil {
		if err := masterkeys.Register(ctx, db, box, time.Now()); err != nil {
			storage.Close(db)
			return nil, fmt.Errorf("master_key: %w", err)
		}
	}
	return db, nil
}

// Configuration keys each command offers as flags (serve offers all); the
// others are still read from --config and TRIBUTARY_* variables.
var (
	// rawDBConfigKeys open the database (migrate and its subcommands).
	rawDBConfigKeys = []string{"database_url", "data_dir", "log"}
	// dbConfigKeys open the database, migrating it unless --migrate=false.
	dbConfigKeys = slices.Concat(rawDBConfigKeys, []string{"migrate"})
	// keyConfigKeys also unseal secrets with the master key.
	keyConfigKeys = slices.Concat(dbConfigKeys, []string{"master_key", "extra_master_keys"})
)
