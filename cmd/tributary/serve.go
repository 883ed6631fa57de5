package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"gorm.io/gorm"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/api"
	"github.com/tributary/tributary/api/console"
	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/hubspot"
	"github.com/tributary/tributary/connectors/salesforce"
	"github.com/tributary/tributary/connectors/sandbox"
	"github.com/tributary/tributary/connectors/shopify"
	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/sync/connections"
	"github.com/tributary/tributary/sync/inbound"
	"github.com/tributary/tributary/sync/poll"
	"github.com/tributary/tributary/sync/ratebudget"
	"github.com/tributary/tributary/sync/reconcile"
	"github.com/tributary/tributary/sync/sandboxapp"
	"github.com/tributary/tributary/sync/schedule"
)

// warnOutdatedAPIs logs a warning for every app pinned to a provider API
// version past its end of support (the provider may refuse it or fall
// forward to a newer version at any time).
func warnOutdatedAPIs(log *slog.Logger, apps *connectors.Registry, now time.Time) {
	for _, o := range apps.OutdatedAPIs(now) {
		log.Warn("provider API version is past its end of support; upgrade Tributary",
			"app", o.App, "apiVersion", o.Version, "endOfSupport", o.EndOfSupport.Format("2006-01-02"))
	}
}

// newRegistry builds the connectors this deployment offers from config.apps,
// plus the sandbox app when it is enabled (sb non-nil).
func newRegistry(c *config.Config, sb *sandboxapp.Service, sbSecret []byte) *connectors.Registry {
	apps := []connectors.Connector{
		hubspot.New(c.Apps["hubspot"].Connector()),
		salesforce.New(c.Apps["salesforce"].Connector()),
		shopify.New(c.Apps["shopify"].Connector()),
	}
	if sb != nil {
		apps = append(apps, sandbox.New(sb, sbSecret))
	}
	return connectors.NewRegistry(apps...)
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

// rolePools are the database pools of the roles (one shared pool on SQLite).
type rolePools struct{ api, capture, dispatcher *gorm.DB }

// openPools opens one PostgreSQL pool per role, sized by database.pool.*
// (see config.Pools), so that a burst of API or capture work cannot take the
// dispatcher's connections; migrations run on the API pool. On the embedded
// SQLite every role shares the one small pool (one writer anyway).
func openPools(ctx context.Context, c *config.Config, log *slog.Logger, box *secrets.Box) (rolePools, func(), error) {
	size := c.Pools(runtime.GOMAXPROCS(0))
	api, err := openPool(ctx, c, log, c.Migrate, storage.Options{MaxOpenConns: size.API, Name: "tributary-api"}, box)
	if err != nil {
		return rolePools{}, nil, err
	}
	if c.Embedded() {
		return rolePools{api, api, api}, func() { storage.Close(api) }, nil
	}
	p := rolePools{api: api}
	closeAll := func() {
		for _, db := range []*gorm.DB{p.api, p.capture, p.dispatcher} {
			if db != nil {
				storage.Close(db)
			}
		}
	}
	for _, r := range []struct {
		db   **gorm.DB
		n    int
		name string
	}{{&p.capture, size.Capture, "tributary-capture"}, {&p.dispatcher, size.Dispatcher, "tributary-dispatcher"}} {
		*r.db, err = storage.Open(ctx, storage.Options{URL: c.DatabaseURL, MaxOpenConns: r.n, Name: r.name, Logger: log})
		if err != nil {
			closeAll()
			return rolePools{}, nil, fmt.Errorf("database_url: %w", err)
		}
	}
	log.Info("database pools", "api", size.API, "capture", size.Capture, "dispatcher", size.Dispatcher)
	return p, closeAll, nil
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
	box, key, err := c.MasterBox()
	if err != nil {
		return err
	}
	pools, closePools, err := openPools(ctx, c, log, box)
	if err != nil {
		return err
	}
	defer closePools()
	db := pools.api

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	accts := accounts.New(db, accounts.WithAdminMinPollInterval(c.Scheduler.MinAdminPollInterval))
	fwd := forwarding.New(forwarding.Config{DB: db, DispatchDB: pools.dispatcher, Box: box, Dispatcher: c.Dispatcher, Keys: c.Signing,
		AllowHTTP: c.HTTPAllowed(), AllowPrivate: c.PrivateAddressesAllowed(), Logger: log})
	// The sandbox app (on by default with embedded SQLite) POSTs its webhooks
	// to this very process, on the address it is bound to.
	sbSecret := sandbox.DeriveSecret(key)
	var sb *sandboxapp.Service
	if c.SandboxEnabled() {
		sb = sandboxapp.New(db, nil, sbSecret, "http://"+ln.Addr().String()+"/inbound/"+sandbox.AppName)
	}
	apps := newRegistry(c, sb, sbSecret)
	warnOutdatedAPIs(log, apps, time.Now())
	conns, err := connections.New(connections.Config{DB: db, Box: box, Apps: apps, Publisher: fwd, Accounts: accts,
		DefaultPollInterval: c.Scheduler.DefaultPollInterval, MinPollInterval: c.Scheduler.MinPollInterval,
		AdminMinPollInterval: c.Scheduler.MinAdminPollInterval, Pacer: &ratebudget.Pacer{DB: db},
		ExternalURL: c.ExternalURL(), HTTP: &http.Client{Timeout: 30 * time.Second}, Logger: log})
	if err != nil {
		return err
	}
	rec := &reconcile.Reconciler{}
	proc := &inbound.Processor{DB: pools.capture, Apps: apps, Opener: conns, Publisher: fwd, Reconciler: rec, Logger: log,
		Batch: c.Inbound.BatchSize, Workers: c.InboundWorkers(runtime.GOMAXPROCS(0)), Committed: fwd.Wake,
		Metrics: inbound.NewMetrics(reg, pools.capture)}
	// A stored webhook wakes this process's processor at once and, through
	// NOTIFY, every other replica's (the tick is the fallback).
	inboxNotify := storage.NewNotifier(db, storage.ChannelInbox)
	recv := &inbound.Receiver{DB: db, Apps: apps, Logger: log, Notify: inboxNotify.Signal}
	deps := api.Deps{
		Config: c, Logger: log, Registry: reg, OpsOnly: !c.HasRole(config.RoleAPI),
		Ready:       func(ctx context.Context) error { return storage.Ping(ctx, db) },
		Accounts:    accts,
		Apps:        apps,
		Forwarding:  fwd,
		Connections: conns,
		Inbound:     recv,
	}
	if sb != nil {
		// The sandbox's webhooks go to this process's receiver directly:
		// verified and stored as any provider's, without a loopback request.
		sb.Deliver = func(ctx context.Context, req *connectors.InboundRequest) error {
			return recv.Receive(ctx, sandbox.AppName, req)
		}
		sb.Connections = conns // registry → connections → sandbox app is circular
		deps.Sandbox = sb      // only when enabled: a nil *Service in the interface is not nil
	}
	cons, err := console.New(console.Config{Auth: accts, Webhooks: fwd, Connections: conns, Sealer: box,
		Accounts: accts, ConnectionAdmin: conns, SigningKeys: fwd,
		Secure: strings.HasPrefix(c.ExternalURL(), "https://"), Logger: log})
	if err != nil {
		return err
	}
	deps.Console = cons
	if deps.Connect, err = console.NewConnectPage(conns, log); err != nil {
		return err
	}
	srv := api.New(deps)

	// Background work stops as soon as ctx ends, beside the HTTP drain: no
	// new claims; polls and deliveries in flight get their own grace.
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var workers sync.WaitGroup
	var stops []func(context.Context)
	var stopOnce sync.Once
	stopBackground := func() {
		stopOnce.Do(func() {
			sctx, cancel := context.WithTimeout(context.Background(), c.API.ShutdownTimeout)
			defer cancel()
			for _, stop := range stops {
				stop(sctx)
			}
			stopBG()
			workers.Wait()
		})
	}
	defer stopBackground()
	var roles []string
	if c.HasRole(config.RoleDispatcher) {
		d := fwd.NewDispatcher(reg)
		workers.Go(func() { _ = d.Run(bg) })
		roles = append(roles, "dispatcher: delivering due events")
	}
	workers.Go(func() { inboxNotify.Run(bg, log) })
	if c.HasRole(config.RolePoller) {
		recv.Notify = func() { proc.Wake(); inboxNotify.Signal() } // process a stored webhook right away
		if !c.Embedded() {
			workers.Go(func() {
				storage.Listen(bg, c.DatabaseURL, []string{storage.ChannelInbox}, func(string) { proc.Wake() }, log)
			})
		}
		workers.Go(func() { proc.Run(bg, time.Second) })
		runner := &poll.Runner{DB: pools.capture, Apps: apps, Opener: conns, Publisher: fwd, Reconciler: rec, Logger: log,
			FullScanEvery: c.Scheduler.FullScanEvery, PageSize: c.Scheduler.PageSize, BaselineSkew: c.Scheduler.BaselineSkew}
		sched, err := schedule.New(schedule.Config{DB: pools.capture, Runner: runner, Observe: schedule.NewPollMetrics(reg), Accounts: accts, Tick: c.Scheduler.Tick, Lease: c.Scheduler.Lease,
			Concurrency: c.Scheduler.Concurrency, DefaultInterval: c.Scheduler.DefaultPollInterval,
			MinInterval: c.Scheduler.MinPollInterval, AdminMinInterval: c.Scheduler.MinAdminPollInterval, Jitter: c.Scheduler.Jitter, Logger: log,
			RunRetention: c.Retention,
			Maintenance: []func(context.Context, time.Time) error{func(ctx context.Context, now time.Time) error {
				if c.Retention <= 0 {
					return nil
				}
				p, err := fwd.Prune(ctx, now.Add(-c.Retention))
				if err == nil && p.Attempts+p.Deliveries+p.Events > 0 {
					log.Info("retention: delivery history pruned", "attempts", p.Attempts, "deliveries", p.Deliveries, "events", p.Events)
				}
				return err
			}, func(ctx context.Context, now time.Time) error {
				n, err := reconcile.SweepSnapshots(ctx, pools.capture, 1000)
				if err == nil && n > 0 {
					log.Info("snapshots of deleted connections removed", "snapshots", n)
				}
				return err
			}, func(ctx context.Context, now time.Time) error {
				n, err := fwd.PruneSigningKeys(ctx, now.Add(-c.Signing.RetiredKeyGrace))
				if err == nil && n > 0 {
					log.Info("signing keys retired longer than signing.retired_key_grace deleted", "keys", n)
				}
				return err
			}}})
		if err != nil {
			return err
		}
		if err := sched.Start(bg); err != nil {
			return err
		}
		stops = append(stops, func(sctx context.Context) { _ = sched.Stop(sctx) })
		roles = append(roles, "poller: polling due connections every "+c.Scheduler.Tick.String()+", processing inbound webhooks")
	}
	for _, r := range roles {
		log.Info("role running", "role", r)
	}
	hs := api.HTTPServer(c.API, srv.Handler())
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
	bgDone := make(chan struct{})
	go func() { stopBackground(); close(bgDone) }()
	defer func() { <-bgDone }()
	sctx, cancel := context.WithTimeout(context.Background(), c.API.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
