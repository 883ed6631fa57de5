// Package config holds Tributary's one typed configuration. It is loaded once
// at start — defaults, then an optional YAML file, then TRIBUTARY_*
// environment variables, then command-line flags — validated, and passed
// down; nothing reads configuration from globals.
package config

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage"
)

// Process roles.
const (
	RoleAPI        = "api"
	RolePoller     = "poller"
	RoleDispatcher = "dispatcher"
)

// Config is the whole configuration. Each field's key is its name in the YAML
// file, TRIBUTARY_<KEY> (upper case, dots as underscores) in the environment
// and --<key> (dashes) on the command line.
type Config struct {
	// ListenAddr is where the HTTP server listens.
	ListenAddr string `key:"listen_addr" help:"address the HTTP server listens on"`
	// PublicURL is how providers and browsers reach this server (OAuth
	// callback, inbound webhooks). Defaults to http://<listen_addr>.
	PublicURL string `key:"public_url" help:"external base URL (OAuth callback and inbound webhooks)"`
	// DataDir holds the embedded SQLite database and its master key.
	DataDir string `key:"data_dir" help:"directory of the embedded SQLite database"`
	// DatabaseURL selects PostgreSQL; empty means embedded SQLite.
	DatabaseURL string `key:"database_url" help:"postgres:// URL (empty: embedded SQLite in data_dir)"`
	// MasterKey encrypts secrets at rest: 32 bytes, base64 or hex. Required on
	// PostgreSQL; generated into data_dir for the embedded default.
	MasterKey string `key:"master_key" help:"32-byte key (base64/hex) encrypting secrets at rest" secret:"true"`
	// ExtraMasterKeys are further master keys accepted for opening secrets,
	// never for sealing: the other key of a rotation in progress.
	ExtraMasterKeys []string `key:"extra_master_keys" help:"other master keys accepted for decryption during a key rotation (comma-separated)" secret:"true"`
	// AllowPrivateAddresses lets subscriptions reach loopback/private
	// addresses. Default: true on embedded SQLite, false on PostgreSQL.
	AllowPrivateAddresses *bool `key:"allow_private_addresses" help:"allow delivery to private/loopback addresses" default:"true with embedded SQLite, false on PostgreSQL"`
	// AllowHTTP lets subscriptions use plain http:// addresses. Default as
	// AllowPrivateAddresses.
	AllowHTTP *bool `key:"allow_http" help:"allow plain http:// subscription addresses" default:"as allow_private_addresses"`
	// Roles this process runs: api, poller, dispatcher.
	Roles []string `key:"roles" help:"roles to run: api,poller,dispatcher"`
	// Migrate applies pending migrations at start.
	Migrate bool `key:"migrate" help:"apply database migrations at start"`
	// Sandbox enables the built-in sandbox app. Default: on with embedded SQLite.
	Sandbox *bool `key:"sandbox" help:"enable the built-in sandbox app" default:"true with embedded SQLite, false on PostgreSQL"`

	Database   Database   `key:"database"`
	Inbound    Inbound    `key:"inbound"`
	Log        Log        `key:"log"`
	API        API        `key:"api"`
	Dispatcher Dispatcher `key:"dispatcher"`
	Signing    Signing    `key:"signing"`
	// Retention keeps delivery history (attempts, finished deliveries, and
	// events nothing still waits for) this long; 0 keeps it forever.
	Retention time.Duration `key:"retention" help:"how long delivery history is kept (0 = forever)"`
	Scheduler Scheduler     `key:"scheduler"`
	// Apps configures each connector (client id/secret, endpoint overrides);
	// keys are app names. Only from the file or TRIBUTARY_APPS_<APP>_<FIELD>.
	Apps map[string]App `key:"apps"`
}

// Database configures the PostgreSQL connection pools, one per role, so no
// role can take another's connections (on the embedded SQLite all roles
// share its one small pool). 0 sizes a pool from the machine; see Pools.
type Database struct {
	Pool Pool `key:"pool"`
}

// Pool sizes the connection pools of one process.
type Pool struct {
	// API serves the HTTP API, including stored native webhooks and sandbox writes.
	API int `key:"api" help:"API pool connections (0 = 4 per CPU, 8..64)"`
	// Capture processes the inbox and runs polls.
	Capture int `key:"capture" help:"capture pool connections (0 = inbound.workers + scheduler.concurrency + 2)"`
	// Dispatcher claims deliveries and records their attempts.
	Dispatcher int `key:"dispatcher" help:"dispatcher pool connections (0 = 4 + CPUs/2)"`
}

// Pools returns the effective pool sizes for a machine with cpus CPUs:
// configured values, else api = 4×cpus within 8..64, capture =
// inbound.workers + scheduler.concurrency + 2, dispatcher = 4 + cpus/2.
// With 2 CPUs and the other defaults: 8 / 10 / 5; with 32: 64 / 22 / 20.
func (c *Config) Pools(cpus int) Pool {
	cpus = max(1, cpus)
	return Pool{
		API:        cmp.Or(c.Database.Pool.API, min(64, max(8, 4*cpus))),
		Capture:    cmp.Or(c.Database.Pool.Capture, c.InboundWorkers(cpus)+c.Scheduler.Concurrency+2),
		Dispatcher: cmp.Or(c.Database.Pool.Dispatcher, 4+cpus/2),
	}
}

// Inbound configures the processing of stored native webhooks.
type Inbound struct {
	// Workers is how many inbox batches one process handles at once.
	Workers int `key:"workers" help:"inbox batches processed at once (0 = max(4, CPUs/2))"`
	// BatchSize is how many inbox items one batch (one transaction) takes.
	BatchSize int `key:"batch_size" help:"inbox items per batch transaction"`
}

// InboundWorkers is the effective inbound.workers for cpus CPUs: at least
// four, because a batch spends most of its time waiting on database round
// trips (one page per connection), not on CPU, so on a small, busy machine
// two batches at once could not keep up with the webhooks being stored.
func (c *Config) InboundWorkers(cpus int) int {
	return cmp.Or(c.Inbound.Workers, max(4, cpus/2))
}

// Log configures logging.
type Log struct {
	// Format is json, text or auto (text on a terminal, json otherwise).
	Format string `key:"format" help:"log format: auto, json or text"`
	// Level is debug, info, warn or error.
	Level string `key:"level" help:"log level: debug, info, warn, error"`
}

// API configures the HTTP API.
type API struct {
	// MaxBodyBytes caps request bodies (413 above).
	MaxBodyBytes int64 `key:"max_body_bytes" help:"largest accepted request body"`
	// RateLimit is the sustained requests/second allowed per API key.
	RateLimit float64 `key:"rate_limit" help:"requests per second per API key"`
	// RateBurst is the burst allowed per API key.
	RateBurst int `key:"rate_burst" help:"burst of requests per API key"`
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout time.Duration `key:"shutdown_timeout" help:"grace period on SIGTERM"`
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration `key:"read_header_timeout" help:"time allowed to read request headers"`
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout time.Duration `key:"read_timeout" help:"time allowed to read a whole request"`
	// WriteTimeout bounds a request from the end of its headers to the end of
	// the answer: a client that never reads its answer is cut off after it.
	// It must exceed dispatcher.max_timeout (POST /v1/webhooks/{id}/test
	// waits for one delivery).
	WriteTimeout time.Duration `key:"write_timeout" help:"time allowed to handle a request and write its answer"`
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout time.Duration `key:"idle_timeout" help:"keep-alive connections idle this long are closed"`
	// InboundConcurrency caps provider webhook requests (POST /inbound/{app})
	// handled at once by this process; more wait briefly, then get 503.
	InboundConcurrency int `key:"inbound_concurrency" help:"provider webhook requests handled at once"`
	// InboundRateLimit is the sustained provider webhook requests/second
	// allowed per source IP (429 above).
	InboundRateLimit float64 `key:"inbound_rate_limit" help:"provider webhook requests per second per source IP"`
	// InboundRateBurst is the burst allowed per source IP on /inbound.
	InboundRateBurst int `key:"inbound_rate_burst" help:"burst of provider webhook requests per source IP"`
	// AuthFailureRate is the sustained rate of failed authentications
	// (missing or invalid keys) allowed per source IP; above it every
	// authenticated route answers 429 to that IP without a database lookup.
	AuthFailureRate float64 `key:"auth_failure_rate" help:"failed authentications per second allowed per source IP"`
	// TrustedProxies are the proxy addresses or CIDRs whose X-Forwarded-For
	// names the client for per-IP limits; empty: the peer address is the client.
	TrustedProxies []string `key:"trusted_proxies" help:"proxies (IPs/CIDRs) whose X-Forwarded-For is trusted"`
	// AuthFailureBurst is the burst of failed authentications per source IP.
	AuthFailureBurst int `key:"auth_failure_burst" help:"burst of failed authentications per source IP"`
}

// Signing bounds signing keys and secrets.
type Signing struct {
	// RotationLimit is how many RSA keys an account may make within
	// RotationWindow (its first key included); more rotations get 429.
	RotationLimit int `key:"rotation_limit" help:"signing keys an account may make per rotation_window"`
	// RotationWindow is the window of RotationLimit.
	RotationWindow time.Duration `key:"rotation_window" help:"window of signing.rotation_limit"`
	// RetiredKeyGrace is how long a rotated-out RSA key stays published in
	// the JWKS before it is deleted.
	RetiredKeyGrace time.Duration `key:"retired_key_grace" help:"how long retired signing keys stay published"`
	// SecretOverlap is how long the previous hmac/standard secret of a
	// subscription keeps signing beside the new one after a rotation.
	SecretOverlap time.Duration `key:"secret_overlap" help:"how long an old webhook secret keeps signing after rotate-secret"`
}

// Dispatcher configures delivery.
type Dispatcher struct {
	// Workers is the number of concurrent HTTP deliveries of this process.
	Workers int `key:"workers" help:"concurrent deliveries per process"`
	// BatchSize is how many due deliveries one claim takes.
	BatchSize int `key:"batch_size" help:"deliveries claimed per query"`
	// Tick is how often an idle dispatcher looks for due deliveries.
	Tick time.Duration `key:"tick" help:"idle poll interval for due deliveries"`
	// DefaultTimeout is the HTTP timeout of a subscription without its own.
	DefaultTimeout time.Duration `key:"default_timeout" help:"default delivery HTTP timeout"`
	// MaxTimeout bounds a subscription's timeoutSeconds.
	MaxTimeout time.Duration `key:"max_timeout" help:"largest allowed delivery timeout"`
	// MaxPerEndpoint caps concurrent requests to one endpoint origin
	// (scheme, host, port) per process.
	MaxPerEndpoint int `key:"max_per_endpoint" help:"concurrent deliveries per endpoint origin"`
	// MaxPerAccount caps one account's concurrent deliveries per process, so
	// a tenant with many slow endpoints leaves workers for the others
	// (0 = three quarters of Workers).
	MaxPerAccount int `key:"max_per_account" help:"concurrent deliveries per account (0 = 3/4 of workers)"`
	// MaxWebhooksPerAccount caps how many subscriptions one account may
	// have (0 = no cap).
	MaxWebhooksPerAccount int `key:"max_webhooks_per_account" help:"webhook subscriptions an account may create (0 = no cap)"`
	// CircuitThreshold consecutive failures open an endpoint's circuit.
	CircuitThreshold int `key:"circuit_threshold" help:"consecutive failures that open an endpoint circuit"`
	// CircuitCooldown is how long an open circuit waits before a probe.
	CircuitCooldown time.Duration `key:"circuit_cooldown" help:"how long an open circuit rests"`
	// DisableAfter disables a subscription failing without success this long (0 = never).
	DisableAfter time.Duration `key:"disable_after" help:"disable an endpoint failing this long (0 = never)"`
	// MaxResponseBytes caps the response body kept in the attempt log.
	MaxResponseBytes int `key:"max_response_bytes" help:"response bytes kept per attempt"`
}

// Scheduler configures polling.
type Scheduler struct {
	// Tick is how often each replica looks for due connections.
	Tick time.Duration `key:"tick" help:"how often due connections are claimed"`
	// DefaultPollInterval applies when neither account nor connection sets one.
	DefaultPollInterval time.Duration `key:"default_poll_interval" help:"default interval between polls"`
	// MinPollInterval is the deployment floor for ISV-set intervals.
	MinPollInterval time.Duration `key:"min_poll_interval" help:"floor for ISV-set poll intervals"`
	// MinAdminPollInterval is the smallest interval an admin key may set on
	// a connection or as an account's default; admin-set intervals are
	// applied as given down to it, below the account's floor too.
	MinAdminPollInterval time.Duration `key:"min_admin_poll_interval" help:"smallest poll interval an admin key may set"`
	// Jitter spreads polls: each next time moves by up to this fraction.
	Jitter float64 `key:"jitter" help:"fraction of the interval added at random"`
	// Concurrency is how many connections one replica polls at once.
	Concurrency int `key:"concurrency" help:"connections polled at once per replica"`
	// FullScanEvery bounds how often an object whose app cannot list
	// deletions is fully re-listed to find them (0 = every poll).
	FullScanEvery time.Duration `key:"full_scan_every" help:"how often apps without a deletions listing are fully re-scanned"`
	// PageSize is the page size asked of connectors when polling (each page
	// is one transaction).
	PageSize int `key:"page_size" help:"records per poll page (one transaction each)"`
	// Lease is how long a claimed poll may go without renewing before
	// another replica retakes it (a running poll renews it every Lease/3).
	Lease time.Duration `key:"lease" help:"poll claim lease; a crashed poll is retried after it"`
	// BaselineSkew allows for provider clock skew in the silent first sync:
	// records changed after the connection's creation minus this are emitted.
	BaselineSkew time.Duration `key:"baseline_skew" help:"first sync emits records changed after connect minus this (provider clock skew)"`
}

// App is one connector's deployment configuration.
type App struct {
	ClientID      string   `key:"client_id" yaml:"client_id"`
	ClientSecret  string   `key:"client_secret" yaml:"client_secret"`
	WebhookSecret string   `key:"webhook_secret" yaml:"webhook_secret"`
	BaseURL       string   `key:"base_url" yaml:"base_url"`
	AuthURL       string   `key:"auth_url" yaml:"auth_url"`
	TokenURL      string   `key:"token_url" yaml:"token_url"`
	Scopes        []string `key:"scopes" yaml:"scopes"`
}

// Connector converts to the connectors package's view.
func (a App) Connector() connectors.AppConfig {
	return connectors.AppConfig{ClientID: a.ClientID, ClientSecret: a.ClientSecret, WebhookSecret: a.WebhookSecret,
		BaseURL: a.BaseURL, AuthURL: a.AuthURL, TokenURL: a.TokenURL, Scopes: a.Scopes}
}

// Default returns the configuration before any file, env or flag.
func Default() Config {
	return Config{
		ListenAddr: "127.0.0.1:8080",
		DataDir:    "./data",
		Roles:      []string{RoleAPI, RolePoller, RoleDispatcher},
		Migrate:    true,
		Log:        Log{Format: "auto", Level: "info"},
		API: API{MaxBodyBytes: 1 << 20, RateLimit: 50, RateBurst: 100, ShutdownTimeout: 20 * time.Second,
			ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: 2 * time.Minute,
			IdleTimeout: 2 * time.Minute, InboundConcurrency: 64, InboundRateLimit: 100, InboundRateBurst: 200,
			AuthFailureRate: 1, AuthFailureBurst: 20},
		Signing: Signing{RotationLimit: 3, RotationWindow: time.Hour, RetiredKeyGrace: 24 * time.Hour,
			SecretOverlap: 24 * time.Hour},
		Dispatcher: Dispatcher{Workers: 64, BatchSize: 200, Tick: 100 * time.Millisecond,
			DefaultTimeout: 30 * time.Second, MaxTimeout: 60 * time.Second, MaxPerEndpoint: 32,
			CircuitThreshold: 10, CircuitCooldown: 30 * time.Second, DisableAfter: 5 * 24 * time.Hour,
			MaxResponseBytes: 4096, MaxWebhooksPerAccount: 200},
		Scheduler: Scheduler{Tick: 5 * time.Second, DefaultPollInterval: 12 * time.Hour,
			MinPollInterval: 5 * time.Minute, MinAdminPollInterval: time.Minute, Jitter: 0.1, Concurrency: 4, FullScanEvery: 24 * time.Hour,
			PageSize: 100, Lease: 5 * time.Minute, BaselineSkew: time.Minute},
		Inbound:   Inbound{BatchSize: 200},
		Retention: 30 * 24 * time.Hour,
		Apps:      map[string]App{},
	}
}

// Embedded reports whether the embedded SQLite database is used.
func (c *Config) Embedded() bool { return c.DatabaseURL == "" }

// HasRole reports whether this process runs role.
func (c *Config) HasRole(role string) bool { return slices.Contains(c.Roles, role) }

// PrivateAddressesAllowed reports the effective allow_private_addresses.
func (c *Config) PrivateAddressesAllowed() bool { return deref(c.AllowPrivateAddresses, c.Embedded()) }

// HTTPAllowed reports the effective allow_http.
func (c *Config) HTTPAllowed() bool { return deref(c.AllowHTTP, c.PrivateAddressesAllowed()) }

// SandboxEnabled reports the effective sandbox setting.
func (c *Config) SandboxEnabled() bool { return deref(c.Sandbox, c.Embedded()) }

// MasterKeyFile is where the embedded default keeps its generated key.
func (c *Config) MasterKeyFile() string { return filepath.Join(c.DataDir, "master.key") }

// LoadMasterKey returns the master key: the configured one, or on the
// embedded default a key generated into data_dir. On PostgreSQL a missing key
// is an error, never a silent default.
func (c *Config) LoadMasterKey() ([]byte, error) {
	if c.MasterKey != "" {
		k, err := secrets.ParseKey(c.MasterKey)
		if err != nil {
			return nil, fmt.Errorf("master_key: %w", err)
		}
		return k, nil
	}
	if !c.Embedded() {
		return nil, errors.New("master_key: required with database_url (PostgreSQL); generate one with `openssl rand -base64 32` and set TRIBUTARY_MASTER_KEY")
	}
	k, err := secrets.LoadOrCreateKeyFile(c.MasterKeyFile())
	if err != nil {
		return nil, fmt.Errorf("master_key: %w", err)
	}
	return k, nil
}

// MasterBox returns the Box of the master key, which also opens values sealed
// under ExtraMasterKeys.
func (c *Config) MasterBox() (*secrets.Box, []byte, error) {
	key, err := c.LoadMasterKey()
	if err != nil {
		return nil, nil, err
	}
	var extra [][]byte
	for i, s := range c.ExtraMasterKeys {
		k, err := secrets.ParseKey(s)
		if err != nil {
			return nil, nil, fmt.Errorf("extra_master_keys[%d]: %w", i, err)
		}
		extra = append(extra, k)
	}
	box, err := secrets.NewRing(key, extra...)
	if err != nil {
		return nil, nil, fmt.Errorf("master_key: %w", err)
	}
	return box, key, nil
}

// Validate checks every value and names the key of the first bad one.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		bad("listen_addr", "%q is not host:port", c.ListenAddr)
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("public_url", "%q is not an absolute http(s) URL", c.PublicURL)
		}
	}
	if c.DatabaseURL != "" {
		if err := storage.ValidateURL(c.DatabaseURL); err != nil {
			bad("database_url", "%v", err)
		}
	} else if c.DataDir == "" {
		bad("data_dir", "must not be empty with the embedded database")
	}
	if c.MasterKey != "" {
		if _, err := secrets.ParseKey(c.MasterKey); err != nil {
			bad("master_key", "%v", err)
		}
	}
	for i, k := range c.ExtraMasterKeys {
		if _, err := secrets.ParseKey(k); err != nil {
			bad("extra_master_keys", "entry %d: %v", i, err)
		}
	}
	if len(c.Roles) == 0 {
		bad("roles", "at least one of api, poller, dispatcher")
	}
	for _, r := range c.Roles {
		if r != RoleAPI && r != RolePoller && r != RoleDispatcher {
			bad("roles", "unknown role %q (want api, poller, dispatcher)", r)
		}
	}
	if !slices.Contains([]string{"auto", "json", "text"}, c.Log.Format) {
		bad("log.format", "%q is not auto, json or text", c.Log.Format)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	positive := map[string]float64{
		"api.max_body_bytes": float64(c.API.MaxBodyBytes), "api.rate_limit": c.API.RateLimit, "api.rate_burst": float64(c.API.RateBurst),
		"dispatcher.workers": float64(c.Dispatcher.Workers), "dispatcher.batch_size": float64(c.Dispatcher.BatchSize),
		"dispatcher.tick": float64(c.Dispatcher.Tick), "dispatcher.default_timeout": float64(c.Dispatcher.DefaultTimeout),
		"dispatcher.max_timeout": float64(c.Dispatcher.MaxTimeout), "dispatcher.max_per_endpoint": float64(c.Dispatcher.MaxPerEndpoint),
		"dispatcher.circuit_threshold": float64(c.Dispatcher.CircuitThreshold), "dispatcher.max_response_bytes": float64(c.Dispatcher.MaxResponseBytes),
		"scheduler.tick": float64(c.Scheduler.Tick), "scheduler.default_poll_interval": float64(c.Scheduler.DefaultPollInterval),
		"scheduler.min_poll_interval": float64(c.Scheduler.MinPollInterval), "scheduler.concurrency": float64(c.Scheduler.Concurrency),
		"scheduler.page_size": float64(c.Scheduler.PageSize), "scheduler.lease": float64(c.Scheduler.Lease),
		"api.read_header_timeout": float64(c.API.ReadHeaderTimeout), "api.read_timeout": float64(c.API.ReadTimeout),
		"api.write_timeout": float64(c.API.WriteTimeout), "api.idle_timeout": float64(c.API.IdleTimeout),
		"api.inbound_concurrency": float64(c.API.InboundConcurrency), "api.inbound_rate_limit": c.API.InboundRateLimit,
		"api.inbound_rate_burst": float64(c.API.InboundRateBurst), "api.auth_failure_rate": c.API.AuthFailureRate,
		"api.auth_failure_burst": float64(c.API.AuthFailureBurst), "signing.rotation_limit": float64(c.Signing.RotationLimit),
		"signing.rotation_window": float64(c.Signing.RotationWindow), "signing.retired_key_grace": float64(c.Signing.RetiredKeyGrace),
		"signing.secret_overlap":  float64(c.Signing.SecretOverlap),
		"scheduler.baseline_skew": float64(c.Scheduler.BaselineSkew), "scheduler.min_admin_poll_interval": float64(c.Scheduler.MinAdminPollInterval),
		"inbound.batch_size": float64(c.Inbound.BatchSize),
	}
	nonNegative := map[string]int{"database.pool.api": c.Database.Pool.API, "database.pool.capture": c.Database.Pool.Capture,
		"database.pool.dispatcher": c.Database.Pool.Dispatcher, "inbound.workers": c.Inbound.Workers}
	for _, k := range slices.Sorted(maps.Keys(nonNegative)) {
		if nonNegative[k] < 0 {
			bad(k, "must not be negative (0 = sized from the machine)")
		}
	}
	keys := make([]string, 0, len(positive))
	for k := range positive {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if positive[k] <= 0 {
			bad(k, "must be greater than zero")
		}
	}
	if c.Dispatcher.MaxPerAccount < 0 {
		bad("dispatcher.max_per_account", "must not be negative")
	}
	if c.Dispatcher.MaxWebhooksPerAccount < 0 {
		bad("dispatcher.max_webhooks_per_account", "must not be negative")
	}
	if c.Scheduler.Jitter < 0 || c.Scheduler.Jitter > 1 {
		bad("scheduler.jitter", "must be between 0 and 1")
	}
	if c.Dispatcher.DefaultTimeout > c.Dispatcher.MaxTimeout {
		bad("dispatcher.default_timeout", "exceeds dispatcher.max_timeout")
	}
	for _, p := range c.API.TrustedProxies {
		if _, _, err := net.ParseCIDR(p); err != nil && net.ParseIP(p) == nil {
			bad("api.trusted_proxies", "%q is not an IP address or CIDR", p)
		}
	}
	if c.API.WriteTimeout > 0 && c.API.WriteTimeout <= c.Dispatcher.MaxTimeout {
		bad("api.write_timeout", "must exceed dispatcher.max_timeout (%s): a webhook test waits for one delivery", c.Dispatcher.MaxTimeout)
	}
	return errors.Join(errs...)
}

// ExternalURL is PublicURL, or http://<listen_addr>.
func (c *Config) ExternalURL() string {
	return strings.TrimRight(cmp.Or(c.PublicURL, "http://"+c.ListenAddr), "/")
}

func deref(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}
