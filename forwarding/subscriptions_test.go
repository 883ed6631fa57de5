package forwarding_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

func TestSubscriptionValidation(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db, func(c *forwarding.Config) { c.AllowHTTP, c.AllowPrivate = false, false })
		ctx := context.Background()
		good := "https://hooks.example.com/in"
		cases := []struct {
			name  string
			in    forwarding.SubscriptionInput
			field string
		}{
			{"missing address", forwarding.SubscriptionInput{Topic: &[]string{"*"}}, "address"},
			{"relative address", forwarding.SubscriptionInput{Address: ptr("/hook"), Topic: &[]string{"*"}}, "address"},
			{"plain http refused", forwarding.SubscriptionInput{Address: ptr("http://hooks.example.com"), Topic: &[]string{"*"}}, "address"},
			{"ftp", forwarding.SubscriptionInput{Address: ptr("ftp://hooks.example.com"), Topic: &[]string{"*"}}, "address"},
			{"private literal", forwarding.SubscriptionInput{Address: ptr("https://10.1.2.3/x"), Topic: &[]string{"*"}}, "address"},
			{"metadata literal", forwarding.SubscriptionInput{Address: ptr("https://169.254.169.254/latest"), Topic: &[]string{"*"}}, "address"},
			{"missing topic", forwarding.SubscriptionInput{Address: &good}, "topic"},
			{"empty topic", forwarding.SubscriptionInput{Address: &good, Topic: &[]string{}}, "topic"},
			{"unknown topic", forwarding.SubscriptionInput{Address: &good, Topic: &[]string{"crm/contacts", "crm/widgets"}}, "topic"},
			{"unknown category", forwarding.SubscriptionInput{Address: &good, Topic: &[]string{"erp/*"}}, "topic"},
			{"bad scheme", forwarding.SubscriptionInput{Address: &good, Topic: &[]string{"*"}, Signing: &forwarding.SigningInput{Scheme: "md5"}}, "signing.scheme"},
			{"rsa with secret", forwarding.SubscriptionInput{Address: &good, Topic: &[]string{"*"}, Signing: &forwarding.SigningInput{Scheme: "rsa", Secret: "x"}}, "signing.secret"},
			{"standard bad secret", forwarding.SubscriptionInput{Address: &good, Topic: &[]string{"*"}, Signing: &forwarding.SigningInput{Scheme: "standard", Secret: "nope"}}, "signing.secret"},
			{"hmac short secret", forwarding.SubscriptionInput{Address: &good, Topic: &[]string{"*"}, Signing: &forwarding.SigningInput{Scheme: "hmac", Secret: "short"}}, "signing.secret"},
			{"too many retries", forwarding.SubscriptionInput{Address: &good, Topic: &[]string{"*"}, Retry: &forwarding.RetryInput{MaxRetries: ptr(99)}}, "retry.maxRetries"},
			{"negative retries", forwarding.SubscriptionInput{Address: &good, Topic: &[]string{"*"}, Retry: &forwarding.RetryInput{MaxRetries: ptr(-1)}}, "retry.maxRetries"},
			{"multiplier too big", forwarding.SubscriptionInput{Address: &good, Topic: &[]string{"*"}, Retry: &forwarding.RetryInput{BackoffMultiplier: ptr(50.0)}}, "retry.backoffMultiplier"},
			{"schedule entry", forwarding.SubscriptionInput{Address: &good, Topic: &[]string{"*"}, Retry: &forwarding.RetryInput{Schedule: []string{"1m", "48h"}}}, "retry.schedule"},
			{"schedule garbage", forwarding.SubscriptionInput{Address: &good, Topic: &[]string{"*"}, Retry: &forwarding.RetryInput{Schedule: []string{"soon"}}}, "retry.schedule"},
			{"both retry kinds", forwarding.SubscriptionInput{Address: &good, Topic: &[]string{"*"}, Retry: &forwarding.RetryInput{Schedule: []string{"1m"}, BackoffMultiplier: ptr(2.0)}}, "retry"},
			{"timeout zero", forwarding.SubscriptionInput{Address: &good, Topic: &[]string{"*"}, TimeoutSeconds: ptr(0)}, "timeoutSeconds"},
			{"timeout too long", forwarding.SubscriptionInput{Address: &good, Topic: &[]string{"*"}, TimeoutSeconds: ptr(3600)}, "timeoutSeconds"},
		}
		for _, tc := range cases {
			_, err := b.svc.CreateSubscription(ctx, "acc_a", tc.in)
			var me *models.Error
			require.True(t, errors.As(err, &me), "%s: %v", tc.name, err)
			require.Equal(t, models.ErrCodeUnprocessable, me.Code, tc.name)
			require.Equal(t, tc.field, me.Field, tc.name)
		}
		var n int64
		require.NoError(t, db.Model(&models.Subscription{}).Count(&n).Error)
		require.Zero(t, n, "no invalid subscription is stored")

		// The unknown topic is named in the message.
		_, err := b.svc.CreateSubscription(ctx, "acc_a", forwarding.SubscriptionInput{Address: &good, Topic: &[]string{"crm/widgets"}})
		require.ErrorContains(t, err, `"crm/widgets"`)

		// Valid forms, with defaults filled in.
		sub, err := b.svc.CreateSubscription(ctx, "acc_a", forwarding.SubscriptionInput{Address: &good, Topic: &[]string{"crm/*", "commerce/orders", "crm/*"}})
		require.NoError(t, err)
		require.Equal(t, []string{"crm/*", "commerce/orders"}, sub.Topic)
		require.True(t, sub.Active)
		require.Equal(t, "rsa", sub.Signing.Scheme)
		require.Empty(t, sub.Signing.Secret)
		require.Equal(t, forwarding.DefaultMaxRetries, sub.Retry.MaxRetries)
		require.Equal(t, []string{"1m", "5m", "15m", "1h", "4h", "12h", "24h", "24h"}, sub.Retry.Schedule)
		require.Equal(t, 30, sub.TimeoutSeconds)

		std, err := b.svc.CreateSubscription(ctx, "acc_a", forwarding.SubscriptionInput{Address: &good, Topic: &[]string{"*"},
			Signing: &forwarding.SigningInput{Scheme: "standard"}, Retry: &forwarding.RetryInput{Schedule: []string{"10s", "1m"}}})
		require.NoError(t, err)
		require.Regexp(t, `^whsec_`, std.Signing.Secret)
		require.Equal(t, 2, std.Retry.MaxRetries)
		var raw models.Subscription
		require.NoError(t, db.Take(&raw, "id = ?", std.ID).Error)
		require.NotContains(t, string(raw.SecretEnc), std.Signing.Secret[6:], "secret is encrypted at rest")

		mul, err := b.svc.CreateSubscription(ctx, "acc_a", forwarding.SubscriptionInput{Address: &good, Topic: &[]string{"*"},
			Retry: &forwarding.RetryInput{MaxRetries: ptr(4), BackoffMultiplier: ptr(3.0)}})
		require.NoError(t, err)
		require.Equal(t, []string{"1m", "3m", "9m", "27m"}, mul.Retry.Schedule)
	})
}

func TestAccountBSeesNoneOfAccountAsObjects(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		rc := newReceiver(t)
		rc.setRespond(func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
		sub := b.subscribe(t, "acc_a", rc.URL, []string{"*"})
		b.publish(t, "acc_a", contactEvent("1"))
		b.drain(t)
		dead := b.deliveries(t, "status = ?", models.DeliveryDead)
		require.Len(t, dead, 1)

		notFound := func(err error) { t.Helper(); require.True(t, models.IsNotFound(err), "want not_found, got %v", err) }
		_, err := b.svc.GetSubscription(ctx, "acc_b", sub.ID)
		notFound(err)
		_, err = b.svc.UpdateSubscription(ctx, "acc_b", sub.ID, forwarding.SubscriptionInput{Active: ptr(true)})
		notFound(err)
		notFound(b.svc.DeleteSubscription(ctx, "acc_b", sub.ID))
		_, _, err = b.svc.ListDeliveries(ctx, "acc_b", forwarding.DeliveryFilter{WebhookID: sub.ID}, 50, "")
		notFound(err)
		_, err = b.svc.SubscriptionStats(ctx, "acc_b", sub.ID)
		notFound(err)
		_, err = b.svc.Resend(ctx, "acc_b", dead[0].ID)
		notFound(err)
		notFound(b.svc.Replay(ctx, "acc_b", dead[0].ID))
		_, err = b.svc.ReplayAll(ctx, "acc_b", sub.ID)
		notFound(err)
		_, _, err = b.svc.SendTest(ctx, "acc_b", sub.ID, "crm/contacts")
		notFound(err)

		list, _, err := b.svc.ListSubscriptions(ctx, "acc_b", 50, "")
		require.NoError(t, err)
		require.Empty(t, list)
		dl, _, err := b.svc.DeadLetters(ctx, "acc_b", "", 50, "")
		require.NoError(t, err)
		require.Empty(t, dl)
		n, err := b.svc.ReplayAll(ctx, "acc_b", "")
		require.NoError(t, err)
		require.Zero(t, n)
		evs, _, err := b.svc.ListEvents(ctx, "acc_b", "", "", 50)
		require.NoError(t, err)
		require.Empty(t, evs)

		// Account A still sees everything.
		dl, _, err = b.svc.DeadLetters(ctx, "acc_a", "", 50, "")
		require.NoError(t, err)
		require.Len(t, dl, 1)
	})
}
