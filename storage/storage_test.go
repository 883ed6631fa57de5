package storage_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
)

func TestMigrateIsIdempotentAndSafeConcurrently(t *testing.T) {
	for _, d := range storagetest.Dialects {
		t.Run(d, func(t *testing.T) {
			opts := storagetest.Options(t, d)
			ctx := context.Background()
			// Two "replicas" start at once.
			var wg sync.WaitGroup
			applied := make([][]int, 2)
			errs := make([]error, 2)
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					db, err := storage.Open(ctx, opts)
					if err != nil {
						errs[i] = err
						return
					}
					defer storage.Close(db)
					applied[i], errs[i] = storage.Migrate(ctx, db)
				}()
			}
			wg.Wait()
			require.NoError(t, errs[0])
			require.NoError(t, errs[1])
			require.Equal(t, len(models.Migrations()), len(applied[0])+len(applied[1]), "each migration applied exactly once")

			db, err := storage.Open(ctx, opts)
			require.NoError(t, err)
			defer storage.Close(db)
			again, err := storage.Migrate(ctx, db)
			require.NoError(t, err)
			require.Empty(t, again)
			pending, err := storage.Pending(ctx, db)
			require.NoError(t, err)
			require.Empty(t, pending)
			require.True(t, db.Migrator().HasTable(&models.Account{}))
		})
	}
}

func TestValidateURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"postgres://u@127.0.0.1:5432/db", true},
		{"postgresql://u@h/db?sslmode=disable", true},
		{"mysql://u@h/db", false},
		{"postgres://", false},
		{"::not a url", false},
	} {
		err := storage.ValidateURL(tc.url)
		require.Equal(t, tc.ok, err == nil, "%s: %v", tc.url, err)
	}
}
