package forwarding_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// hanging is a receiver whose requests block until release is closed (at
// the latest when their request is cancelled); arrived receives one value per request.
func hanging(t *testing.T, arrived chan<- struct{}, release chan struct{}) *receiver {
	rc := newReceiver(t)
	rc.setRespond(func(_ int, w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(500)
	})
	return rc
}

// TestSlowTenantDoesNotDelayOthers gives account B many endpoints that hang
// and a backlog older than account A's event: A's delivery still goes out
// at once, because B may hold only part of the workers.
func TestSlowTenantDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db, func(c *forwarding.Config) {
			c.Dispatcher.Workers = 8
			c.Dispatcher.BatchSize = 8
			c.Dispatcher.Tick = 20 * time.Millisecond
		})
		arrived, release := make(chan struct{}, 100), make(chan struct{})
		for i := range 10 {
			rc := hanging(t, arrived, release)
			b.subscribe(t, "acc_b", rc.URL+"/"+strconv.Itoa(i), []string{"*"})
		}
		t.Cleanup(func() { close(release) }) // before the servers close
		for i := range 3 {
			b.publish(t, "acc_b", contactEvent("b"+strconv.Itoa(i)))
		}
		fast := newReceiver(t)
		b.subscribe(t, "acc_a", fast.URL, []string{"*"})

		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.disp.Run(ctx) }()
		b.disp.Grace = 0 // hanging requests are abandoned at the end
		for range 6 {    // B fills its share: 3/4 of the workers
			<-arrived
		}
		b.publish(t, "acc_a", contactEvent("a"))
		start := time.Now()
		require.Eventually(t, func() bool {
			return len(b.deliveries(t, "account_id = ? AND status = ?", "acc_a", models.DeliverySucceeded)) == 1
		}, 5*time.Second, 2*time.Millisecond, "account A is not held behind account B's hanging endpoints")
		t.Logf("A delivered %s after publish while B hangs", time.Since(start))
		require.Len(t, fast.requests(), 1)
		stop()
		require.NoError(t, <-done)
	})
}

// TestSaturatedEndpointIsReleasedAndCappedPerOrigin points two webhooks at
// one origin with different query strings and a cap of one request per
// endpoint: the second delivery is never sent beside the first, and is put
// back (no attempt counted) instead of holding a worker for the whole request.
func TestSaturatedEndpointIsReleasedAndCappedPerOrigin(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db, func(c *forwarding.Config) { c.Dispatcher.MaxPerEndpoint = 1 })
		reg := prometheus.NewRegistry()
		b.disp = b.svc.NewDispatcher(reg)
		arrived, release := make(chan struct{}, 10), make(chan struct{})
		rc := hanging(t, arrived, release)
		t.Cleanup(func() { close(release) })
		b.subscribe(t, "acc_a", rc.URL+"/hook?tenant=1", []string{"*"})
		b.subscribe(t, "acc_a", rc.URL+"/hook?tenant=2", []string{"*"})
		b.publish(t, "acc_a", contactEvent("1"))

		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.disp.Run(ctx) }()
		b.disp.Grace = 0 // the hanging request is abandoned at the end
		<-arrived
		require.Eventually(t, func() bool {
			return counterValue(t, reg, "tributary_delivery_endpoint_saturated_total", nil) >= 2
		}, 10*time.Second, 5*time.Millisecond, "the second delivery is put back, again and again, not held")
		stop()
		require.NoError(t, <-done)
		require.Len(t, rc.requests(), 1, "one request at a time to the origin, whatever the query string")
		for _, d := range b.deliveries(t, "") {
			require.Zero(t, d.Attempts, "a release is not an attempt")
		}
	})
}

func TestWebhooksPerAccountAreCapped(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db, func(c *forwarding.Config) { c.Dispatcher.MaxWebhooksPerAccount = 3 })
		ctx := context.Background()
		addr, topics := "https://hooks.example.com/", []string{"*"}
		create := func(account string) error {
			_, err := b.svc.CreateSubscription(ctx, account, forwarding.SubscriptionInput{Address: &addr, Topic: &topics})
			return err
		}
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		for range 6 { // concurrent creations cannot pass the cap together
			wg.Go(func() { errs <- create("acc_a") })
		}
		wg.Wait()
		close(errs)
		var refused int
		for err := range errs {
			if err != nil {
				require.Equal(t, models.ErrCodeConflict, models.ErrorCode(err), "%v", err)
				require.Contains(t, err.Error(), "max_webhooks_per_account")
				refused++
			}
		}
		require.Equal(t, 3, refused)
		var n int64
		require.NoError(t, db.Model(&models.Subscription{}).Where("account_id = ?", "acc_a").Count(&n).Error)
		require.EqualValues(t, 3, n)
		require.NoError(t, create("acc_b"), "another account has its own cap")
	})
}
