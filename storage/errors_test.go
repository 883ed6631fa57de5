package storage_test

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
)

func TestIsRefusal(t *testing.T) {
	t.Parallel()
	pg := func(code string) error { return fmt.Errorf("record: %w", &pgconn.PgError{Code: code}) }
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"invalid byte sequence 22021", pg("22021"), true},
		{"value too long 22001", pg("22001"), true},
		{"not null 23502", pg("23502"), true},
		{"unique (translated)", gorm.ErrDuplicatedKey, true},
		{"connection terminated 57P01", pg("57P01"), false},
		{"connection failure 08006", pg("08006"), false},
		{"serialization 40001", pg("40001"), false},
		{"deadlock 40P01", pg("40P01"), false},
		{"query canceled 57014", pg("57014"), false},
		{"EOF", io.ErrUnexpectedEOF, false},
		{"deadline", context.DeadlineExceeded, false},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), false},
		{"unknown", fmt.Errorf("something"), false},
		{"nil", nil, false},
	} {
		require.Equal(t, tc.want, storage.IsRefusal(tc.err), tc.name)
	}
}

// TestIsRefusalOfRealErrors classifies what each database really answers.
func TestIsRefusalOfRealErrors(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		require.NoError(t, db.Exec("CREATE TABLE refusal_probe (id INTEGER PRIMARY KEY, v TEXT NOT NULL)").Error)
		require.NoError(t, db.Exec("INSERT INTO refusal_probe (id, v) VALUES (1, 'a')").Error)
		dup := db.Exec("INSERT INTO refusal_probe (id, v) VALUES (1, 'b')").Error
		require.Error(t, dup)
		require.True(t, storage.IsRefusal(dup), "duplicate key: %v", dup)
		null := db.Exec("INSERT INTO refusal_probe (id, v) VALUES (2, NULL)").Error
		require.Error(t, null)
		require.True(t, storage.IsRefusal(null), "not null: %v", null)
		missing := db.Exec("INSERT INTO no_such_table (id) VALUES (1)").Error
		require.Error(t, missing)
		require.False(t, storage.IsRefusal(missing), "a missing table is not the row's fault: %v", missing)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		canceled := db.WithContext(ctx).Exec("INSERT INTO refusal_probe (id, v) VALUES (3, 'c')").Error
		require.Error(t, canceled)
		require.False(t, storage.IsRefusal(canceled), "%v", canceled)
	})
}
