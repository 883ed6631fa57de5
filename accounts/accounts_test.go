package accounts_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

func TestKeys(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := accounts.New(db)
		ctx := t.Context()
		acc, key, err := s.Create(ctx, "Acme")
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(acc.ID, "acc_"))
		require.True(t, strings.HasPrefix(key, "trb_"))
		require.False(t, strings.HasPrefix(key, "trb_admin_"))

		var stored []models.APIKey
		require.NoError(t, db.Find(&stored).Error)
		require.Len(t, stored, 1)
		require.NotContains(t, stored[0].Hash, key[4:], "the key is stored only as a hash")
		require.Equal(t, accounts.Hash(key), stored[0].Hash)

		p, err := s.Authenticate(ctx, key)
		require.NoError(t, err)
		require.Equal(t, accounts.Principal{Role: models.RoleISV, AccountID: acc.ID, KeyID: stored[0].ID}, p)

		admin, err := s.CreateAdminKey(ctx)
		require.NoError(t, err)
		require.True(t, strings.HasPrefix(admin, "trb_admin_"))
		p, err = s.Authenticate(ctx, admin)
		require.NoError(t, err)
		require.Equal(t, models.RoleAdmin, p.Role)
		require.Empty(t, p.AccountID)

		for _, bad := range []string{"", "trb_nope", key + "x", "Bearer " + key, strings.Repeat("trb_", 40)} {
			_, err := s.Authenticate(ctx, bad)
			require.Equal(t, models.ErrCodeUnauthorized, models.ErrorCode(err), bad)
		}
	})
}

func TestCreateAndUpdateValidation(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		s := accounts.New(db)
		ctx := t.Context()
		_, _, err := s.Create(ctx, "  ")
		require.Equal(t, models.ErrCodeUnprocessable, models.ErrorCode(err))
		var n int64
		db.Model(&models.Account{}).Count(&n)
		require.Zero(t, n, "a refused create writes nothing")

		acc, _, err := s.Create(ctx, "Acme")
		require.NoError(t, err)
		h, m := 6*time.Hour, 30*time.Minute
		got, err := s.Update(ctx, acc.ID, accounts.Update{DefaultPollInterval: &h, MinPollInterval: &m})
		require.NoError(t, err)
		require.Equal(t, h, got.DefaultPollInterval)
		require.Equal(t, m, got.MinPollInterval)

		tooBig := 7 * time.Hour
		_, err = s.Update(ctx, acc.ID, accounts.Update{MinPollInterval: &tooBig})
		require.Equal(t, models.ErrCodeUnprocessable, models.ErrorCode(err))
		again, err := s.Get(ctx, acc.ID)
		require.NoError(t, err)
		require.Equal(t, m, again.MinPollInterval, "a refused update changes nothing")

		_, err = s.Update(ctx, "acc_missing", accounts.Update{DefaultPollInterval: &h})
		require.True(t, models.IsNotFound(err))
	})
}
