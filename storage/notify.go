package storage

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// Channels of PostgreSQL notifications between replicas.
const (
	// ChannelInbox: a native webhook was stored in the inbox.
	ChannelInbox = "tributary_inbox"
)

// Listen LISTENs on channels over one dedicated PostgreSQL connection to
// url (outside every pool) and calls fn with the channel of each
// notification, until ctx ends. A lost connection is re-established with a
// growing delay (up to 5s); notifications sent meanwhile are lost, which is
// why every waiter keeps its tick as a fallback. fn must not block.
func Listen(ctx context.Context, url string, channels []string, fn func(channel string), log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := listenOnce(ctx, url, channels, fn, func() { delay = 100 * time.Millisecond })
		if ctx.Err() != nil {
			return
		}
		log.Warn("database listener lost; reconnecting", "channels", channels, "retryIn", delay, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

func listenOnce(ctx context.Context, url string, channels []string, fn func(string), connected func()) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	connected()
	// Whatever was notified while nobody listened is found by a wake now.
	for _, ch := range channels {
		fn(ch)
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(n.Channel)
	}
}

// Notifier sends NOTIFY on one channel for signals, coalescing bursts: at
// most one NOTIFY is in flight and one more queued, whatever the rate of
// Signal. On SQLite (one process) it does nothing.
type Notifier struct {
	db      *gorm.DB
	channel string
	ch      chan struct{}
}

// NewNotifier returns a Notifier of channel over db; Run must be running for
// signals to be sent.
func NewNotifier(db *gorm.DB, channel string) *Notifier {
	return &Notifier{db: db, channel: channel, ch: make(chan struct{}, 1)}
}

// Signal asks for a NOTIFY soon; it never blocks.
func (n *Notifier) Signal() {
	if n == nil {
		return
	}
	select {
	case n.ch <- struct{}{}:
	default:
	}
}

// Run sends the signalled NOTIFYs until ctx ends.
func (n *Notifier) Run(ctx context.Context, log *slog.Logger) {
	if !IsPostgres(n.db) {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.ch:
		}
		if err := n.db.WithContext(ctx).Exec("SELECT pg_notify(?, '')", n.channel).Error; err != nil && ctx.Err() == nil && log != nil {
			log.Warn("database notify failed", "channel", n.channel, "err", err)
		}
	}
}
