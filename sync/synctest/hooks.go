package synctest

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
)

// subscribe gives the account one subscription to every topic, so that
// Publish fans each event out to exactly one queued delivery; when the test
// ends, every event must have its delivery.
func (b *bundle) subscribe(fwd *forwarding.Service) {
	addr, topics := "https://receiver.example.com/hooks", []string{"*"}
	_, err := fwd.CreateSubscription(b.t.Context(), b.account, forwarding.SubscriptionInput{Address: &addr, Topic: &topics})
	require.NoError(b.t, err)
	b.t.Cleanup(func() {
		if b.t.Failed() {
			return
		}
		var events, deliveries, orphans int64
		require.NoError(b.t, b.db.Model(&models.Event{}).Where("account_id = ?", b.account).Count(&events).Error)
		require.NoError(b.t, b.db.Model(&models.Delivery{}).Where("account_id = ?", b.account).Count(&deliveries).Error)
		require.NoError(b.t, b.db.Model(&models.Delivery{}).Where("account_id = ? AND event_id NOT IN (?)", b.account,
			b.db.Model(&models.Event{}).Select("id").Where("account_id = ?", b.account)).Count(&orphans).Error)
		require.Equal(b.t, events, deliveries, "one queued delivery per event")
		require.Zero(b.t, orphans)
	})
}

// hookCursorWrites lets a test act right after the poller stored a page's
// cursor, inside that page's transaction (see afterCursorWrite).
func (b *bundle) hookCursorWrites() {
	name := "synctest:cursor:" + b.row.ID
	err := b.db.Callback().Raw().After("gorm:raw").Register(name, func(tx *gorm.DB) {
		if tx.Error != nil || !strings.HasPrefix(tx.Statement.SQL.String(), "UPDATE connections SET cursors") ||
			!slices.Contains(tx.Statement.Vars, any(b.row.ID)) {
			return
		}
		b.mu.Lock()
		fn := b.onCursor
		b.onCursor = nil
		b.mu.Unlock()
		if fn != nil {
			fn()
		}
	})
	require.NoError(b.t, err)
	b.t.Cleanup(func() { _ = b.db.Callback().Raw().Remove(name) })
}

// afterCursorWrite arms fn to run once, after the next page cursor the
// poller stores for the connection (silent pages included).
func (b *bundle) afterCursorWrite(fn func()) {
	b.mu.Lock()
	b.onCursor = fn
	b.mu.Unlock()
}

// hookPublisher publishes through forwarding, counts the data pages (one
// Publish call per page with changes) per topic, and runs onData once, inside
// the page's transaction, after the next data publish.
type hookPublisher struct {
	inner  *forwarding.Service
	mu     sync.Mutex
	pages  map[string]int
	onData func()
}

func (p *hookPublisher) Publish(ctx context.Context, tx *gorm.DB, accountID string, events ...*models.Envelope) error {
	if err := p.inner.Publish(ctx, tx, accountID, events...); err != nil {
		return err
	}
	p.mu.Lock()
	topics := map[string]bool{}
	for _, e := range events {
		if !isSystem(e.Topic) {
			topics[e.Topic] = true
		}
	}
	for tp := range topics {
		p.pages[tp]++
	}
	var hook func()
	if len(topics) > 0 {
		hook, p.onData = p.onData, nil
	}
	p.mu.Unlock()
	if hook != nil {
		hook()
	}
	return nil
}

// afterFirstPage arms fn to run after the next page of changes is published.
func (p *hookPublisher) afterFirstPage(fn func()) {
	p.mu.Lock()
	p.onData = fn
	p.mu.Unlock()
}

func (p *hookPublisher) pagesOf(topic string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pages[topic]
}

func isSystem(topic string) bool {
	return strings.HasPrefix(topic, "sync/") || strings.HasPrefix(topic, "connection/")
}
