package main

import (
	"fmt"

	"github.com/spf13/cobra"

	hubspotfake "github.com/tributary/tributary/connectors/hubspot/fake"
	salesforcefake "github.com/tributary/tributary/connectors/salesforce/fake"
	shopifyfake "github.com/tributary/tributary/connectors/shopify/fake"
)

func newSandbox() *cobra.Command {
	var provider, listen string
	cmd := &cobra.Command{
		Use:   "sandbox --provider hubspot|shopify|salesforce --listen ADDR",
		Short: "Run a provider fake (same wire format as the real API) with seeded data",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s fake listening on http://%s\n", provider, listen)
			switch provider {
			case "hubspot":
				return hubspotfake.ListenAndServe(ctx, listen)
			case "shopify":
				return shopifyfake.ListenAndServe(ctx, listen)
			case "salesforce":
				return salesforcefake.ListenAndServe(ctx, listen, func(org, token, baseURL string) {
					fmt.Fprintf(out, "org %s, access token %s, instance %s\n", org, token, baseURL)
				})
			}
			return fmt.Errorf("provider: unknown %q (want hubspot, shopify or salesforce)", provider)
		},
	}
	cmd.Flags().StringVar(&provider, "provider", "", "hubspot, shopify or salesforce")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9101", "address to listen on")
	return cmd
}
