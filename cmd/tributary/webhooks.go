package main

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"
	"gorm.io/gorm"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
)

func newWebhooks() *cobra.Command {
	wh := &cobra.Command{Use: "webhooks", Short: "Work with webhook deliveries"}
	var endpoint, event, account string
	var asJSON bool
	test := &cobra.Command{
		Use:   "test --endpoint URL --event TOPIC",
		Short: "Send one signed sample event of TOPIC to URL and print the response",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if endpoint == "" {
				return fmt.Errorf("--endpoint is required")
			}
			return withKeyedDB(cmd, func(c *config.Config, box *secrets.Box, db *gorm.DB) error {
				if account == "" {
					var ids []string
					if err := db.Model(&models.Account{}).Limit(2).Pluck("id", &ids).Error; err != nil {
						return fmt.Errorf("find account: %w", err)
					}
					if len(ids) != 1 {
						return fmt.Errorf("--account is required (the database holds %d accounts)", len(ids))
					}
					account = ids[0]
				}
				svc := forwarding.New(forwarding.Config{DB: db, Box: box, Dispatcher: c.Dispatcher,
					AllowHTTP: true, AllowPrivate: c.PrivateAddressesAllowed()})
				att, eventID, err := svc.SendSample(cmd.Context(), account, endpoint, event)
				if err != nil {
					return err
				}
				text := fmt.Sprintf("sent %s (%s) to %s\nstatus %d in %d ms\n", eventID, event, endpoint, att.StatusCode, att.ResponseTimeMs)
				if att.Error != "" {
					text += "error: " + att.Error + "\n"
				}
				if att.ResponseBody != "" {
					text += "response: " + att.ResponseBody + "\n"
				}
				if err := print(cmd, asJSON, map[string]any{"eventId": eventID, "topic": event, "attempt": att}, text); err != nil {
					return err
				}
				return sampleFailure(att)
			})
		},
	}
	test.Flags().StringVar(&endpoint, "endpoint", "", "receiver URL")
	test.Flags().StringVar(&event, "event", "crm/contacts", "topic of the sample event")
	test.Flags().StringVar(&account, "account", "", "account whose key signs (default: the only account)")
	test.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	config.RegisterFlagsFor(test.Flags(), slices.Concat(keyConfigKeys, []string{"allow_private_addresses", "dispatcher.default_timeout"})...)
	wh.AddCommand(test)
	return wh
}

// sampleFailure is the error of a sample send that did not succeed — no
// answer (connection refused, timeout, TLS) or a non-2xx status — so that
// `webhooks test` exits non-zero; nil for a 2xx.
func sampleFailure(att *forwarding.AttemptView) error {
	switch {
	case att.Error != "" && att.StatusCode == 0:
		return fmt.Errorf("send failed: %s", att.Error)
	case att.StatusCode < 200 || att.StatusCode > 299:
		return fmt.Errorf("send failed: the receiver answered status %d", att.StatusCode)
	}
	return nil
}
