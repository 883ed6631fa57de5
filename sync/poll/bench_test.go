package poll

import (
	"fmt"
	"testing"
	"time"

	"github.com/tributary/tributary/storage/storagetest"
)

// BenchmarkPoll measures a first sync (silent) and a re-poll where every
// record changed (one event each), in records per second, pages of 100.
func BenchmarkPoll(b *testing.B) {
	const n = 2000
	for _, dialect := range storagetest.Dialects {
		b.Run(dialect, func(b *testing.B) {
			db := storagetest.New(b, dialect)
			for i := range b.N {
				bb := setup(b, db)
				bb.app.pageSize = 100
				for j := range n {
					bb.app.set(fmt.Sprintf("c%05d", j), "a@x.test", t0.Add(time.Duration(j)*time.Millisecond))
				}
				start := time.Now()
				if _, err := bb.runner.Run(b.Context(), bb.conn(b)); err != nil {
					b.Fatal(err)
				}
				first := time.Since(start)
				for j := range n {
					bb.app.set(fmt.Sprintf("c%05d", j), fmt.Sprintf("b%d@x.test", i), t0.Add(time.Hour+time.Duration(j)*time.Millisecond))
				}
				bb.clk.Add(2 * time.Hour)
				start = time.Now()
				if _, err := bb.runner.Run(b.Context(), bb.conn(b)); err != nil {
					b.Fatal(err)
				}
				second := time.Since(start)
				if got := len(dataEvents(bb.pub.take())); got != n {
					b.Fatalf("%d events, want %d", got, n)
				}
				b.ReportMetric(float64(n)/first.Seconds(), "silent-rec/s")
				b.ReportMetric(float64(n)/second.Seconds(), "updated-rec/s")
			}
		})
	}
}
