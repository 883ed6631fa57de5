package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"gorm.io/gorm"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/storage"
)

func newMigrate() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply database migrations and exit",
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
	config.RegisterFlags(cmd.Flags())
	return cmd
}

func newAccounts() *cobra.Command {
	accountsCmd := &cobra.Command{Use: "accounts", Short: "Manage ISV accounts"}
	var name string
	var asJSON bool
	create := &cobra.Command{
		Use:   "create --name NAME",
		Short: "Create an account and print its API key (shown once)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDB(cmd, func(db *gorm.DB) error {
				acc, key, err := accounts.New(db).Create(cmd.Context(), name)
				if err != nil {
					return err
				}
				return print(cmd, asJSON, map[string]string{"accountId": acc.ID, "apiKey": key},
					fmt.Sprintf("account %s created\nAPI key (shown once): %s\n", acc.ID, key))
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "account name")
	create.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	config.RegisterFlags(create.Flags())
	accountsCmd.AddCommand(create)
	return accountsCmd
}

func newAdminKeys() *cobra.Command {
	keys := &cobra.Command{Use: "admin-keys", Short: "Manage operator (admin) keys"}
	var asJSON bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an admin key (shown once)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDB(cmd, func(db *gorm.DB) error {
				key, err := accounts.New(db).CreateAdminKey(cmd.Context())
				if err != nil {
					return err
				}
				return print(cmd, asJSON, map[string]string{"adminKey": key}, fmt.Sprintf("admin key (shown once): %s\n", key))
			})
		},
	}
	create.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	config.RegisterFlags(create.Flags())
	keys.AddCommand(create)
	return keys
}

// withDB loads the configuration, opens (and, unless --migrate=false,
// migrates) the database and runs fn on it.
func withDB(cmd *cobra.Command, fn func(db *gorm.DB) error) error {
	c, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	db, err := openDB(cmd.Context(), c, newLogger(c, os.Stderr), c.Migrate)
	if err != nil {
		return err
	}
	defer storage.Close(db)
	return fn(db)
}

func print(cmd *cobra.Command, asJSON bool, v any, text string) error {
	if asJSON {
		enc := json.NewEncoder(cmd.OutOrStdout())
		return enc.Encode(v)
	}
	_, err := fmt.Fprint(cmd.OutOrStdout(), text)
	return err
}
