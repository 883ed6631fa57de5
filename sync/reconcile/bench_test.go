package reconcile

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
)

var benchPageSizes = []int{200, 1000}

// BenchmarkFirstSync reconciles pages of never-seen contacts, one
// transaction per page (generation 1), and reports records/s.
func BenchmarkFirstSync(b *testing.B) {
	for _, dialect := range storagetest.Dialects {
		for _, size := range benchPageSizes {
			b.Run(fmt.Sprintf("%s/page=%d", dialect, size), func(b *testing.B) {
				db := storagetest.New(b, dialect)
				r, g := &Reconciler{}, simGen{}
				page := make([]models.Record, size)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for j := range page {
						page[j] = g.record(i*size+j, 0)
					}
					benchApply(b, db, r, page, 1, size)
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

// BenchmarkRepoll1Percent re-polls (full scan, a new generation per pass) a
// synced set of contacts page by page, 1% of them changed in each pass, and
// reports records/s scanned. TRIBUTARY_BENCH_RECORDS sets the size of the
// synced set (default 20 pages).
func BenchmarkRepoll1Percent(b *testing.B) {
	for _, dialect := range storagetest.Dialects {
		for _, size := range benchPageSizes {
			b.Run(fmt.Sprintf("%s/page=%d", dialect, size), func(b *testing.B) {
				db := storagetest.New(b, dialect)
				total := 20 * size
				if n, err := strconv.Atoi(os.Getenv("TRIBUTARY_BENCH_RECORDS")); err == nil && n >= size {
					total = n / size * size
				}
				pages := total / size
				r, g := &Reconciler{}, simGen{fraction: 0.01}
				page := make([]models.Record, size)
				for p := 0; p < pages; p++ {
					for j := range page {
						page[j] = g.record(p*size+j, 0)
					}
					benchApply(b, db, r, page, 1, size)
				}
				variant := make([]int32, total)
				changed, updated := 0, 0
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					pass := i/pages + 1
					base := (i % pages) * size
					for j := range page {
						n := base + j
						if g.changedIn(n, pass) {
							variant[n] = int32(pass)
							changed++
						}
						page[j] = g.record(n, int(variant[n]))
					}
					updated += benchApply(b, db, r, page, int64(pass)+1, -1)
				}
				b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "records/s")
				b.StopTimer()
				if updated != changed {
					b.Fatalf("%d records changed, %d updates", changed, updated)
				}
			})
		}
	}
}

// benchApply applies one page in its own transaction and returns the number
// of changes; want >= 0 checks it.
func benchApply(b *testing.B, db *gorm.DB, r *Reconciler, page []models.Record, gen int64, want int) int {
	var n int
	err := db.Transaction(func(tx *gorm.DB) error {
		cs, err := r.ApplyPage(tx, "bench", page, gen)
		n = len(cs)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	if want >= 0 && n != want {
		b.Fatalf("%d changes, want %d", n, want)
	}
	return n
}

// TestSimulate runs a small simulation on both databases and checks the
// counts; TRIBUTARY_SIM_RECORDS runs a bigger one and logs the figures.
func TestSimulate(t *testing.T) {
	records := 5000
	if n, err := strconv.Atoi(os.Getenv("TRIBUTARY_SIM_RECORDS")); err == nil && n > 0 {
		records = n
	}
	pageSize := 1000
	if n, err := strconv.Atoi(os.Getenv("TRIBUTARY_SIM_PAGE")); err == nil && n > 0 {
		pageSize = n
	}
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		if ff := os.Getenv("TRIBUTARY_SIM_FILLFACTOR"); ff != "" && storage.IsPostgres(db) {
			// Experiment only: free space in each page lets the re-poll's
			// generation stamps be HOT updates.
			if _, err := strconv.Atoi(ff); err != nil {
				t.Fatal(err)
			}
			if err := db.Exec("ALTER TABLE snapshots SET (fillfactor = " + ff + ")").Error; err != nil {
				t.Fatal(err)
			}
		}
		res, err := Simulate(context.Background(), db, "sim", records, 0.01, pageSize)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []struct {
			name string
			ph   SimPhase
		}{{"first sync", res.FirstSync}, {"re-poll", res.Repoll}} {
			name, ph := p.name, p.ph
			t.Logf("%s page %d: %d records in %v = %.0f records/s; created %d updated %d deleted %d (changed %d); HeapInuse MiB %v",
				name, pageSize, ph.Generated, ph.Elapsed.Round(1e6), ph.RecordsPerSec, ph.Created, ph.Updated, ph.Deleted, ph.Changed, mib(ph.HeapInuse))
		}
		if res.FirstSync.Created != records || res.FirstSync.Updated+res.FirstSync.Deleted != 0 {
			t.Fatalf("first sync: %+v", res.FirstSync)
		}
		if res.Repoll.Changed == 0 || res.Repoll.Updated != res.Repoll.Changed || res.Repoll.Created+res.Repoll.Deleted != 0 {
			t.Fatalf("re-poll: %+v", res.Repoll)
		}
	})
}

func mib(xs []uint64) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strconv.FormatFloat(float64(x)/(1<<20), 'f', 1, 64)
	}
	return out
}
