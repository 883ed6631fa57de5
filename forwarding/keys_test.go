package forwarding_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// Attack: a rotation loop (POST /v1/signing-keys/rotate in a tight loop)
// made one RSA key per call, inside a transaction, and grew the JWKS to 594
// keys. Rotations are now limited per account (cheaply refused before any
// key is generated) and retired keys are pruned after the grace period.
func TestSigningKeyRotationStormIsBounded(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db, func(c *forwarding.Config) {
			c.Keys.RotationLimit, c.Keys.RotationWindow, c.Keys.RetiredKeyGrace = 3, time.Hour, 24*time.Hour
		})
		ctx := context.Background()
		_, err := b.svc.SigningKeys(ctx, "acc_a") // first key
		require.NoError(t, err)
		for range 2 {
			_, err := b.svc.RotateSigningKey(ctx, "acc_a")
			require.NoError(t, err)
		}
		for range 50 {
			_, err := b.svc.RotateSigningKey(ctx, "acc_a")
			var e *models.Error
			require.True(t, errors.As(err, &e), "%v", err)
			require.Equal(t, models.ErrCodeRateLimited, e.Code)
			require.Positive(t, e.RetryAfter)
		}
		var n int64
		require.NoError(t, db.Model(&models.SigningKey{}).Where("account_id = ?", "acc_a").Count(&n).Error)
		require.EqualValues(t, 3, n, "refused rotations make no keys")
		// Other accounts are not limited by A's storm.
		_, err = b.svc.SigningKeys(ctx, "acc_b")
		require.NoError(t, err)
		_, err = b.svc.RotateSigningKey(ctx, "acc_b")
		require.NoError(t, err)

		// An hour later A may rotate again; a day later the keys retired
		// long ago are gone from the JWKS, the current one stays.
		b.clock.Add(time.Hour + time.Second)
		_, err = b.svc.RotateSigningKey(ctx, "acc_a")
		require.NoError(t, err)
		set, err := b.svc.AccountJWKS(ctx, "acc_a")
		require.NoError(t, err)
		require.Len(t, set.Keys, 4, "retired keys stay published during the grace period")
		b.clock.Add(25 * time.Hour)
		pruned, err := b.svc.PruneSigningKeys(ctx, b.clock.Now().Add(-24*time.Hour))
		require.NoError(t, err)
		require.EqualValues(t, 4, pruned, "3 of A, 1 of B")
		set, err = b.svc.AccountJWKS(ctx, "acc_a")
		require.NoError(t, err)
		require.Len(t, set.Keys, 1)
		keys, err := b.svc.SigningKeys(ctx, "acc_a")
		require.NoError(t, err)
		require.True(t, keys[0].Current)
		require.Equal(t, set.Keys[0].Kid, keys[0].KID)
	})
}

// The per-account key set holds only that account's keys.
func TestAccountJWKSHoldsOnlyThatAccount(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		a, err := b.svc.AccountJWKS(ctx, "acc_a")
		require.NoError(t, err)
		bb, err := b.svc.AccountJWKS(ctx, "acc_b")
		require.NoError(t, err)
		require.Len(t, a.Keys, 1)
		require.Len(t, bb.Keys, 1)
		require.NotEqual(t, a.Keys[0].Kid, bb.Keys[0].Kid)
		all, err := b.svc.JWKS(ctx)
		require.NoError(t, err)
		require.Len(t, all.Keys, 2)
	})
}
