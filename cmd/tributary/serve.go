package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/api"
	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/hubspot"
	"github.com/tributary/tributary/connectors/salesforce"
	"github.com/tributary/tributary/connectors/shopify"
	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage"
)

// newRegistry builds the connectors this deployment offers from config.apps.
func newRegistry(c *config.Config) *connectors.Registry {
	return connectors.NewRegistry(
		hubspot.New(c.Apps["hubspot"].Connector()),
		salesforce.New(c.Apps["salesforce"].Connector()),
		shopify.New(c.Apps["shopify"].Connector()),
	)
}

func newServe() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the engine: API, poller and dispatcher (see --roles)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), c, nil)
		},
	}
	config.RegisterFlags(cmd.Flags())
	return cmd
}

// serve runs until ctx ends, then shuts down gracefully. ready, when set,
// receives the bound address once the server accepts connections.
func serve(ctx context.Context, c *config.Config, ready func(addr string)) error {
	log := newLogger(c, os.Stderr)
	// Bind first: a port in use is a configuration error naming its key.
	ln, err := net.Listen("tcp", c.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen_addr: cannot listen on %s: %w", c.ListenAddr, err)
	}
	defer ln.Close()
	key, err := c.LoadMasterKey()
	if err != nil {
		return err
	}
	box, err := secrets.New(key)
	if err != nil {
		return fmt.Errorf("master_key: %w", err)
	}
	db, err := openDB(ctx, c, log, c.Migrate)
	if err != nil {
		return err
	}
	defer storage.Close(db)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	fwd := forwarding.New(forwarding.Config{DB: db, Box: box, Dispatcher: c.Dispatcher,
		AllowHTTP: c.HTTPAllowed(), AllowPrivate: c.PrivateAddressesAllowed(), Logger: log})
	srv := api.New(api.Deps{
		Config: c, Logger: log, Registry: reg,
		Ready:      func(ctx context.Context) error { return storage.Ping(ctx, db) },
		Accounts:   accounts.New(db),
		Apps:       newRegistry(c),
		Forwarding: fwd,
	})
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var workers sync.WaitGroup
	defer func() { stopBG(); workers.Wait() }()
	if c.HasRole(config.RoleDispatcher) {
		d := fwd.NewDispatcher(reg)
		workers.Go(func() { _ = d.Run(bg) })
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	db0 := "sqlite:" + c.DataDir
	if !c.Embedded() {
		db0 = "postgres"
	}
	log.Info("tributary serving", "addr", ln.Addr().String(), "roles", c.Roles, "database", db0, "sandbox", c.SandboxEnabled())
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", c.API.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), c.API.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
