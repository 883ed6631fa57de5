package schedule

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/internal/clocktest"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage/storagetest"
	"github.com/tributary/tributary/sync/connections"
	"github.com/tributary/tributary/sync/poll"
)

// pollLog is a Runner that records when (on the injected clock) each
// connection was polled and, like a completed poll, stores last_sync_at
// fenced by the lease.
type pollLog struct {
	mu  sync.Mutex
	db  *gorm.DB
	clk *clock
	at  map[string][]time.Duration // offsets from t0
}

func (p *pollLog) Run(ctx context.Context, c *models.Connection) (poll.Result, error) {
	now := p.clk.Now()
	if err := p.db.Exec(`UPDATE connections SET last_sync_at = ? WHERE id = ? AND lease_token = ?`, now, c.ID, c.LeaseToken).Error; err != nil {
		return poll.Result{}, err
	}
	p.mu.Lock()
	p.at[c.ID] = append(p.at[c.ID], now.Sub(t0))
	p.mu.Unlock()
	return poll.Result{Status: poll.RunCompleted}, nil
}

func (p *pollLog) take(id string) []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.at[id]
	delete(p.at, id)
	return out
}

// every returns from, from+step, …, to.
func every(from, step, to time.Duration) []time.Duration {
	var out []time.Duration
	for d := from; d <= to; d += step {
		out = append(out, d)
	}
	return out
}

// TestAdminIntervalsAreApplied is the reproduction of the account
// rep's lever, read from the times the scheduler actually polls (injected
// clock, a tick every 5 s): an admin-set 1m on an account whose floor is
// 15m polls every minute (it polled every 15 min), an account default
// changed from 12h to 2m reschedules that account's other connection at
// once, and the refusals name the limit that applies.
func TestAdminIntervalsAreApplied(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		clk := clocktest.New(t0)
		log := &pollLog{db: db, clk: clk, at: map[string][]time.Duration{}}
		accts := accounts.New(db)
		acc, _, err := accts.Create(ctx, "Acme")
		require.NoError(t, err)
		twelve, floor := 12*time.Hour, 15*time.Minute
		_, err = accts.Update(ctx, acc.ID, accounts.Update{DefaultPollInterval: &twelve, MinPollInterval: &floor})
		require.NoError(t, err)
		box, err := secrets.New(make([]byte, secrets.KeySize))
		require.NoError(t, err)
		conns, err := connections.New(connections.Config{DB: db, Box: box, Apps: connectors.NewRegistry(), Publisher: nopPublisher{},
			Accounts: accts, Now: clk.Now})
		require.NoError(t, err)
		sched, err := New(Config{DB: db, Runner: log, Accounts: accts, Now: clk.Now, Jitter: -1, Tick: 5 * time.Second})
		require.NoError(t, err)
		newConn := func() string {
			c := models.Connection{ID: models.NewID(models.PrefixConnection), AccountID: acc.ID, App: "fake", UserID: "u",
				Status: models.ConnectionActive, NextSyncAt: t0, Metadata: "{}", Cursors: "{}"}
			require.NoError(t, db.Create(&c).Error)
			return c.ID
		}
		run := func(until time.Duration) {
			for clk.Now().Sub(t0) <= until {
				_, err := sched.Tick(ctx)
				require.NoError(t, err)
				clk.Add(5 * time.Second)
			}
		}
		tuned, other := newConn(), newConn()

		// Refusals name the limit that applies.
		_, err = conns.UpdatePollInterval(ctx, acc.ID, other, "5m")
		require.Equal(t, models.ErrCodeUnprocessable, models.ErrorCode(err))
		assert.Contains(t, err.Error(), "at least 15m (this account's floor, minPollInterval)")
		_, err = conns.AdminUpdatePollInterval(ctx, tuned, "30s")
		require.Equal(t, models.ErrCodeUnprocessable, models.ErrorCode(err))
		assert.Contains(t, err.Error(), "at least 1m (the deployment's minimum for admin-set intervals, scheduler.min_admin_poll_interval)")

		v, err := conns.AdminUpdatePollInterval(ctx, tuned, "1m")
		require.NoError(t, err)
		assert.Equal(t, "1m", v.PollInterval, "shown as applied")
		run(10 * time.Minute)
		assert.Equal(t, every(0, time.Minute, 10*time.Minute), log.take(tuned), "an admin 1m polls every minute")
		assert.Equal(t, []time.Duration{0}, log.take(other), "12h account default")

		// The account default drops to 2m: the other connection, last
		// polled at t0, is due at once and then every 2 minutes.
		two := 2 * time.Minute
		_, err = accts.Update(ctx, acc.ID, accounts.Update{DefaultPollInterval: &two, MinPollInterval: &two})
		require.NoError(t, err)
		moved, err := conns.RescheduleAccount(ctx, acc.ID)
		require.NoError(t, err)
		assert.Equal(t, 1, moved, "the admin-tuned connection is already due sooner")
		run(20 * time.Minute)
		assert.Equal(t, every(10*time.Minute+5*time.Second, 2*time.Minute, 20*time.Minute), log.take(other))
		assert.Equal(t, every(11*time.Minute, time.Minute, 20*time.Minute), log.take(tuned))
	})
}
