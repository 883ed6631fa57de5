package inbound

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// shopifyChanges makes, on a new shop, the changes named by steps ("create
// a", "update a", …; each a second apart) and receives their webhooks in
// that order. It returns the shop's order ids by name.
func (b *bundle) shopifyChanges(t *testing.T, steps ...[2]string) map[string]int64 {
	t.Helper()
	shop, _ := b.shopifyShop(t)
	ids := map[string]int64{}
	for i, st := range steps {
		b.shClock.Advance(time.Second)
		b.clock.Advance(time.Second)
		email := st[1] + "-" + time.Duration(i).String() + "@example.com"
		switch st[0] {
		case "create":
			ids[st[1]] = b.sh.Create(shop, "orders", map[string]any{"email": email})
		case "update":
			require.True(t, b.sh.Update(shop, "orders", ids[st[1]], map[string]any{"email": email}))
		}
		b.receiveAll(t, "shopify", b.shopifyRequests(shop))
	}
	return ids
}

// Regression (issue 10): the processor committed one transaction (and one
// publish) per item. A batch now commits its items together, and one
// record's changes keep their received order within it.
func TestBatchCommitsTogetherInRecordOrder(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		b.shopifyChanges(t, [2]string{"create", "a"}, [2]string{"update", "a"}, [2]string{"create", "b"},
			[2]string{"update", "b"}, [2]string{"update", "a"}, [2]string{"create", "c"})
		require.Len(t, b.inbox(t), 6)

		require.Equal(t, 6, b.process(t))
		require.EqualValues(t, 1, b.pub.calls.Load(), "one publish for the whole batch")
		evs := b.events(t)
		require.Equal(t, []string{"commerce/orders created", "commerce/orders updated", "commerce/orders created",
			"commerce/orders updated", "commerce/orders updated", "commerce/orders created"}, kinds(evs))
		require.Equal(t, "a-0s@example.com", payloadField(t, evs[0], "email"))
		require.Equal(t, "a-1ns@example.com", payloadField(t, evs[1], "email"))
		require.Equal(t, "a-4ns@example.com", payloadField(t, evs[4], "email"))
		for _, it := range b.inbox(t) {
			require.NotNil(t, it.ProcessedAt)
			require.Equal(t, 1, it.Attempts)
		}
		require.Zero(t, b.process(t))
	})
}

// A batch whose transaction fails is split until the bad item is alone: the
// others commit, the bad one is retried on its own and, failing for good,
// given up without holding anything back.
func TestPoisonItemIsIsolated(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		b.proc.MaxAttempts = 2
		b.shopifyChanges(t, [2]string{"create", "a"}, [2]string{"create", "poison"}, [2]string{"create", "c"},
			[2]string{"create", "d"}, [2]string{"create", "e"})
		b.pub.failOn = "poison"

		require.Equal(t, 5, b.process(t))
		require.Len(t, b.events(t), 4, "every item but the poison one committed")
		var bad models.InboxItem
		for _, it := range b.inbox(t) {
			if it.ProcessedAt == nil {
				bad = it
			}
		}
		require.Equal(t, 1, bad.Attempts)
		require.Contains(t, bad.LastError, "poison")

		b.shopifyChanges(t, [2]string{"create", "f"})
		b.clock.Advance(Backoff(1))
		require.Equal(t, 2, b.process(t))
		require.Len(t, b.events(t), 5, "the next item is not blocked by the retried poison one")
		for _, it := range b.inbox(t) {
			require.NotNil(t, it.ProcessedAt, "given up after MaxAttempts: %s", it.LastError)
		}
	})
}

// Regression: items of one record are never worked on by two claims at
// once, so a later change cannot overtake an earlier one across batches or
// workers; other records are not held back.
func TestClaimSkipsRecordsInFlight(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		b.shopifyChanges(t, [2]string{"create", "a"}, [2]string{"create", "b"}, [2]string{"update", "a"},
			[2]string{"update", "b"})
		items := b.inbox(t)
		require.NotEmpty(t, items[0].OrderKey)
		require.Equal(t, items[0].OrderKey, items[2].OrderKey)
		require.NotEqual(t, items[0].OrderKey, items[1].OrderKey)

		b.proc.Batch = 1
		first, err := b.proc.claim(t.Context())
		require.NoError(t, err)
		second, err := b.proc.claim(t.Context())
		require.NoError(t, err)
		third, err := b.proc.claim(t.Context())
		require.NoError(t, err)
		require.Equal(t, items[0].ID, first[0].ID)
		require.Equal(t, items[1].ID, second[0].ID)
		require.Empty(t, third, "a's and b's updates wait for their creates in flight")

		require.NoError(t, b.proc.processBatch(t.Context(), first))
		next, err := b.proc.claim(t.Context())
		require.NoError(t, err)
		require.Equal(t, items[2].ID, next[0].ID, "a's update once a's create committed")

		// An abandoned claim does not block its record past the lease.
		b.clock.Advance(DefaultLease + time.Second)
		b.proc.Batch = 10
		require.Equal(t, 3, b.process(t), "b's abandoned create and both updates")
		require.Equal(t, []string{"commerce/orders created", "commerce/orders created", "commerce/orders updated",
			"commerce/orders updated"}, kinds(b.events(t)))
	})
}
