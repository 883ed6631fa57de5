// Package schedule decides when connections are polled. Each connection's
// next poll time lives in the database (models.Connection.NextSyncAt); a
// gocron job on every replica ticks, claims the due connections with FOR
// UPDATE SKIP LOCKED on PostgreSQL, and runs them with a bounded number of
// concurrent polls. A claim is a lease: it sets a random LeaseToken, status
// syncing and NextSyncAt = now + Lease, so a crashed poll becomes due again
// when the lease expires, and every write of the run (package poll) and of
// its finish is fenced by the token. Two replicas therefore never poll one
// connection at once.
//
// The package also runs the maintenance job (retention of processed inbox
// items and abandoned connect sessions) under a distributed lock, so it runs
// on one replica at a time. It never lists changes or writes snapshots
// itself; that is package poll.
package schedule

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"
	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/sync/poll"
	"github.com/tributary/tributary/sync/pollinterval"
)

// Runner polls one claimed connection (*poll.Runner).
type Runner interface {
	Run(ctx context.Context, conn *models.Connection) (poll.Result, error)
}

// Accounts reads an account's poll settings (*accounts.Service).
type Accounts interface {
	Get(ctx context.Context, id string) (*models.Account, error)
}

// Defaults of Config.
const (
	DefaultTick             = 5 * time.Second
	DefaultLease            = 5 * time.Minute
	DefaultConcurrency      = 4
	DefaultRunTimeout       = 4 * time.Hour
	DefaultInterval         = 12 * time.Hour
	DefaultJitter           = 0.1
	DefaultFailureRetry     = 30 * time.Minute
	DefaultMaintenanceEvery = time.Hour
	DefaultInboxRetention   = 7 * 24 * time.Hour
	DefaultSessionRetention = 24 * time.Hour
)

// Config configures a Scheduler. DB and Runner are required; every other
// field has a default.
type Config struct {
	DB     *gorm.DB
	Runner Runner
	// Accounts gives the account default poll interval and floor; nil means
	// every connection without an override uses DefaultInterval.
	Accounts Accounts
	// Tick is how often the gocron job looks for due connections (5s).
	Tick time.Duration
	// Lease is how long a claim lasts before another replica may retake the
	// connection (5m); a running poll renews it every Lease/3.
	Lease time.Duration
	// RunTimeout bounds one poll (4h); a poll cut short is deferred and
	// resumes from its last stored page at once.
	RunTimeout time.Duration
	// Concurrency bounds the polls running at once in this process (4).
	Concurrency int
	// DefaultInterval is the deployment's poll interval (12h).
	DefaultInterval time.Duration
	// MinInterval is the deployment floor of ISV-set intervals when the
	// account has none (pollinterval.DefaultFloor when 0).
	MinInterval time.Duration
	// AdminMinInterval is the smallest interval an admin-set one is applied
	// at (pollinterval.DefaultAdminMin when 0).
	AdminMinInterval time.Duration
	// Jitter spreads next poll times by ±Jitter×interval (0.1); negative
	// disables it.
	Jitter float64
	// FailureRetry caps the wait after a failed poll (30m).
	FailureRetry time.Duration
	// MaintenanceEvery is the maintenance job's period (1h).
	MaintenanceEvery time.Duration
	// InboxRetention keeps processed inbox items (7 days).
	InboxRetention time.Duration
	// SessionRetention keeps expired, unused connect sessions (1 day).
	SessionRetention time.Duration
	// RunRetention keeps sync_runs rows (0: forever); serve passes the
	// delivery-history retention.
	RunRetention time.Duration
	// Observe, when set, is told each finished poll's status and duration
	// (NewPollMetrics gives one that feeds Prometheus).
	Observe func(status string, took time.Duration)
	// Maintenance are further retention tasks run by the maintenance job
	// after its own sweeps (forwarding's delivery-history pruning).
	Maintenance []func(ctx context.Context, now time.Time) error
	// Locker guards the maintenance job across replicas (NewLocker(DB)).
	Locker gocron.Locker
	// Now is the clock of every decision the scheduler stores (time.Now);
	// gocron's own ticking uses the real clock.
	Now func() time.Time
	// Rand returns a float in [0,1) for jitter (math/rand/v2).
	Rand   func() float64
	Logger *slog.Logger
}

// Scheduler claims due connections and runs their polls.
type Scheduler struct {
	cfg    Config
	policy pollinterval.Policy
	slots  chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	cron   gocron.Scheduler
	cancel context.CancelFunc
}

// New validates cfg, fills its defaults and returns a stopped Scheduler.
func New(cfg Config) (*Scheduler, error) {
	if cfg.DB == nil || cfg.Runner == nil {
		return nil, errors.New("schedule: DB and Runner are required")
	}
	cfg.Tick = cmp.Or(cfg.Tick, DefaultTick)
	cfg.Lease = cmp.Or(cfg.Lease, DefaultLease)
	cfg.Concurrency = cmp.Or(cfg.Concurrency, DefaultConcurrency)
	cfg.RunTimeout = cmp.Or(cfg.RunTimeout, DefaultRunTimeout)
	cfg.DefaultInterval = cmp.Or(cfg.DefaultInterval, DefaultInterval)
	cfg.Jitter = cmp.Or(cfg.Jitter, DefaultJitter)
	cfg.FailureRetry = cmp.Or(cfg.FailureRetry, DefaultFailureRetry)
	cfg.MaintenanceEvery = cmp.Or(cfg.MaintenanceEvery, DefaultMaintenanceEvery)
	cfg.InboxRetention = cmp.Or(cfg.InboxRetention, DefaultInboxRetention)
	cfg.SessionRetention = cmp.Or(cfg.SessionRetention, DefaultSessionRetention)
	if cfg.Locker == nil {
		cfg.Locker = NewLocker(cfg.DB)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = mrand.Float64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Concurrency < 0 || cfg.Tick < 0 || cfg.Lease < 0 || cfg.DefaultInterval < 0 {
		return nil, errors.New("schedule: negative tick, lease, interval or concurrency")
	}
	return &Scheduler{cfg: cfg, slots: make(chan struct{}, cfg.Concurrency),
		policy: pollinterval.Policy{Default: cfg.DefaultInterval, Floor: cfg.MinInterval, AdminMin: cfg.AdminMinInterval}}, nil
}

func (s *Scheduler) now() time.Time { return s.cfg.Now().UTC() }

// Start runs the poll tick and the maintenance job on gocron until Stop. The
// polls it starts run under a context derived from ctx: cancelling ctx stops
// claiming and cancels them too (Stop still waits for them).
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cron != nil {
		return errors.New("schedule: already started")
	}
	runCtx, cancel := context.WithCancel(ctx)
	cron, err := gocron.NewScheduler(gocron.WithDistributedLocker(s.cfg.Locker))
	if err != nil {
		cancel()
		return fmt.Errorf("schedule: %w", err)
	}
	_, err = cron.NewJob(gocron.DurationJob(s.cfg.Tick),
		gocron.NewTask(func() { s.startDue(runCtx) }),
		gocron.WithName("tributary-poll-tick"),
		gocron.WithDisabledDistributedJobLocker(true), // each replica claims its own share
		gocron.WithSingletonMode(gocron.LimitModeReschedule),
		gocron.WithStartAt(gocron.WithStartImmediately()))
	if err == nil {
		_, err = cron.NewJob(gocron.DurationJob(s.cfg.MaintenanceEvery),
			gocron.NewTask(func(ctx context.Context) {
				if _, err := s.Maintain(ctx); err != nil {
					s.cfg.Logger.Error("schedule: maintenance", "err", err)
				}
			}),
			gocron.WithName("tributary-maintenance"),
			gocron.WithSingletonMode(gocron.LimitModeReschedule))
	}
	if err != nil {
		cancel()
		_ = cron.Shutdown()
		return fmt.Errorf("schedule: %w", err)
	}
	cron.Start()
	s.cron, s.cancel = cron, cancel
	return nil
}

// Stop stops ticking, cancels the running polls (they end deferred and are
// due again at once) and waits for them until ctx is done.
func (s *Scheduler) Stop(ctx context.Context) error {
	s.mu.Lock()
	cron, cancel := s.cron, s.cancel
	s.cron, s.cancel = nil, nil
	s.mu.Unlock()
	var err error
	if cron != nil {
		err = cron.Shutdown()
		cancel()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Tick claims due connections (up to the free concurrency slots), runs
// their polls concurrently and waits for them. It returns how many it claimed.
func (s *Scheduler) Tick(ctx context.Context) (int, error) {
	n, err := s.startDue(ctx)
	s.wg.Wait()
	return n, err
}

// startDue claims and starts as many due connections as there are free
// slots, without waiting for the polls.
func (s *Scheduler) startDue(ctx context.Context) (int, error) {
	if ctx.Err() != nil {
		return 0, nil // shutting down
	}
	free := 0
acquire:
	for free < s.cfg.Concurrency {
		select {
		case s.slots <- struct{}{}:
			free++
		default:
			break acquire
		}
	}
	release := func(n int) {
		for range n {
			<-s.slots
		}
	}
	if free == 0 {
		return 0, nil
	}
	conns, err := s.claim(ctx, free)
	release(free - len(conns))
	if err != nil {
		s.cfg.Logger.Error("schedule: claim", "err", err)
		return 0, err
	}
	for i := range conns {
		c := &conns[i]
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer release(1)
			s.run(ctx, c)
		}()
	}
	return len(conns), nil
}

// claim leases up to n due connections in one transaction: active, error,
// or syncing with an expired lease (its NextSyncAt is the lease's end), due
// first; needs_reauth connections are never claimed.
func (s *Scheduler) claim(ctx context.Context, n int) ([]models.Connection, error) {
	now := s.now()
	var rows []models.Connection
	err := s.cfg.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		rows = nil
		q := tx.Where("status IN ? AND next_sync_at <= ?",
			[]string{models.ConnectionActive, models.ConnectionError, models.ConnectionSyncing}, now).
			Order("next_sync_at, id").Limit(n)
		if err := storage.SkipLocked(q).Find(&rows).Error; err != nil {
			return fmt.Errorf("find due connections: %w", err)
		}
		for i := range rows {
			c := &rows[i]
			c.LeaseToken, c.Status, c.NextSyncAt = newToken(), models.ConnectionSyncing, now.Add(s.cfg.Lease)
			err := tx.Exec(`UPDATE connections SET status = ?, lease_token = ?, next_sync_at = ?, updated_at = ? WHERE id = ?`,
				c.Status, c.LeaseToken, c.NextSyncAt, now, c.ID).Error
			if err != nil {
				return fmt.Errorf("lease connection %s: %w", c.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

func newToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
