package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"gorm.io/gorm"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/storage"
)

func newMigrate() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations and exit (see also: migrate status, migrate down)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			log := newLogger(c, os.Stderr)
			db, err := openDB(cmd.Context(), c, log, true)
			if err != nil {
				return err
			}
			defer storage.Close(db)
			fmt.Fprintln(cmd.OutOrStdout(), "migrations up to date")
			return nil
		},
	}
	config.RegisterFlagsFor(cmd.Flags(), rawDBConfigKeys...)

	status := &cobra.Command{
		Use:   "status",
		Short: "List every migration and whether it is applied",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withRawDB(cmd, func(db *gorm.DB) error {
				st, err := storage.Status(cmd.Context(), db)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "VERSION\tMIGRATION\tAPPLIED")
				for _, s := range st {
					at := "pending"
					if s.Applied {
						at = s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
					}
					fmt.Fprintf(w, "%d\t%s\t%s\n", s.Version, s.Name, at)
				}
				return w.Flush()
			})
		},
	}
	config.RegisterFlagsFor(status.Flags(), rawDBConfigKeys...)

	var steps int
	down := &cobra.Command{
		Use:   "down [--steps N]",
		Short: "Roll back the most recently applied migration (or N of them); stop every replica first",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if steps < 1 {
				return fmt.Errorf("--steps must be at least 1")
			}
			return withRawDB(cmd, func(db *gorm.DB) error {
				for range steps {
					v, err := storage.MigrateDown(cmd.Context(), db)
					if err != nil {
						return err
					}
					if v == 0 {
						fmt.Fprintln(cmd.OutOrStdout(), "no migration left to roll back")
						return nil
					}
					fmt.Fprintf(cmd.OutOrStdout(), "rolled back version %d\n", v)
				}
				return nil
			})
		},
	}
	down.Flags().IntVar(&steps, "steps", 1, "how many migrations to roll back")
	config.RegisterFlagsFor(down.Flags(), rawDBConfigKeys...)

	cmd.AddCommand(status, down)
	return cmd
}

// withRawDB opens the configured database without migrating or checking
// pending migrations.
func withRawDB(cmd *cobra.Command, fn func(db *gorm.DB) error) error {
	c, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	db, err := storage.Open(cmd.Context(), storage.Options{URL: c.DatabaseURL, DataDir: c.DataDir, Logger: newLogger(c, os.Stderr)})
	if err != nil {
		return err
	}
	defer storage.Close(db)
	return fn(db)
}
