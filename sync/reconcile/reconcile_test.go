package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func contact(id, email string, at time.Time) models.Record {
	a := at
	return models.Record{Object: "contacts", RemoteID: id, RemoteUpdatedAt: at,
		Data: &models.Contact{Common: models.Common{RemoteID: id, RemoteUpdatedAt: &a}, FirstName: "Ada", Email: email}}
}

func del(id string, at time.Time) models.Record {
	return models.Record{Object: "contacts", RemoteID: id, RemoteUpdatedAt: at, Deleted: true}
}

func TestHashIgnoresVolatileAndIsCanonical(t *testing.T) {
	h1, f1, err := Hash(contact("1", "a@x", t0).Data)
	require.NoError(t, err)
	c := contact("1", "a@x", t0.Add(time.Hour)).Data.(*models.Contact)
	c.RemoteData = json.RawMessage(`{"b":1, "a":2}`)
	h2, _, err := Hash(c)
	require.NoError(t, err)
	assert.Equal(t, h1, h2)
	assert.Len(t, h1, 64)
	assert.NotContains(t, f1, "remoteUpdatedAt")
	h3, _, _ := Hash(map[string]any{"x": json.RawMessage(`{"b": 1, "a": 2}`)})
	h4, _, _ := Hash(map[string]any{"x": json.RawMessage(`{"a":2,"b":1}`)})
	assert.Equal(t, h3, h4)
}

func TestDiff(t *testing.T) {
	changed, prev := Diff(
		map[string]json.RawMessage{"a": []byte(`1`), "b": []byte(`2`), "c": []byte(`3`)},
		map[string]json.RawMessage{"a": []byte(`1`), "b": []byte(`5`), "d": []byte(`4`)})
	assert.Equal(t, []string{"b", "c", "d"}, changed)
	assert.Equal(t, map[string]json.RawMessage{"b": []byte(`2`), "c": []byte(`3`)}, prev)
}

func TestApply(t *testing.T) {
	type step struct {
		rec  models.Record
		gen  int64
		kind string
		// changed fields expected for updates
		changed  []string
		previous map[string]string
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"created", []step{{rec: contact("1", "a@x", t0), kind: Created}}},
		{"updated with changed fields and previous", []step{
			{rec: contact("1", "a@x", t0), kind: Created},
			{rec: contact("1", "b@x", t0.Add(time.Minute)), kind: Updated, changed: []string{"email"}, previous: map[string]string{"email": `"a@x"`}},
		}},
		{"same hash is a no-op", []step{
			{rec: contact("1", "a@x", t0), kind: Created},
			{rec: contact("1", "a@x", t0), kind: ""},
		}},
		{"volatile-only change is a no-op", []step{
			{rec: contact("1", "a@x", t0), kind: Created},
			{rec: contact("1", "a@x", t0.Add(time.Hour)), kind: ""},
		}},
		{"older version ignored", []step{
			{rec: contact("1", "a@x", t0), kind: Created},
			{rec: contact("1", "old@x", t0.Add(-time.Minute)), kind: ""},
			{rec: contact("1", "a@x", t0), kind: ""},
		}},
		{"revert advances the version: a late older version is ignored", []step{
			{rec: contact("1", "a@x", t0), kind: Created},
			// t0+2m reverted the t0+1m change: same content as stored.
			{rec: contact("1", "a@x", t0.Add(2*time.Minute)), kind: ""},
			{rec: contact("1", "b@x", t0.Add(time.Minute)), kind: ""},
			{rec: contact("1", "a@x", t0.Add(2*time.Minute)), kind: ""},
		}},
		{"re-delete advances the version: a late older update is ignored", []step{
			{rec: contact("1", "a@x", t0), kind: Created},
			{rec: del("1", t0.Add(time.Minute)), kind: Deleted},
			{rec: del("1", t0.Add(3*time.Minute)), kind: ""},
			{rec: contact("1", "b@x", t0.Add(2*time.Minute)), kind: ""},
		}},
		{"delete and re-delete", []step{
			{rec: contact("1", "a@x", t0), kind: Created},
			{rec: del("1", t0.Add(time.Minute)), kind: Deleted},
			{rec: del("1", t0.Add(2*time.Minute)), kind: ""},
		}},
		{"delete of unknown record is silent", []step{
			{rec: del("9", t0), kind: ""},
			{rec: contact("9", "old@x", t0.Add(-time.Minute)), kind: ""},
		}},
		{"undelete emits created", []step{
			{rec: contact("1", "a@x", t0), kind: Created},
			{rec: del("1", t0.Add(time.Minute)), kind: Deleted},
			{rec: contact("1", "a@x", t0.Add(2*time.Minute)), kind: Created},
		}},
		{"zero remote time is never older", []step{
			{rec: contact("1", "a@x", t0), kind: Created},
			{rec: del("1", time.Time{}), kind: Deleted},
		}},
	}
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		for ci, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := &Reconciler{}
				conn := fmt.Sprintf("conn%d", ci)
				for i, s := range tc.steps {
					var c Change
					err := db.Transaction(func(tx *gorm.DB) error {
						var err error
						c, err = r.Apply(tx, conn, s.rec, s.gen)
						return err
					})
					require.NoError(t, err)
					assert.Equal(t, s.kind, c.Kind, "step %d", i)
					if s.kind == Updated {
						assert.Equal(t, s.changed, c.ChangedFields)
						prev := map[string]string{}
						for k, v := range c.Previous {
							prev[k] = string(v)
						}
						assert.Equal(t, s.previous, prev)
					}
					if s.kind != "" {
						assert.Equal(t, s.rec.RemoteID, c.RemoteID)
						assert.NotEmpty(t, c.Payload)
					}
				}
			})
		}
	})
}

// TestPageRevertThenLateOlderVersionIsIgnored is the page path (one
// statement for the whole page on PostgreSQL) of the revert case.
func TestPageRevertThenLateOlderVersionIsIgnored(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		require.Len(t, applyPage(t, db, page(50, "a@x", t0), 0), 50)
		require.Empty(t, applyPage(t, db, page(50, "a@x", t0.Add(2*time.Minute)), 0), "a revert to the stored content emits nothing")
		var stored time.Time
		require.NoError(t, db.Raw("SELECT remote_updated_at FROM snapshots WHERE connection_id = 'c' AND remote_id = 'r0007'").Row().Scan(&stored))
		require.True(t, stored.Equal(t0.Add(2*time.Minute)), "the version advanced: %s", stored)
		require.Empty(t, applyPage(t, db, page(50, "b@x", t0.Add(time.Minute)), 0), "late older versions are not emitted as updated")
		cs := applyPage(t, db, page(50, "c@x", t0.Add(3*time.Minute)), 0)
		require.Len(t, cs, 50)
		require.Equal(t, Updated, cs[0].Kind)
		require.Equal(t, map[string]json.RawMessage{"email": json.RawMessage(`"a@x"`)}, cs[0].Previous, "the stored content was never overwritten by the older version")
	})
}

func page(n int, email string, at time.Time) []models.Record {
	recs := make([]models.Record, n)
	for i := range recs {
		recs[i] = contact(fmt.Sprintf("r%04d", i), email, at)
	}
	return recs
}

func applyPage(t *testing.T, db *gorm.DB, recs []models.Record, gen int64) []Change {
	t.Helper()
	var cs []Change
	require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
		var err error
		cs, err = (&Reconciler{}).ApplyPage(tx, "c", recs, gen)
		return err
	}))
	return cs
}

func TestApplyPageIdempotentAndFullScan(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		recs := page(450, "a@x", t0)
		cs := applyPage(t, db, recs, 1)
		require.Len(t, cs, 450)
		assert.Equal(t, Created, cs[0].Kind)
		assert.Equal(t, "r0000", cs[0].RemoteID)
		assert.Empty(t, applyPage(t, db, recs, 1), "re-applying a page emits nothing")

		// Same record twice in a page: created then updated.
		twice := []models.Record{contact("z", "1@x", t0), contact("z", "2@x", t0.Add(time.Second))}
		cs = applyPage(t, db, twice, 1)
		require.Len(t, cs, 2)
		assert.Equal(t, Created, cs[0].Kind)
		assert.Equal(t, Updated, cs[1].Kind)

		// Scan 2 sees everything: nothing deleted.
		all := append(page(450, "a@x", t0), contact("z", "2@x", t0.Add(time.Second)))
		assert.Empty(t, applyPage(t, db, all, 2))
		var dels []Change
		require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
			var err error
			dels, err = (&Reconciler{}).MarkUnseenDeleted(tx, "c", "contacts", 2)
			return err
		}))
		assert.Empty(t, dels)

		// Scan 3 misses r0000 and r0001, and one record changes.
		seen := page(450, "a@x", t0)[2:]
		seen[0] = contact("r0002", "new@x", t0.Add(time.Minute))
		seen = append(seen, contact("z", "2@x", t0.Add(time.Second)))
		cs = applyPage(t, db, seen, 3)
		require.Len(t, cs, 1)
		assert.Equal(t, []string{"email"}, cs[0].ChangedFields)
		require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
			var err error
			dels, err = (&Reconciler{}).MarkUnseenDeleted(tx, "c", "contacts", 3)
			return err
		}))
		require.Len(t, dels, 2)
		assert.Equal(t, Deleted, dels[0].Kind)
		assert.Equal(t, "r0000", dels[0].RemoteID)
		assert.Equal(t, "r0001", dels[1].RemoteID)
		assert.NotEmpty(t, dels[0].Payload)
		// Marking again deletes nothing more.
		require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
			var err error
			dels, err = (&Reconciler{}).MarkUnseenDeleted(tx, "c", "contacts", 3)
			return err
		}))
		assert.Empty(t, dels)
	})
}

// Two transactions reconciling the same record at the same time must emit
// exactly one change.
func TestConcurrentApplyEmitsOnce(t *testing.T) {
	for _, dialect := range storagetest.Dialects {
		t.Run(dialect, func(t *testing.T) {
			opts := storagetest.Options(t, dialect)
			db1, err := storage.Open(context.Background(), opts)
			require.NoError(t, err)
			t.Cleanup(func() { _ = storage.Close(db1) })
			_, err = storage.Migrate(context.Background(), db1)
			require.NoError(t, err)
			db2, err := storage.Open(context.Background(), opts)
			require.NoError(t, err)
			t.Cleanup(func() { _ = storage.Close(db2) })

			for round := 0; round < 20; round++ {
				id := fmt.Sprintf("x%d", round)
				for _, rec := range []models.Record{contact(id, "a@x", t0), contact(id, "b@x", t0.Add(time.Minute))} {
					var mu sync.Mutex
					var kinds []string
					var wg sync.WaitGroup
					start := make(chan struct{})
					for _, db := range []*gorm.DB{db1, db2} {
						wg.Add(1)
						go func() {
							defer wg.Done()
							<-start
							err := db.Transaction(func(tx *gorm.DB) error {
								cs, err := (&Reconciler{}).ApplyPage(tx, "c", []models.Record{rec}, 0)
								if err != nil {
									return err
								}
								time.Sleep(2 * time.Millisecond)
								mu.Lock()
								for _, c := range cs {
									kinds = append(kinds, c.Kind)
								}
								mu.Unlock()
								return nil
							})
							assert.NoError(t, err)
						}()
					}
					close(start)
					wg.Wait()
					assert.Len(t, kinds, 1, "round %d %s: %v", round, rec.Data.(*models.Contact).Email, kinds)
				}
			}
		})
	}
}

func BenchmarkReconcileFirstSync(b *testing.B) {
	for _, dialect := range storagetest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			db := storagetest.New(b, dialect)
			const pageSize = 200
			r := &Reconciler{}
			n := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				recs := make([]models.Record, pageSize)
				for j := range recs {
					recs[j] = contact(fmt.Sprintf("b%d-%d", i, j), "a@x", t0)
				}
				err := db.Transaction(func(tx *gorm.DB) error {
					_, err := r.ApplyPage(tx, "c", recs, 1)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				n += pageSize
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
