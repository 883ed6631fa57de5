// Package forwarding owns everything between a change and a receiver: topic
// matching and fan-out (Publish, the one way events enter), subscriptions,
// per-account signing keys, the dispatcher (claims, signed POSTs, retries,
// circuit breaking, dead letters), delivery history, replay and the pull API.
// It owns the subscriptions, events, event_counters, deliveries, attempts and
// signing_keys tables. It knows nothing of connectors or sync.
package forwarding

import (
	"cmp"
	"crypto/rsa"
	"log/slog"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/forwarding/signing"
	"github.com/tributary/tributary/secrets"
)

// Config holds the service's dependencies and limits.
type Config struct {
	DB *gorm.DB
	// DispatchDB, when set, is the pool the dispatcher claims and records
	// on, apart from DB, so API and capture work cannot take its
	// connections (database.pool.dispatcher).
	DispatchDB *gorm.DB
	Box        *secrets.Box
	// Dispatcher limits (timeouts, workers, circuit); zero fields take the
	// defaults of config.Default().
	Dispatcher config.Dispatcher
	// AllowHTTP accepts plain http:// addresses.
	AllowHTTP bool
	// AllowPrivate lets deliveries reach loopback, private and link-local
	// addresses (development only).
	AllowPrivate bool
	Logger       *slog.Logger
	// Keys bounds signing-key rotation; zero fields take the defaults of
	// config.Default().
	Keys config.Signing
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// MaxReplayEvents bounds a webhook replay's range (MaxReplayEvents when
	// zero); tests lower it.
	MaxReplayEvents int
}

// Service is forwarding's entry point for the API, sync and the dispatcher.
type Service struct {
	db     *gorm.DB
	ddb    *gorm.DB // the dispatcher's pool
	box    *secrets.Box
	cfg    config.Dispatcher
	http   bool
	priv   bool
	log    *slog.Logger
	now    func() time.Time
	keys   *keyring
	keyCfg config.Signing
	genKey func() (*rsa.PrivateKey, error) // signing.GenerateKey; tests block it
	// afterTestPublish runs between storing a test event and sending it;
	// tests put a background dispatcher there.
	afterTestPublish func()
	maxReplay        int
	direct           *Dispatcher // for test sends made on behalf of the API
	wakeMu           sync.Mutex
	wakes            []chan struct{}
}

// New builds the service.
func New(c Config) *Service {
	d := config.Default().Dispatcher
	c.Dispatcher.Workers = cmp.Or(c.Dispatcher.Workers, d.Workers)
	c.Dispatcher.BatchSize = cmp.Or(c.Dispatcher.BatchSize, d.BatchSize)
	c.Dispatcher.Tick = cmp.Or(c.Dispatcher.Tick, d.Tick)
	c.Dispatcher.DefaultTimeout = cmp.Or(c.Dispatcher.DefaultTimeout, d.DefaultTimeout)
	c.Dispatcher.MaxTimeout = cmp.Or(c.Dispatcher.MaxTimeout, d.MaxTimeout)
	c.Dispatcher.MaxPerEndpoint = cmp.Or(c.Dispatcher.MaxPerEndpoint, d.MaxPerEndpoint)
	c.Dispatcher.CircuitThreshold = cmp.Or(c.Dispatcher.CircuitThreshold, d.CircuitThreshold)
	c.Dispatcher.CircuitCooldown = cmp.Or(c.Dispatcher.CircuitCooldown, d.CircuitCooldown)
	c.Dispatcher.MaxResponseBytes = cmp.Or(c.Dispatcher.MaxResponseBytes, d.MaxResponseBytes)
	c.Dispatcher.MaxPerAccount = cmp.Or(c.Dispatcher.MaxPerAccount, max(1, c.Dispatcher.Workers*3/4))
	ks := config.Default().Signing
	c.Keys.RotationLimit = cmp.Or(c.Keys.RotationLimit, ks.RotationLimit)
	c.Keys.RotationWindow = cmp.Or(c.Keys.RotationWindow, ks.RotationWindow)
	c.Keys.RetiredKeyGrace = cmp.Or(c.Keys.RetiredKeyGrace, ks.RetiredKeyGrace)
	s := &Service{db: c.DB, ddb: cmp.Or(c.DispatchDB, c.DB), box: c.Box, cfg: c.Dispatcher, http: c.AllowHTTP, priv: c.AllowPrivate,
		log: cmp.Or(c.Logger, slog.Default()), now: c.Now, keyCfg: c.Keys, maxReplay: cmp.Or(c.MaxReplayEvents, MaxReplayEvents)}
	if s.now == nil {
		s.now = time.Now
	}
	s.genKey = signing.GenerateKey
	s.keys = newKeyring(s)
	s.direct = s.NewDispatcher(nil)
	return s
}

// Now returns the service clock's time in UTC.
func (s *Service) Now() time.Time { return s.now().UTC() }

// Wake nudges this process's dispatchers: call it after committing a
// transaction that published events (Publish inside the caller's own
// transaction cannot).
func (s *Service) Wake() { s.wake() }

// wake nudges local dispatchers after events were queued.
func (s *Service) wake() {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	for _, ch := range s.wakes {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (s *Service) subscribeWake() chan struct{} {
	ch := make(chan struct{}, 1)
	s.wakeMu.Lock()
	s.wakes = append(s.wakes, ch)
	s.wakeMu.Unlock()
	return ch
}
