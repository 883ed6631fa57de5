package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"gorm.io/gorm"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/secrets/masterkeys"
	"github.com/tributary/tributary/storage"
)

func newMasterKey() *cobra.Command {
	cmd := &cobra.Command{Use: "master-key", Short: "Inspect and rotate the master key (see docs/operations.md)"}

	status := &cobra.Command{
		Use:   "status",
		Short: "List the master keys the database knows and this configuration's key ids",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			box, _, err := c.MasterBox()
			if err != nil {
				return err
			}
			db, err := openDB(cmd.Context(), c, newLogger(c, os.Stderr), c.Migrate)
			if err != nil {
				return err
			}
			defer storage.Close(db)
			keys, err := masterkeys.Keys(cmd.Context(), db)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "KEY ID\tSTATUS\tCREATED\tRETIRED")
			for _, k := range keys {
				retired := ""
				if k.RetiredAt != nil {
					retired = k.RetiredAt.UTC().Format("2006-01-02 15:04:05Z")
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", k.ID, k.Status, k.CreatedAt.UTC().Format("2006-01-02 15:04:05Z"), retired)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "configured: master_key %s, extra_master_keys [%s]\n", box.PrimaryID(), strings.Join(box.IDs()[1:], ", "))
			if err := masterkeys.Check(cmd.Context(), db, box); err != nil {
				return err
			}
			return nil
		},
	}
	config.RegisterFlagsFor(status.Flags(), keyConfigKeys...)

	var newKey string
	rotate := &cobra.Command{
		Use:   "rotate --new-key KEY",
		Short: "Make KEY the active master key and re-encrypt every secret under it (online; run twice, see docs/operations.md)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if newKey == "" {
				newKey = os.Getenv(config.EnvPrefix + "NEW_MASTER_KEY")
			}
			if newKey == "" {
				return fmt.Errorf("--new-key (or %sNEW_MASTER_KEY) is required; generate one with `openssl rand -base64 32`", config.EnvPrefix)
			}
			nk, err := secrets.ParseKey(newKey)
			if err != nil {
				return fmt.Errorf("--new-key: %w", err)
			}
			return withKeyedDB(cmd, func(_ *config.Config, box *secrets.Box, db *gorm.DB) error {
				rep, err := masterkeys.Rotate(cmd.Context(), db, box, nk, masterkeys.Options{})
				if err != nil {
					return fmt.Errorf("rotate: %w", err)
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "active key %s: %d secrets re-encrypted, %d still under another key\n", rep.NewKeyID, rep.Rewritten, rep.Remaining)
				if len(rep.Failed) > 0 {
					return fmt.Errorf("rotate: %d secrets open with none of the configured keys (add the key they were sealed with to extra_master_keys and run again): %s",
						len(rep.Failed), strings.Join(rep.Failed, "; "))
				}
				if rep.Finished {
					fmt.Fprintf(out, "rotation finished: retired %s; extra_master_keys can now be emptied\n", strings.Join(rep.Retired, ", "))
					return nil
				}
				fmt.Fprintf(out, "next: restart every replica with master_key=<new key> and extra_master_keys=<old key>, then run this command again (with that configuration) to finish\n")
				return nil
			})
		},
	}
	rotate.Flags().StringVar(&newKey, "new-key", "", "the new master key (32 bytes, base64 or hex)")
	config.RegisterFlagsFor(rotate.Flags(), keyConfigKeys...)

	cmd.AddCommand(status, rotate)
	return cmd
}
