// Command tributary is Tributary's single binary: the engine (serve), its
// migrations, bootstrap of accounts and keys, and the provider fakes. This
// package only wires; the work lives in the domain packages.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "tributary:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "tributary",
		Short:         "Unified-API change-event engine: capture, normalize and forward signed change events",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServe(), newMigrate(), newMasterKey(), newAccounts(), newAPIKeys(), newAdminKeys(), newWebhooks(), newListen(), newReceive(), newSandbox())
	return root
}
