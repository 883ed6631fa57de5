package forwarding_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/internal/clocktest"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

func hmacHex(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Attack/gap: an hmac or standard secret could only be replaced at once, so
// every delivery between the change and the receiver's redeploy failed.
// rotate-secret keeps the previous secret signing beside the new one for an
// overlap window: receivers on either secret verify (the official Standard
// Webhooks library accepts any of the space-separated signatures), and
// after the window only the new one does.
func TestSecretRotationOverlap(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		clock := clocktest.New(time.Now()) // the library checks timestamps against the wall clock
		b := setup(t, db, func(c *forwarding.Config) { c.Now = clock.Now })
		ctx := context.Background()
		stdRC, hmacRC := newReceiver(t), newReceiver(t)
		std := b.subscribe(t, "acc_a", stdRC.URL, []string{"*"}, func(in *forwarding.SubscriptionInput) {
			in.Signing = &forwarding.SigningInput{Scheme: "standard"}
		})
		hm := b.subscribe(t, "acc_a", hmacRC.URL, []string{"*"}, func(in *forwarding.SubscriptionInput) {
			in.Signing = &forwarding.SigningInput{Scheme: "hmac"}
		})
		oldStd, oldHMAC := std.Signing.Secret, hm.Signing.Secret

		std2, err := b.svc.RotateSecret(ctx, "acc_a", std.ID, "", 2*time.Minute)
		require.NoError(t, err)
		hm2, err := b.svc.RotateSecret(ctx, "acc_a", hm.ID, "a-brand-new-hmac-secret", 2*time.Minute)
		require.NoError(t, err)
		require.NotEqual(t, oldStd, std2.Signing.Secret)
		require.True(t, strings.HasPrefix(std2.Signing.Secret, "whsec_"))
		require.Equal(t, "a-brand-new-hmac-secret", hm2.Signing.Secret)
		require.NotNil(t, std2.Signing.PreviousSecretExpiresAt)
		require.WithinDuration(t, clock.Now().Add(2*time.Minute), *std2.Signing.PreviousSecretExpiresAt, time.Second)

		b.publish(t, "acc_a", contactEvent("1"))
		b.drain(t)
		got := stdRC.requests()
		require.Len(t, got, 1)
		require.Len(t, strings.Fields(got[0].Header.Get("webhook-signature")), 2)
		for _, secret := range []string{oldStd, std2.Signing.Secret} {
			wh, err := standardwebhooks.NewWebhook(secret)
			require.NoError(t, err)
			require.NoError(t, wh.Verify(got[0].Body, got[0].Header), "a receiver on either secret verifies during the overlap")
		}
		hg := hmacRC.requests()
		require.Len(t, hg, 1)
		require.Equal(t, hmacHex("a-brand-new-hmac-secret", hg[0].Body), hg[0].Header.Get("X-Webhook-Signature"))
		require.Equal(t, hmacHex(oldHMAC, hg[0].Body), hg[0].Header.Get("X-Webhook-Signature-Previous"))

		// After the window only the new secret signs.
		clock.Add(3 * time.Minute)
		b.publish(t, "acc_a", contactEvent("2"))
		b.drain(t)
		got = stdRC.requests()
		require.Len(t, got, 2)
		require.Len(t, strings.Fields(got[1].Header.Get("webhook-signature")), 1)
		whOld, err := standardwebhooks.NewWebhook(oldStd)
		require.NoError(t, err)
		require.Error(t, whOld.Verify(got[1].Body, got[1].Header))
		whNew, err := standardwebhooks.NewWebhook(std2.Signing.Secret)
		require.NoError(t, err)
		require.NoError(t, whNew.Verify(got[1].Body, got[1].Header))
		hg = hmacRC.requests()
		require.Empty(t, hg[1].Header.Get("X-Webhook-Signature-Previous"))
		view, err := b.svc.GetSubscription(ctx, "acc_a", std.ID)
		require.NoError(t, err)
		require.Nil(t, view.Signing.PreviousSecretExpiresAt)

		// RSA subscriptions rotate the account key instead; other accounts'
		// webhooks are not found; the overlap is bounded.
		rsa := b.subscribe(t, "acc_a", stdRC.URL, []string{"*"})
		_, err = b.svc.RotateSecret(ctx, "acc_a", rsa.ID, "", 0)
		requireCode(t, err, models.ErrCodeConflict)
		_, err = b.svc.RotateSecret(ctx, "acc_b", std.ID, "", 0)
		requireCode(t, err, models.ErrCodeNotFound)
		_, err = b.svc.RotateSecret(ctx, "acc_a", std.ID, "", 8*24*time.Hour)
		requireCode(t, err, models.ErrCodeUnprocessable)
		_, err = b.svc.RotateSecret(ctx, "acc_a", std.ID, "not-a-whsec", 0)
		requireCode(t, err, models.ErrCodeUnprocessable)
	})
}

func requireCode(t *testing.T, err error, code string) {
	t.Helper()
	var e *models.Error
	require.True(t, errors.As(err, &e), "%v", err)
	require.Equal(t, code, e.Code, e.Message)
}
