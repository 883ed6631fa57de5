package reconcile

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// A page gives the same changes, in the same order, and leaves the same
// snapshots as applying its records one by one — with more changed records
// than one batched statement holds, and every kind of record mixed in.
func TestApplyPageMatchesOneByOne(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		r := &Reconciler{Now: func() time.Time { return t0 }}
		var pages [][]models.Record
		base := make([]models.Record, 400)
		for i := range base {
			base[i] = contact(fmt.Sprintf("m%04d", i), "a@x", t0)
		}
		pages = append(pages, base)
		var next []models.Record
		for i := range 400 {
			id := fmt.Sprintf("m%04d", i)
			switch i % 8 {
			case 0, 1, 2: // changed (well over updateChunk of them)
				next = append(next, contact(id, fmt.Sprintf("%d@x", i), t0.Add(time.Minute)))
			case 3: // older version
				next = append(next, contact(id, "old@x", t0.Add(-time.Minute)))
			case 4: // delete without data
				next = append(next, del(id, t0.Add(time.Minute)))
			case 5: // volatile-only change
				next = append(next, contact(id, "a@x", t0.Add(time.Hour)))
			case 6: // zero remote time with a change
				next = append(next, contact(id, "zero@x", time.Time{}))
			}
		}
		next = append(next, del("unknown", t0), contact("m0001", "again@x", t0.Add(2*time.Minute)), contact("new", "n@x", t0))
		pages = append(pages, next)
		var undelete []models.Record
		for i := 0; i < 400; i += 8 {
			undelete = append(undelete, contact(fmt.Sprintf("m%04d", i+4), "back@x", t0.Add(2*time.Minute)))
		}
		pages = append(pages, undelete)

		for pi, page := range pages {
			gen := int64(pi + 1)
			var paged, single []Change
			require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
				var err error
				paged, err = r.ApplyPage(tx, "paged", page, gen)
				return err
			}))
			for _, rec := range page {
				require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
					c, err := r.Apply(tx, "single", rec, gen)
					if c.Kind != "" {
						single = append(single, c)
					}
					return err
				}))
			}
			require.Equal(t, single, paged, "page %d", pi)
		}
		type row struct {
			Object, RemoteID, ContentHash string
			Payload                       []byte
			RemoteUpdatedAt               time.Time
			Deleted                       bool
			ScanGeneration                int64
		}
		load := func(conn string) []row {
			var rows []row
			require.NoError(t, db.Raw(`SELECT object, remote_id, content_hash, payload, remote_updated_at, deleted, scan_generation
FROM snapshots WHERE connection_id = ? ORDER BY object, remote_id`, conn).Scan(&rows).Error)
			return rows
		}
		want, got := load("single"), load("paged")
		require.Len(t, got, 402)
		require.Equal(t, want, got)
	})
}
