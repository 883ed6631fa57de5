package inbound

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/storage/storagetest"
)

// Replicas receiving the same delivery store it once; replicas processing
// the inbox side by side take disjoint items, and every change is published
// once.
func TestConcurrentReceiversAndProcessors(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		b.proc.Batch = 3
		portal, _ := b.hubspotPortal(t, true)
		var reqs []*connectors.InboundRequest
		const n = 12
		for range n {
			b.create(t, portal)
			reqs = append(reqs, b.hs.Webhooks(portal)...)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for _, r := range reqs {
					if err := b.recv.Receive(t.Context(), "hubspot", r); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		require.Len(t, b.inbox(t), n)

		for range 4 {
			wg.Go(func() {
				for {
					got, err := b.proc.ProcessDue(t.Context())
					if err != nil {
						t.Error(err)
						return
					}
					if got == 0 {
						return
					}
				}
			})
		}
		wg.Wait()
		require.Len(t, b.events(t), n)
		for _, it := range b.inbox(t) {
			require.NotNil(t, it.ProcessedAt)
			require.Equal(t, 1, it.Attempts, "processed once")
		}
	})
}
