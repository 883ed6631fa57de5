// Package connections owns end users' connections to apps and the OAuth2
// connect flow (tables connections and connect_sessions): creating a
// connection from credentials or from an authorization code, keeping its
// credentials sealed at rest, refreshing and persisting OAuth2 tokens, poll
// interval overrides within the account's floor, "sync now", and deletion
// (with the provider-side webhook subscription and the connection's
// snapshots). The system events connection/created, connection/deleted and
// connection/reauth_required are published through forwarding's Publish in
// the same transaction as the row change. Connecting the same provider
// account again for the same user re-authorizes the existing connection.
//
// It does not poll (sync/poll), schedule (sync/schedule) or process inbound
// webhooks (sync/inbound); those open connections through Open.
package connections

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/sync/pollinterval"
)

// Deployment defaults and limits.
const (
	// DefaultPollInterval applies when neither the account nor the connection sets one.
	DefaultPollInterval = pollinterval.DefaultInterval
	// DefaultMinPollInterval is the deployment floor for ISV-set intervals.
	DefaultMinPollInterval = pollinterval.DefaultFloor
	// DefaultAdminMinPollInterval is the default of the smallest interval
	// even an admin key may set (scheduler.min_admin_poll_interval).
	DefaultAdminMinPollInterval = pollinterval.DefaultAdminMin
	// SessionLifetime is how long a connect session waits for its callback.
	SessionLifetime = 30 * time.Minute
	// RefreshEarly refreshes an OAuth2 access token this long before it expires.
	RefreshEarly = 2 * time.Minute
)

// Publisher stores events and queues their deliveries inside tx
// (implemented by forwarding).
type Publisher interface {
	// Publish stores the events and queues one delivery per matching subscription, inside tx.
	Publish(ctx context.Context, tx *gorm.DB, accountID string, events ...*models.Envelope) error
}

// Apps finds a connector by name (connectors.Registry).
type Apps interface {
	Get(name string) (connectors.Connector, bool)
}

// Accounts reads an account's poll interval settings (accounts.Service).
type Accounts interface {
	Get(ctx context.Context, id string) (*models.Account, error)
}

// Pacer paces a connection's provider requests within its app's rate
// budgets, shared per provider account (*ratebudget.Pacer).
type Pacer interface {
	Wrap(app connectors.Budgeted, appName, externalID string, base http.RoundTripper) http.RoundTripper
}

// Config holds the Service's dependencies and settings.
type Config struct {
	// DB is the database holding connections and connect sessions.
	DB *gorm.DB
	// Box seals credentials and PKCE verifiers at rest.
	Box *secrets.Box
	// Apps are the connectors this deployment offers.
	Apps Apps
	// Publisher publishes the connection system events.
	Publisher Publisher
	// Accounts gives each account's default poll interval and floor; nil
	// means every account uses the deployment values.
	Accounts Accounts
	// DefaultPollInterval is the deployment default (DefaultPollInterval when 0).
	DefaultPollInterval time.Duration
	// MinPollInterval is the deployment floor (DefaultMinPollInterval when 0).
	MinPollInterval time.Duration
	// AdminMinPollInterval is the smallest interval an admin key may set
	// (DefaultAdminMinPollInterval when 0).
	AdminMinPollInterval time.Duration
	// ExternalURL is Tributary's public base URL: the OAuth2 callback is
	// ExternalURL+"/oauth/callback", native webhooks go to
	// ExternalURL+"/inbound/"+app.
	ExternalURL string
	// Pacer, when set, paces the requests of connections whose app declares
	// rate budgets (connectors.Budgeted).
	Pacer Pacer
	// HTTP sends provider requests (token exchange, refresh, identify,
	// subscribe, and the requests of non-OAuth connections).
	HTTP *http.Client
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Logger logs best-effort failures (slog.Default when nil).
	Logger *slog.Logger
}

// Service manages connections.
type Service struct {
	db        *gorm.DB
	box       *secrets.Box
	apps      Apps
	publisher Publisher
	accounts  Accounts
	policy    pollinterval.Policy
	pacer     Pacer
	external  string
	http      *http.Client
	now       func() time.Time
	log       *slog.Logger
}

// New builds a Service; DB, Box, Apps and Publisher are required.
func New(c Config) (*Service, error) {
	switch {
	case c.DB == nil:
		return nil, errors.New("connections: Config.DB is required")
	case c.Box == nil:
		return nil, errors.New("connections: Config.Box is required")
	case c.Apps == nil:
		return nil, errors.New("connections: Config.Apps is required")
	case c.Publisher == nil:
		return nil, errors.New("connections: Config.Publisher is required")
	}
	s := &Service{
		db: c.DB, box: c.Box, apps: c.Apps, publisher: c.Publisher, accounts: c.Accounts,
		policy: pollinterval.Policy{Default: c.DefaultPollInterval, Floor: c.MinPollInterval,
			AdminMin: c.AdminMinPollInterval},
		pacer:    c.Pacer,
		external: strings.TrimRight(c.ExternalURL, "/"),
		http:     cmp.Or(c.HTTP, &http.Client{Timeout: 30 * time.Second}),
		now:      c.Now,
		log:      cmp.Or(c.Logger, slog.Default()),
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// CallbackURL is the OAuth2 redirect URI registered with providers.
func (s *Service) CallbackURL() string { return s.external + "/oauth/callback" }

// InboundURL is where app's native webhooks are sent.
func (s *Service) InboundURL(app string) string { return s.external + "/inbound/" + app }

func (s *Service) clock() time.Time { return s.now().UTC() }

// intervals are an account's poll settings under the deployment policy.
type intervals struct {
	pol pollinterval.Policy
	acc *models.Account // nil: the deployment values apply
}

// def is the interval of the account's connections without an override.
func (iv intervals) def() time.Duration { return iv.pol.AccountDefault(iv.acc) }

// floor bounds the intervals the ISV sets.
func (iv intervals) floor() pollinterval.Limit { return iv.pol.ISVLimit(iv.acc) }

// effective is the interval the scheduler applies to c.
func (iv intervals) effective(c *models.Connection) time.Duration { return iv.pol.Effective(c, iv.acc) }

func (s *Service) intervalsOf(ctx context.Context, accountID string) (intervals, error) {
	iv := intervals{pol: s.policy}
	if s.accounts == nil || accountID == "" {
		return iv, nil
	}
	acc, err := s.accounts.Get(ctx, accountID)
	if models.IsNotFound(err) {
		return iv, nil
	}
	if err != nil {
		return iv, fmt.Errorf("account %s poll settings: %w", accountID, err)
	}
	iv.acc = acc
	return iv, nil
}

// parseInterval reads a poll interval ("" = none) and checks it against lim;
// the error names the limit.
func parseInterval(s string, lim pollinterval.Limit) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, models.FieldError("pollInterval", "pollInterval must be a positive duration like \"15m\" or \"12h\"")
	}
	if d < lim.Min {
		return 0, models.FieldError("pollInterval", "pollInterval must be at least %s (%s)", FormatDuration(lim.Min), lim.Name)
	}
	return d, nil
}

// FormatDuration renders a duration the way the API writes them: "12h",
// "1h30m", "5m", "45s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// appOf returns the connector named app, or an invalid_field error.
func (s *Service) appOf(app string) (connectors.Connector, error) {
	if app == "" {
		return nil, models.FieldError("app", "app is required")
	}
	a, ok := s.apps.Get(app)
	if !ok {
		return nil, models.FieldError("app", "unknown app %q (GET /v1/apps lists them)", app)
	}
	return a, nil
}

func notFound(id string) error {
	return models.Errorf(models.ErrCodeNotFound, "connection %s not found", id)
}
