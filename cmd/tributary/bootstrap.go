package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gorm.io/gorm"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage"
)

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
	config.RegisterFlagsFor(create.Flags(), dbConfigKeys...)
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List accounts (id, name, created)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDB(cmd, func(db *gorm.DB) error {
				svc := accounts.New(db)
				type row struct {
					ID        string `json:"id"`
					Name      string `json:"name"`
					CreatedAt string `json:"createdAt"`
				}
				var all []row
				var text strings.Builder
				cursor := ""
				for {
					page, next, err := svc.List(cmd.Context(), min(limit, 500), cursor)
					if err != nil {
						return err
					}
					for _, a := range page {
						all = append(all, row{a.ID, a.Name, a.CreatedAt.UTC().Format(time.RFC3339)})
						fmt.Fprintf(&text, "%s\t%s\t%s\n", a.ID, a.CreatedAt.UTC().Format(time.RFC3339), a.Name)
					}
					if next == "" || len(all) >= limit {
						break
					}
					cursor = next
				}
				return print(cmd, asJSON, map[string]any{"data": all}, text.String())
			})
		},
	}
	list.Flags().IntVar(&limit, "limit", 10000, "most accounts to print")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	config.RegisterFlagsFor(list.Flags(), dbConfigKeys...)
	accountsCmd.AddCommand(create, list)
	return accountsCmd
}

// newAPIKeys manages an account's API keys directly on the database (an
// operator's tool, like accounts create; ISVs use /v1/api-keys).
func newAPIKeys() *cobra.Command {
	keys := &cobra.Command{Use: "api-keys", Short: "Manage an account's API keys"}
	var account, name string
	var asJSON bool
	create := &cobra.Command{
		Use:   "create --account ACC [--name NAME]",
		Short: "Create an API key for the account and print it (shown once)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDB(cmd, func(db *gorm.DB) error {
				k, secret, err := accounts.New(db).CreateKey(cmd.Context(), account, name)
				if err != nil {
					return err
				}
				return print(cmd, asJSON, map[string]any{"id": k.ID, "name": k.Name, "accountId": account, "apiKey": secret},
					fmt.Sprintf("API key %s created for %s\nAPI key (shown once): %s\n", k.ID, account, secret))
			})
		},
	}
	create.Flags().StringVar(&name, "name", "", "a label for the key")
	list := &cobra.Command{
		Use:   "list --account ACC",
		Short: "List the account's API keys (never their secrets)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDB(cmd, func(db *gorm.DB) error {
				svc := accounts.New(db)
				if _, err := svc.Get(cmd.Context(), account); err != nil {
					return err
				}
				var all []accounts.Key
				cursor := ""
				for {
					page, next, err := svc.ListKeys(cmd.Context(), account, 500, cursor)
					if err != nil {
						return err
					}
					all = append(all, page...)
					if next == "" {
						break
					}
					cursor = next
				}
				var text strings.Builder
				for _, k := range all {
					state, used := "active", "never"
					if k.RevokedAt != nil {
						state = "revoked " + k.RevokedAt.Format(time.RFC3339)
					}
					if k.LastUsedAt != nil {
						used = k.LastUsedAt.Format(time.RFC3339)
					}
					fmt.Fprintf(&text, "%s\t%s…\t%q\tcreated %s\tlast used %s\t%s\n", k.ID, k.Prefix, k.Name,
						k.CreatedAt.Format(time.RFC3339), used, state)
				}
				return print(cmd, asJSON, map[string]any{"data": all}, text.String())
			})
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke --account ACC KEY_ID",
		Short: "Revoke an API key: the next request made with it is refused",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withDB(cmd, func(db *gorm.DB) error {
				k, err := accounts.New(db).RevokeKey(cmd.Context(), account, args[0])
				if err != nil {
					return err
				}
				return print(cmd, asJSON, k, fmt.Sprintf("API key %s revoked\n", k.ID))
			})
		},
	}
	for _, c := range []*cobra.Command{create, list, revoke} {
		c.Flags().StringVar(&account, "account", "", "account id (acc_…)")
		_ = c.MarkFlagRequired("account")
		c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
		config.RegisterFlagsFor(c.Flags(), dbConfigKeys...)
		keys.AddCommand(c)
	}
	return keys
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
	config.RegisterFlagsFor(create.Flags(), dbConfigKeys...)
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

// withKeyedDB is withDB for commands that read or write secrets: it builds the
// master-key box and opens the database checking that key (openDBWithKey).
func withKeyedDB(cmd *cobra.Command, fn func(c *config.Config, box *secrets.Box, db *gorm.DB) error) error {
	c, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	box, _, err := c.MasterBox()
	if err != nil {
		return err
	}
	db, err := openDBWithKey(cmd.Context(), c, newLogger(c, os.Stderr), c.Migrate, box)
	if err != nil {
		return err
	}
	defer storage.Close(db)
	return fn(c, box, db)
}

func print(cmd *cobra.Command, asJSON bool, v any, text string) error {
	if asJSON {
		enc := json.NewEncoder(cmd.OutOrStdout())
		return enc.Encode(v)
	}
	_, err := fmt.Fprint(cmd.OutOrStdout(), text)
	return err
}
