package schedule

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tributary/tributary/internal/clocktest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
	"github.com/tributary/tributary/sync/poll"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

type clock = clocktest.Clock

// fakeRunner records the connections it was given and answers scripted
// results; during a run it checks the row is leased to it.
type fakeRunner struct {
	mu      sync.Mutex
	db      *gorm.DB
	t       *testing.T
	ran     []string
	results map[string]poll.Result
	during  func(c *models.Connection)
}

func (f *fakeRunner) Run(ctx context.Context, c *models.Connection) (poll.Result, error) {
	var row models.Connection
	if err := f.db.First(&row, "id = ?", c.ID).Error; err == nil {
		assert.Equal(f.t, models.ConnectionSyncing, row.Status)
		assert.Equal(f.t, c.LeaseToken, row.LeaseToken)
		assert.NotEmpty(f.t, c.LeaseToken)
	}
	if f.during != nil {
		f.during(c)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ran = append(f.ran, c.ID)
	if r, ok := f.results[c.ID]; ok {
		return r, nil
	}
	return poll.Result{Status: poll.RunCompleted}, nil
}

func (f *fakeRunner) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.ran
	f.ran = nil
	return out
}

type bundle struct {
	db     *gorm.DB
	clk    *clock
	runner *fakeRunner
	sched  *Scheduler
	accID  string
}

func setup(t *testing.T, db *gorm.DB, mod func(*Config)) *bundle {
	t.Helper()
	b := &bundle{db: db, clk: clocktest.New(t0)}
	b.runner = &fakeRunner{db: db, t: t, results: map[string]poll.Result{}}
	acc, _, err := accounts.New(db).Create(context.Background(), "Acme")
	require.NoError(t, err)
	b.accID = acc.ID
	cfg := Config{DB: db, Runner: b.runner, Accounts: accounts.New(db), Now: b.clk.Now, Jitter: -1, Concurrency: 10}
	if mod != nil {
		mod(&cfg)
	}
	b.sched, err = New(cfg)
	require.NoError(t, err)
	return b
}

func (b *bundle) conn(t *testing.T, status string, next time.Time, mod func(*models.Connection)) string {
	t.Helper()
	c := models.Connection{ID: models.NewID(models.PrefixConnection), AccountID: b.accID, App: "fake", UserID: "u",
		Status: status, NextSyncAt: next, Metadata: "{}", Cursors: "{}"}
	if status == models.ConnectionSyncing {
		c.LeaseToken = "old-lease"
	}
	if mod != nil {
		mod(&c)
	}
	require.NoError(t, b.db.Create(&c).Error)
	return c.ID
}

func (b *bundle) get(t *testing.T, id string) models.Connection {
	t.Helper()
	var c models.Connection
	require.NoError(t, b.db.First(&c, "id = ?", id).Error)
	return c
}

func (b *bundle) tick(t *testing.T) int {
	t.Helper()
	n, err := b.sched.Tick(context.Background())
	require.NoError(t, err)
	return n
}

func TestClaimsOnlyDueConnections(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db, nil)
		active := b.conn(t, models.ConnectionActive, t0.Add(-time.Minute), nil)
		failed := b.conn(t, models.ConnectionError, t0.Add(-2*time.Minute), nil)
		b.conn(t, models.ConnectionActive, t0.Add(time.Minute), nil)              // not due
		b.conn(t, models.ConnectionNeedsReauth, t0.Add(-time.Hour), nil)          // never claimed
		b.conn(t, models.ConnectionSyncing, t0.Add(10*time.Minute), nil)          // lease running
		crashed := b.conn(t, models.ConnectionSyncing, t0.Add(-time.Second), nil) // lease expired
		exact := b.conn(t, models.ConnectionActive, t0, nil)                      // due now

		assert.Equal(t, 4, b.tick(t))
		assert.ElementsMatch(t, []string{failed, active, crashed, exact}, b.runner.take())
		for _, id := range []string{active, failed, crashed, exact} {
			c := b.get(t, id)
			assert.Equal(t, models.ConnectionActive, c.Status)
			assert.Empty(t, c.LeaseToken)
			assert.Empty(t, c.LastError)
			assert.True(t, c.NextSyncAt.Equal(t0.Add(DefaultInterval)), "%s next %s", id, c.NextSyncAt)
		}
		assert.Zero(t, b.tick(t), "nothing due any more")
		assert.Empty(t, b.runner.take())
	})
}

func TestConcurrencyBound(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db, func(c *Config) { c.Concurrency = 2 })
		var ids []string
		for i := range 5 {
			ids = append(ids, b.conn(t, models.ConnectionActive, t0.Add(-time.Duration(5-i)*time.Minute), nil))
		}
		assert.Equal(t, 2, b.tick(t))
		assert.ElementsMatch(t, ids[:2], b.runner.take(), "the longest overdue first")
		assert.Equal(t, 2, b.tick(t))
		assert.ElementsMatch(t, ids[2:4], b.runner.take())
		assert.Equal(t, 1, b.tick(t))
	})
}

func TestNextPollInterval(t *testing.T) {
	cases := []struct {
		name           string
		connInterval   time.Duration
		accountDefault time.Duration
		accountMin     time.Duration
		want           time.Duration
	}{
		{"deployment default", 0, 0, 0, 12 * time.Hour},
		{"account default", 0, 6 * time.Hour, 0, 6 * time.Hour},
		{"connection override", time.Hour, 6 * time.Hour, 0, time.Hour},
		{"account floor", 10 * time.Minute, 0, 30 * time.Minute, 30 * time.Minute},
		{"deployment floor", time.Minute, 0, 0, 5 * time.Minute},
	}
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				b := setup(t, db, func(c *Config) { c.MinInterval = 5 * time.Minute })
				require.NoError(t, db.Model(&models.Account{}).Where("id = ?", b.accID).Updates(map[string]any{
					"default_poll_interval": tc.accountDefault, "min_poll_interval": tc.accountMin}).Error)
				id := b.conn(t, models.ConnectionActive, t0, func(c *models.Connection) { c.PollInterval = tc.connInterval })
				assert.Equal(t, 1, b.tick(t))
				assert.True(t, b.get(t, id).NextSyncAt.Equal(t0.Add(tc.want)), "next %s", b.get(t, id).NextSyncAt)
			})
		}
	})
}

func TestJitterSpreadsNextPoll(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		for _, r := range []struct {
			rand float64
			want time.Duration
		}{{0, 108 * time.Minute}, {0.5, 2 * time.Hour}, {0.75, 126 * time.Minute}} {
			b := setup(t, db, func(c *Config) { c.Jitter = 0.1; c.Rand = func() float64 { return r.rand } })
			id := b.conn(t, models.ConnectionActive, t0, func(c *models.Connection) { c.PollInterval = 2 * time.Hour })
			assert.Equal(t, 1, b.tick(t))
			assert.Equal(t, r.want, b.get(t, id).NextSyncAt.Sub(t0))
		}
	})
}

func TestSyncNow(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db, nil)
		id := b.conn(t, models.ConnectionActive, t0, nil)
		assert.Equal(t, 1, b.tick(t))
		b.clk.Add(time.Minute)
		assert.Zero(t, b.tick(t))
		// "Sync now" (contract: NextSyncAt = now) makes it due at the next tick.
		require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", id).Update("next_sync_at", b.clk.Now()).Error)
		assert.Equal(t, 1, b.tick(t))
		assert.Equal(t, []string{id, id}, b.runner.take())
	})
}

func TestRunOutcomes(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db, nil)
		deferred := b.conn(t, models.ConnectionActive, t0, nil)
		failed := b.conn(t, models.ConnectionActive, t0, nil)
		reauth := b.conn(t, models.ConnectionActive, t0, nil)
		b.runner.results[deferred] = poll.Result{Status: poll.RunDeferred, RetryAfter: 90 * time.Second, Error: "rate limited"}
		b.runner.results[failed] = poll.Result{Status: poll.RunFailed, Error: "malformed page"}
		b.runner.results[reauth] = poll.Result{Status: poll.RunFailed, Error: "unauthorized", NeedsReauth: true}
		assert.Equal(t, 3, b.tick(t))

		c := b.get(t, deferred)
		assert.Equal(t, models.ConnectionActive, c.Status)
		assert.Equal(t, "rate limited", c.LastError)
		assert.True(t, c.NextSyncAt.Equal(t0.Add(90*time.Second)))

		c = b.get(t, failed)
		assert.Equal(t, models.ConnectionError, c.Status)
		assert.Equal(t, "malformed page", c.LastError)
		assert.True(t, c.NextSyncAt.Equal(t0.Add(DefaultFailureRetry)))

		c = b.get(t, reauth)
		assert.Equal(t, models.ConnectionNeedsReauth, c.Status)

		// The deferred one resumes after its Retry-After, the failed one after
		// the failure retry; the needs_reauth one never.
		b.runner.take()
		delete(b.runner.results, deferred)
		delete(b.runner.results, failed)
		b.clk.Add(2 * time.Minute)
		assert.Equal(t, 1, b.tick(t))
		b.clk.Add(DefaultFailureRetry)
		assert.Equal(t, 1, b.tick(t))
		assert.Equal(t, []string{deferred, failed}, b.runner.take())
		b.clk.Add(48 * time.Hour)
		assert.Equal(t, 2, b.tick(t))
		assert.NotContains(t, b.runner.take(), reauth)
	})
}

func TestFinishIsFencedByLease(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db, nil)
		id := b.conn(t, models.ConnectionActive, t0, nil)
		// While the run is going its lease expires and another replica retakes it.
		b.runner.during = func(c *models.Connection) {
			require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", c.ID).Updates(map[string]any{
				"lease_token": "other-replica", "next_sync_at": t0.Add(time.Hour)}).Error)
		}
		assert.Equal(t, 1, b.tick(t))
		c := b.get(t, id)
		assert.Equal(t, "other-replica", c.LeaseToken, "a stale run does not end another's lease")
		assert.Equal(t, models.ConnectionSyncing, c.Status)
		assert.True(t, c.NextSyncAt.Equal(t0.Add(time.Hour)))

		// A connection deleted during its run stays deleted.
		b.clk.Add(2 * time.Hour)
		b.runner.during = func(c *models.Connection) {
			require.NoError(t, db.Delete(&models.Connection{}, "id = ?", c.ID).Error)
		}
		assert.Equal(t, 1, b.tick(t))
		var n int64
		require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", id).Count(&n).Error)
		assert.Zero(t, n)
	})
}

func TestNewValidates(t *testing.T) {
	_, err := New(Config{})
	require.Error(t, err)
}
