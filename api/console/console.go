// Package console is Tributary's web console at /console: server-rendered
// pages (html/template, embedded with the binary, no build step) and a
// little JavaScript, over the same services as the JSON API. A person signs
// in with an API key; the key is kept sealed (AES-256-GCM under the master
// key) in an HttpOnly, SameSite=Strict cookie and checked again on every
// request, so a revoked key ends its sessions at once. Every form carries a
// CSRF token derived from that cookie. An admin key (trb_admin_…) signs in
// to the Admin pages instead: accounts, their poll tuning and signing keys,
// and a connection's poll interval. The package renders and routes; it
// owns no data and reaches the services through the small interfaces below.
package console

import (
	"context"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/sync/connections"
)

//go:embed assets
var assets embed.FS

// Authenticator checks an API key (package accounts).
type Authenticator interface {
	Authenticate(ctx context.Context, key string) (accounts.Principal, error)
}

// Webhooks is what the webhook, delivery and dead-letter pages need of
// package forwarding.
type Webhooks interface {
	CreateSubscription(ctx context.Context, accountID string, in forwarding.SubscriptionInput) (*forwarding.Subscription, error)
	UpdateSubscription(ctx context.Context, accountID, id string, in forwarding.SubscriptionInput) (*forwarding.Subscription, error)
	ListSubscriptions(ctx context.Context, accountID string, limit int, cursor string) ([]*forwarding.Subscription, string, error)
	GetSubscription(ctx context.Context, accountID, id string) (*forwarding.Subscription, error)
	DeleteSubscription(ctx context.Context, accountID, id string) error
	SendTest(ctx context.Context, accountID, webhookID, topic string) (*forwarding.AttemptView, string, error)
	SubscriptionStats(ctx context.Context, accountID, id string) (*forwarding.Stats, error)
	ListDeliveries(ctx context.Context, accountID string, f forwarding.DeliveryFilter, limit int, cursor string) ([]forwarding.DeliveryView, string, error)
	Resend(ctx context.Context, accountID, deliveryID string) (*forwarding.DeliveryView, error)
	DeadLetters(ctx context.Context, accountID, webhookID string, limit int, cursor string) ([]forwarding.DeliveryView, string, error)
	Replay(ctx context.Context, accountID, deliveryID string) error
	ReplayAll(ctx context.Context, accountID, webhookID string) (int64, error)
	ListEvents(ctx context.Context, accountID, after, topic string, limit int) ([]json.RawMessage, string, error)
}

// Connections is what the connections page needs of sync/connections.
type Connections interface {
	List(ctx context.Context, accountID, userID string, limit int, cursor string) ([]connections.View, string, error)
	SyncNow(ctx context.Context, accountID, id string) error
	UpdatePollInterval(ctx context.Context, accountID, id, interval string) (connections.View, error)
}

// Sealer encrypts the session cookie (secrets.Box).
type Sealer interface {
	Seal(plaintext, aad []byte) []byte
	Open(sealed, aad []byte) ([]byte, error)
}

// Config are the console's services. Connections may be nil (the page
// then says so).
type Config struct {
	Auth        Authenticator
	Webhooks    Webhooks
	Connections Connections
	Sealer      Sealer
	// Accounts, ConnectionAdmin and SigningKeys serve the admin pages
	// (signed in with an admin key); Accounts nil disables them.
	Accounts        Accounts
	ConnectionAdmin ConnectionAdmin
	SigningKeys     SigningKeys
	// Secure marks the cookie Secure (the public URL is https).
	Secure bool
	// SessionLifetime bounds a sign-in (default 12h).
	SessionLifetime time.Duration
	Logger          *slog.Logger
	Now             func() time.Time
}

// Console serves /console.
type Console struct {
	cfg   Config
	pages map[string]*template.Template
	mux   *http.ServeMux
}

// New builds the console's handler.
func New(c Config) (*Console, error) {
	if c.SessionLifetime == 0 {
		c.SessionLifetime = 12 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	k := &Console{cfg: c, pages: pages, mux: http.NewServeMux()}
	k.routes()
	return k, nil
}

// ServeHTTP serves every /console path.
func (k *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'")
	k.mux.ServeHTTP(w, r)
}

func (k *Console) routes() {
	static, _ := fs.Sub(assets, "assets/static")
	k.mux.Handle("GET /console/static/", http.StripPrefix("/console/static/", http.FileServerFS(static)))
	k.mux.HandleFunc("GET /console", k.home)
	k.mux.HandleFunc("GET /console/{$}", k.home)
	k.mux.HandleFunc("POST /console/login", k.login)
	k.mux.HandleFunc("POST /console/logout", k.as("", k.logout))
	k.mux.HandleFunc("GET /console/webhooks", k.signedIn(k.webhooks))
	k.mux.HandleFunc("POST /console/webhooks", k.signedIn(k.createWebhook))
	k.mux.HandleFunc("POST /console/webhooks/{id}/test", k.signedIn(k.testWebhook))
	k.mux.HandleFunc("POST /console/webhooks/{id}/pause", k.signedIn(k.setActive(false)))
	k.mux.HandleFunc("POST /console/webhooks/{id}/resume", k.signedIn(k.setActive(true)))
	k.mux.HandleFunc("POST /console/webhooks/{id}/delete", k.signedIn(k.deleteWebhook))
	k.mux.HandleFunc("GET /console/deliveries", k.signedIn(k.deliveries))
	k.mux.HandleFunc("POST /console/deliveries/{id}/resend", k.signedIn(k.resend))
	k.mux.HandleFunc("GET /console/dead-letters", k.signedIn(k.deadLetters))
	k.mux.HandleFunc("POST /console/dead-letters/replay", k.signedIn(k.replayAll))
	k.mux.HandleFunc("POST /console/dead-letters/{id}/replay", k.signedIn(k.replayOne))
	k.mux.HandleFunc("GET /console/connections", k.signedIn(k.connectionsPage))
	k.mux.HandleFunc("POST /console/connections/{id}/sync", k.signedIn(k.syncConnection))
	k.mux.HandleFunc("POST /console/connections/{id}/interval", k.signedIn(k.setInterval))
	k.mux.HandleFunc("GET /console/events", k.signedIn(k.eventsPage))
	k.mux.HandleFunc("GET /console/events.json", k.signedIn(k.eventsJSON))
	k.adminRoutes()
	k.mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		k.render(w, r, http.StatusNotFound, "error", page{Title: "Not found", Error: "There is no console page at " + r.URL.Path + "."})
	})
}
