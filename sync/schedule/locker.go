package schedule

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"

	"github.com/go-co-op/gocron/v2"
	"gorm.io/gorm"

	"github.com/tributary/tributary/storage"
)

// ErrLockHeld is returned by a Locker when another holder has the lock.
var ErrLockHeld = errors.New("schedule: lock is held elsewhere")

// NewLocker returns the gocron.Locker for db: a PostgreSQL session advisory
// lock shared by every replica, or an in-process lock on SQLite (whose
// deployments are a single process).
//
// Written here rather than imported: the published gorm-backed gocron locker
// is not available to this build, and the advisory lock needs no table.
func NewLocker(db *gorm.DB) gocron.Locker {
	if storage.IsPostgres(db) {
		return &pgLocker{db: db}
	}
	return &localLocker{held: map[string]bool{}}
}

// pgLocker takes pg_try_advisory_lock on a dedicated connection held for the
// lock's life; the lock dies with that session, so a crashed holder never
// keeps it.
type pgLocker struct{ db *gorm.DB }

// Lock takes the lock named key or fails with ErrLockHeld at once.
func (l *pgLocker) Lock(ctx context.Context, key string) (gocron.Lock, error) {
	sqlDB, err := l.db.DB()
	if err != nil {
		return nil, err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("schedule: lock %s: %w", key, err)
	}
	k := storage.LockKey("gocron:" + key)
	var ok bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", k).Scan(&ok); err != nil {
		discard(conn)
		return nil, fmt.Errorf("schedule: lock %s: %w", key, err)
	}
	if !ok {
		_ = conn.Close()
		return nil, fmt.Errorf("%w: %s", ErrLockHeld, key)
	}
	return &pgLock{conn: conn, key: k}, nil
}

type pgLock struct {
	once sync.Once
	conn *sql.Conn
	key  int64
}

// Unlock releases the advisory lock and returns the connection to the pool;
// when the release cannot be confirmed the connection is closed instead, so
// its session (and the lock) ends.
func (l *pgLock) Unlock(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		var released bool
		err = l.conn.QueryRowContext(ctx, "SELECT pg_advisory_unlock($1)", l.key).Scan(&released)
		if err != nil || !released {
			discard(l.conn)
			if err == nil {
				err = errors.New("schedule: advisory lock was not held")
			}
			return
		}
		err = l.conn.Close()
	})
	return err
}

// discard closes conn's driver connection instead of pooling it.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

// localLocker is an in-process lock table.
type localLocker struct {
	mu   sync.Mutex
	held map[string]bool
}

// Lock takes the lock named key or fails with ErrLockHeld at once.
func (l *localLocker) Lock(_ context.Context, key string) (gocron.Lock, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[key] {
		return nil, fmt.Errorf("%w: %s", ErrLockHeld, key)
	}
	l.held[key] = true
	return &localLock{l: l, key: key}, nil
}

type localLock struct {
	once sync.Once
	l    *localLocker
	key  string
}

// Unlock releases the lock.
func (k *localLock) Unlock(context.Context) error {
	k.once.Do(func() {
		k.l.mu.Lock()
		delete(k.l.held, k.key)
		k.l.mu.Unlock()
	})
	return nil
}
