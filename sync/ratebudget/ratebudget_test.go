package ratebudget_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/internal/clocktest"
	"github.com/tributary/tributary/storage/storagetest"
	"github.com/tributary/tributary/sync/ratebudget"
)

// TestReserveSharesOneBucket: two Pacers on one database (two replicas)
// draw from the same bucket of a provider account; another account has its
// own; a slot beyond MaxWait is refused without taking it.
func TestReserveSharesOneBucket(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		clk := clocktest.New(time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC))
		a := &ratebudget.Pacer{DB: db, Now: clk.Now, MaxWait: 5 * time.Second}
		b := &ratebudget.Pacer{DB: db, Now: clk.Now, MaxWait: 5 * time.Second}
		key := ratebudget.Key("shopify", "shop-1.myshopify.com", "rest")
		var waits []time.Duration
		for i := range 6 {
			p := a
			if i%2 == 1 {
				p = b
			}
			w, err := p.Reserve(ctx, key, 2, 3) // bucket of 3, 2/s
			require.NoError(t, err)
			waits = append(waits, w)
		}
		assert.Equal(t, []time.Duration{0, 0, 0, 500 * time.Millisecond, time.Second, 1500 * time.Millisecond}, waits,
			"the burst, then one slot every 500 ms, across both replicas")

		w, err := a.Reserve(ctx, ratebudget.Key("shopify", "shop-2.myshopify.com", "rest"), 2, 3)
		require.NoError(t, err)
		assert.Zero(t, w, "another provider account has its own bucket")

		for range 7 { // up to 5 s ahead
			_, err = b.Reserve(ctx, key, 2, 3)
			require.NoError(t, err)
		}
		_, err = a.Reserve(ctx, key, 2, 3)
		var rl *connectors.RateLimitedError
		require.True(t, errors.As(err, &rl), "beyond MaxWait: %v", err)
		assert.Equal(t, 5500*time.Millisecond, rl.RetryAfter)

		clk.Add(10 * time.Second) // the bucket refills, never beyond its burst
		for range 3 {
			w, err := a.Reserve(ctx, key, 2, 3)
			require.NoError(t, err)
			assert.Zero(t, w)
		}
		w, err = a.Reserve(ctx, key, 2, 3)
		require.NoError(t, err)
		assert.Equal(t, 500*time.Millisecond, w)
	})
}

type budgeted struct{}

func (budgeted) RateBudgets() []connectors.RateBudget {
	return []connectors.RateBudget{{Name: "all", Rate: 1, Burst: 2}, {Name: "search", Rate: 0.5, Burst: 1}}
}

func (budgeted) BudgetsOf(r *http.Request) []string {
	if r.URL.Path == "/search" {
		return []string{"all", "search"}
	}
	return []string{"all"}
}

// TestTransportWaitsForTheLatestBudget paces requests over a real socket:
// each waits for the latest slot of the budgets it draws from.
func TestTransportWaitsForTheLatestBudget(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		clk := clocktest.New(time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC))
		var slept []time.Duration
		p := &ratebudget.Pacer{DB: db, Now: clk.Now, Sleep: func(_ context.Context, d time.Duration) error {
			slept = append(slept, d)
			return nil
		}}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		t.Cleanup(srv.Close)
		hc := &http.Client{Transport: p.Wrap(budgeted{}, "app", "acct", nil)}
		for _, path := range []string{"/search", "/search", "/other"} {
			resp, err := hc.Get(srv.URL + path)
			require.NoError(t, err)
			resp.Body.Close()
		}
		assert.Equal(t, []time.Duration{2 * time.Second, time.Second}, slept,
			"the first goes at once; the second search waits for the search bucket (0.5/s); then the shared bucket is 1 s ahead")
	})
}
