package forwarding

// Cross-replica wake-ups on PostgreSQL: a transaction that queues deliveries
// issues NOTIFY on one channel, which PostgreSQL delivers when (and only if)
// it commits; every dispatcher process LISTENs on a connection of its own and
// claims at once. The dispatcher's tick stays the fallback (SQLite, a lost
// listener connection).

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"

	"github.com/tributary/tributary/storage"
)

// NotifyChannel is the PostgreSQL channel on which queued deliveries are announced.
const NotifyChannel = "tributary_deliveries"

// notifyQueued announces, inside tx, that deliveries were queued: the
// notification fires when tx commits. A no-op on SQLite.
func notifyQueued(tx *gorm.DB) error {
	if !storage.IsPostgres(tx) {
		return nil
	}
	if err := tx.Exec("SELECT pg_notify(?, '')", NotifyChannel).Error; err != nil {
		return fmt.Errorf("notify queued deliveries: %w", err)
	}
	return nil
}

// wakeAll wakes local dispatchers and, on PostgreSQL, those of every other
// replica, after deliveries were queued outside Publish (replay, resend).
func (s *Service) wakeAll(ctx context.Context) {
	s.wake()
	if err := notifyQueued(s.db.WithContext(ctx)); err != nil {
		s.log.Warn("dispatcher: could not notify other replicas; they pick the deliveries up at their next tick", "err", err)
	}
}

// listen wakes this process's dispatchers whenever another transaction
// announced queued deliveries, until ctx ends. It holds one connection of
// the pool, reconnecting after errors; up reports whether it is listening.
func (s *Service) listen(ctx context.Context, up func(bool)) {
	if !storage.IsPostgres(s.db) {
		return
	}
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, up)
		up(false)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("dispatcher: LISTEN connection lost; waking on the tick until it is back", "err", err)
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

func (s *Service) listenOnce(ctx context.Context, up func(bool)) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("listen: connection: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("listen: driver connection is %T, not pgx", dc)
		}
		pc := sc.Conn()
		if _, err := pc.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
			return fmt.Errorf("listen: %w", err)
		}
		up(true)
		s.wake() // anything queued while no one listened
		for {
			if _, err := pc.WaitForNotification(ctx); err != nil {
				// Leave no LISTEN behind on a pooled connection; a
				// connection that cannot say so is thrown away.
				cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, uerr := pc.Exec(cctx, "UNLISTEN *")
				cancel()
				if uerr != nil {
					_ = pc.Close(context.Background())
				}
				if errors.Is(err, context.Canceled) && ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("listen: %w", err)
			}
			s.wake()
		}
	})
}
