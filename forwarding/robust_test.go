package forwarding_test

// Regression tests of issue 11: no row, deleted webhook or hostile endpoint
// may stop the dispatcher from recording results.

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
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
					_ = tx.AddError(errors.New("test: row refused"))
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
