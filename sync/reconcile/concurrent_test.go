package reconcile

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
)

// Two replicas applying the same pages at once, in opposite orders, emit each
// change exactly once, do not deadlock (rows are inserted, locked and stamped
// in key order), and every record ends stamped with the scan generation.
func TestConcurrentPagesEmitOnceAndStamp(t *testing.T) {
	for _, dialect := range storagetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			opts := storagetest.Options(t, dialect)
			var dbs []*gorm.DB
			for range 2 {
				db, err := storage.Open(context.Background(), opts)
				require.NoError(t, err)
				t.Cleanup(func() { _ = storage.Close(db) })
				dbs = append(dbs, db)
			}
			_, err := storage.Migrate(context.Background(), dbs[0])
			require.NoError(t, err)

			const n = 300
			for round, gen := range []int64{1, 2, 3} {
				recs := make([]models.Record, n)
				for i := range recs {
					email := "a@x"
					at := t0
					if round > 0 && i%7 == round { // some change in later rounds
						email, at = fmt.Sprintf("r%d@x", round), t0.Add(time.Duration(round)*time.Minute)
					}
					recs[i] = contact(fmt.Sprintf("k%04d", i), email, at)
				}
				reversed := make([]models.Record, n)
				for i := range recs {
					reversed[n-1-i] = recs[i]
				}
				var mu sync.Mutex
				emitted := map[string][]string{}
				var wg sync.WaitGroup
				start := make(chan struct{})
				for w, page := range [][]models.Record{recs, reversed} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						err := dbs[w].Transaction(func(tx *gorm.DB) error {
							cs, err := (&Reconciler{}).ApplyPage(tx, "c", page, gen)
							if err != nil {
								return err
							}
							mu.Lock()
							for _, c := range cs {
								emitted[c.RemoteID] = append(emitted[c.RemoteID], c.Kind)
							}
							mu.Unlock()
							return nil
						})
						require.NoError(t, err)
					}()
				}
				close(start)
				wg.Wait()
				for id, kinds := range emitted {
					require.Len(t, kinds, 1, "round %d %s: %v", round, id, kinds)
				}
				if round == 0 {
					require.Len(t, emitted, n)
				}
				var unstamped int64
				require.NoError(t, dbs[0].Raw(`SELECT count(*) FROM snapshots WHERE connection_id = 'c' AND scan_generation < ?`, gen).Scan(&unstamped).Error)
				require.Zero(t, unstamped, "round %d", round)
			}
		})
	}
}
