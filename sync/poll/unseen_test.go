package poll

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// failDataCall fails the n-th Publish call that carries data events.
type failDataCall struct {
	Publisher
	n, calls int
}

func (f *failDataCall) Publish(ctx context.Context, tx *gorm.DB, accountID string, events ...*models.Envelope) error {
	if !strings.HasPrefix(events[0].Topic, "sync/") {
		f.calls++
		if f.calls == f.n {
			return errPublish
		}
	}
	return f.Publisher.Publish(ctx, tx, accountID, events...)
}

// TestFullScanDeletionsCommitInBatches: the records a full scan did not see
// are marked deleted and published in bounded batches, one transaction each;
// a pass that fails part-way keeps the batches it committed and the next
// scan publishes only the rest.
func TestFullScanDeletionsCommitInBatches(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		old := unseenBatch
		unseenBatch = 3
		defer func() { unseenBatch = old }()
		b := setup(t, db)
		firstSync(t, b, 10)
		b.app.windowExpired = true // deletions only through full scans
		for i := 1; i <= 8; i++ {
			b.app.remove(fmt.Sprintf("c%d", i), t0, false)
		}
		// The second batch's publication fails.
		b.runner.Publisher = &failDataCall{Publisher: b.pub, n: 2}
		res, err := b.run(t)
		require.True(t, err != nil || res.Status != RunCompleted, "the pass failed: %v %v", err, res.Status)
		deleted := func() []string {
			var ids []string
			require.NoError(t, db.Model(&models.Snapshot{}).Where("connection_id = ? AND deleted = ?", b.connID, true).Order("remote_id").Pluck("remote_id", &ids).Error)
			return ids
		}
		first := deleted()
		require.Len(t, first, 3, "the first batch committed with its events")
		var emitted []string
		for _, e := range b.pub.take() {
			if e.UpdateType == models.UpdateDeleted {
				emitted = append(emitted, e.Topic)
			}
		}
		require.Len(t, emitted, 3)

		b.runner.Publisher = b.pub
		res, err = b.run(t)
		require.NoError(t, err)
		require.Equal(t, RunCompleted, res.Status)
		require.Equal(t, 5, res.Counts.Deleted, "only the rest, each once")
		require.Len(t, deleted(), 8)
	})
}
