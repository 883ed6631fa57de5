package forwarding_test

// Regression tests of issue 11: no row, deleted webhook or hostile endpoint
// may stop the dispatcher from recording results.

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage/storagetest"
)

// attemptsOf returns the attempt log of one delivery.
func (b *bundle) attemptsOf(t testing.TB, deliveryID string) []models.Attempt {
	var out []models.Attempt
	require.NoError(t, b.db.Where("delivery_id = ?", deliveryID).Order("number").Find(&out).Error)
	return out
}

func TestHostileResponseBodiesAreRecorded(t *testing.T) {
	t.Parallel()
	// A 2-byte rune straddles the 8192-byte column limit.
	straddle := strings.Repeat("x", 8191) + "é" + strings.Repeat("y", 2000)
	invalid := append(bytes.Repeat([]byte("ab\xff\xfe\x00"), 3000), "\xe2\x82"...)
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"10KB", []byte(straddle)},
		{"1MB", bytes.Repeat([]byte("0123456789abcdef"), 1<<16)},
		{"invalid UTF-8 and NUL", invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
				b := setup(t, db, func(c *forwarding.Config) { c.Dispatcher.MaxResponseBytes = 2 << 20 })
				bad, good := newReceiver(t), newReceiver(t)
				bad.setRespond(func(_ int, w http.ResponseWriter, _ *http.Request) {
					w.WriteHeader(500)
					_, _ = w.Write(tc.body)
				})
				badSub := b.subscribe(t, "acc_a", bad.URL, []string{"*"})
				goodSub := b.subscribe(t, "acc_a", good.URL, []string{"*"})
				b.publish(t, "acc_a", contactEvent("1"))

				n, err := b.disp.DispatchDue(context.Background())
				require.NoError(t, err, "one endpoint's body never fails the batch")
				require.Equal(t, 2, n)

				d := b.deliveries(t, "subscription_id = ?", badSub.ID)[0]
				require.Equal(t, models.DeliveryFailed, d.Status)
				require.Equal(t, 500, d.LastStatusCode)
				att := b.attemptsOf(t, d.ID)
				require.Len(t, att, 1)
				body := att[0].ResponseBody
				require.NotEmpty(t, body)
				require.LessOrEqual(t, len(body), models.AttemptResponseBodySize, "fits the column")
				require.True(t, utf8.ValidString(body), "valid UTF-8")
				require.NotContains(t, body, "\x00")

				require.Equal(t, models.DeliverySucceeded, b.deliveries(t, "subscription_id = ?", goodSub.ID)[0].Status)
			})
		})
	}
}

// TestWebhookDeletedMidFlight deletes a webhook while its failing delivery
// is in flight: the result is dropped quietly and the dispatcher keeps
// recording everyone else's deliveries.
func TestWebhookDeletedMidFlight(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		arrived, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		doomed := newReceiver(t)
		doomed.setRespond(func(_ int, w http.ResponseWriter, _ *http.Request) {
			once.Do(func() { close(arrived) })
			<-release
			w.WriteHeader(500)
		})
		other := newReceiver(t)
		sub := b.subscribe(t, "acc_a", doomed.URL, []string{"*"})
		otherSub := b.subscribe(t, "acc_b", other.URL, []string{"*"})
		b.publish(t, "acc_a", contactEvent("1"))
		b.publish(t, "acc_b", contactEvent("2"))

		done := make(chan error, 1)
		go func() { _, err := b.disp.DispatchDue(ctx); done <- err }()
		<-arrived
		require.NoError(t, b.svc.DeleteSubscription(ctx, "acc_a", sub.ID))
		close(release)
		require.NoError(t, <-done, "a deleted webhook never fails the flush")
		require.Equal(t, models.DeliverySucceeded, b.deliveries(t, "subscription_id = ?", otherSub.ID)[0].Status)

		// The long-running loop keeps recording after such a result too.
		runCtx, stop := context.WithCancel(ctx)
		defer stop()
		second := b.subscribe(t, "acc_a", doomed.URL+"/2", []string{"*"})
		ranDone := make(chan error, 1)
		go func() { ranDone <- b.disp.Run(runCtx) }()
		arrived2 := make(chan struct{})
		var once2 sync.Once
		release2 := make(chan struct{})
		doomed.setRespond(func(_ int, w http.ResponseWriter, _ *http.Request) {
			once2.Do(func() { close(arrived2) })
			<-release2
			w.WriteHeader(500)
		})
		b.publish(t, "acc_a", contactEvent("3"))
		<-arrived2
		require.NoError(t, b.svc.DeleteSubscription(ctx, "acc_a", second.ID))
		close(release2)
		b.publish(t, "acc_b", contactEvent("4"))
		require.Eventually(t, func() bool {
			return len(b.deliveries(t, "subscription_id = ? AND status = ?", otherSub.ID, models.DeliverySucceeded)) == 2
		}, 10*time.Second, 5*time.Millisecond, "deliveries after the deleted webhook's result are recorded")
		stop()
		require.NoError(t, <-ranDone)
	})
}

// TestRowTheDatabaseRefusesIsRecordedAsDead poisons one attempt row so the
// database refuses it: the rest of the batch is recorded, and the poisoned
// delivery ends dead with the reason visible, instead of being retried forever.
func TestRowTheDatabaseRefusesIsRecordedAsDead(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		rc := newReceiver(t)
		rc.setRespond(func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
		poisoned := b.subscribe(t, "acc_a", rc.URL+"/poison", []string{"*"})
		healthy := b.subscribe(t, "acc_a", rc.URL+"/ok", []string{"*"})
		require.NoError(t, db.Callback().Create().Before("gorm:create").Register("test:poison", func(tx *gorm.DB) {
			if tx.Statement.Table != "attempts" {
				return
			}
			check := func(a models.Attempt) {
				if a.SubscriptionID == poisoned.ID {
					_ = tx.AddError(&pgconn.PgError{Severity: "ERROR", Code: "22021", Message: "test: row refused"})
				}
			}
			switch v := tx.Statement.Dest.(type) {
			case []models.Attempt:
				for _, a := range v {
					check(a)
				}
			case *[]models.Attempt:
				for _, a := range *v {
					check(a)
				}
			case *models.Attempt:
				check(*v)
			}
		}))
		b.publish(t, "acc_a", contactEvent("1"), contactEvent("2"))
		n, err := b.disp.DispatchDue(context.Background())
		require.NoError(t, err)
		require.Equal(t, 4, n)

		for _, d := range b.deliveries(t, "subscription_id = ?", healthy.ID) {
			require.Equal(t, models.DeliveryFailed, d.Status)
			require.Len(t, b.attemptsOf(t, d.ID), 1)
		}
		for _, d := range b.deliveries(t, "subscription_id = ?", poisoned.ID) {
			require.Equal(t, models.DeliveryDead, d.Status, "never retried forever")
			require.Contains(t, d.LastError, "test: row refused")
			require.Equal(t, 1, d.Attempts)
			require.Empty(t, d.LeaseToken)
		}
		b.drain(t) // nothing left due, nothing wedged
	})
}

// counterValue reads one series of a counter from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestLocalErrorsAreNotChargedToTheEndpoint runs a replica with the wrong
// master key: it cannot open the account's signing key nor the webhook's
// secret. Nothing is sent, no retry is consumed, the endpoint's health is
// untouched, the errors are counted; and one undecryptable secret does not
// abort the claim of other subscriptions' deliveries.
func TestLocalErrorsAreNotChargedToTheEndpoint(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db, func(c *forwarding.Config) { c.Dispatcher.CircuitThreshold = 3 })
		ctx := context.Background()
		rc := newReceiver(t)
		rsaSub := b.subscribe(t, "acc_a", rc.URL+"/rsa", []string{"*"})
		hmacSub := b.subscribe(t, "acc_a", rc.URL+"/hmac", []string{"*"}, func(in *forwarding.SubscriptionInput) {
			in.Signing = &forwarding.SigningInput{Scheme: "hmac", Secret: "0123456789abcdef0123"}
		})
		_, err := b.svc.RotateSigningKey(ctx, "acc_a") // the account's key, sealed with the right key
		require.NoError(t, err)

		wrongKey, err := secrets.New(bytes.Repeat([]byte{7}, 32))
		require.NoError(t, err)
		wrong := setup(t, db, func(c *forwarding.Config) { c.Box = wrongKey; c.Now = b.clock.Now; c.Dispatcher.CircuitThreshold = 3 })
		reg := prometheus.NewRegistry()
		wrong.disp = wrong.svc.NewDispatcher(reg)

		for i := range 5 {
			b.clock.Add(11 * time.Minute) // past any local-error backoff
			b.publish(t, "acc_a", contactEvent(strconv.Itoa(i)))
			n, err := wrong.disp.DispatchDue(ctx)
			require.NoError(t, err, "a local error never fails the claim")
			require.Equal(t, 2*(i+1), n, "every queued delivery is claimed again")
		}
		require.Empty(t, rc.requests(), "nothing was sent")
		var attempts int64
		require.NoError(t, db.Model(&models.Attempt{}).Count(&attempts).Error)
		require.Zero(t, attempts, "no attempt is logged against the endpoint")
		for _, d := range b.deliveries(t, "") {
			require.Equal(t, models.DeliveryPending, d.Status)
			require.Zero(t, d.Attempts)
			require.Zero(t, d.Retries, "no retry consumed")
			require.Contains(t, d.LastError, "local error")
			require.Empty(t, d.LeaseToken)
		}
		for _, id := range []string{rsaSub.ID, hmacSub.ID} {
			var row models.Subscription
			require.NoError(t, db.Take(&row, "id = ?", id).Error)
			require.Zero(t, row.ConsecutiveFailures)
			require.Nil(t, row.CircuitOpenUntil)
			require.Nil(t, row.FailingSince)
			require.True(t, row.Active)
		}
		require.Positive(t, counterValue(t, reg, "tributary_delivery_local_errors_total", map[string]string{"stage": forwarding.StageSigningKey}))
		require.Positive(t, counterValue(t, reg, "tributary_delivery_local_errors_total", map[string]string{"stage": forwarding.StageSecret}))

		// Backoff: a delivery that just failed locally is not due again at once.
		n, err := wrong.disp.DispatchDue(ctx)
		require.NoError(t, err)
		require.Zero(t, n)

		// The replica with the right key delivers everything.
		b.clock.Add(11 * time.Minute)
		b.drain(t)
		require.Len(t, b.deliveries(t, "status = ?", models.DeliverySucceeded), 10)
		require.Len(t, rc.requests(), 10)
	})
}

// TestOneUndecryptableSecretFailsOnlyItsJobs corrupts one webhook's sealed
// secret: its deliveries get the local-error outcome, the rest of the same
// claim is delivered.
func TestOneUndecryptableSecretFailsOnlyItsJobs(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		rc := newReceiver(t)
		hm := func(in *forwarding.SubscriptionInput) {
			in.Signing = &forwarding.SigningInput{Scheme: "standard"}
		}
		broken := b.subscribe(t, "acc_a", rc.URL+"/broken", []string{"*"}, hm)
		fine := b.subscribe(t, "acc_a", rc.URL+"/fine", []string{"*"}, hm)
		require.NoError(t, db.Model(&models.Subscription{}).Where("id = ?", broken.ID).
			Update("secret_enc", bytes.Repeat([]byte{1}, 60)).Error)
		b.publish(t, "acc_a", contactEvent("1"), contactEvent("2"))
		n, err := b.disp.DispatchDue(context.Background())
		require.NoError(t, err)
		require.Equal(t, 4, n)
		require.Len(t, b.deliveries(t, "subscription_id = ? AND status = ?", fine.ID, models.DeliverySucceeded), 2)
		for _, d := range b.deliveries(t, "subscription_id = ?", broken.ID) {
			require.Equal(t, models.DeliveryPending, d.Status)
			require.Zero(t, d.Attempts)
			require.Contains(t, d.LastError, "local error (open_secret)")
			require.True(t, d.NextAttemptAt.After(b.clock.Now()))
		}
		require.Len(t, rc.requests(), 2)
	})
}
