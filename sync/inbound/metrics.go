package inbound

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"
)

// Metrics are the inbox's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	batchItems   prometheus.Histogram
	batchSeconds prometheus.Histogram
	eventsTotal  prometheus.Counter
	splitsTotal  prometheus.Counter
	failures     *prometheus.CounterVec
}

// NewMetrics registers the inbox metrics with reg: batch sizes and
// durations, events published, batch splits, item failures by outcome, and
// — read from db at each scrape — the queue depth and the age of the oldest
// unprocessed item.
func NewMetrics(reg prometheus.Registerer, db *gorm.DB) *Metrics {
	m := &Metrics{
		batchItems: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tributary_inbox_batch_items", Help: "Inbox items claimed per processed batch.",
			Buckets: []float64{1, 5, 10, 25, 50, 100, 200, 500},
		}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tributary_inbox_batch_seconds", Help: "Time to prepare and commit one inbox batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		eventsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tributary_inbox_events_total", Help: "Events published from native webhooks.",
		}),
		splitsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tributary_inbox_batch_splits_total", Help: "Inbox batches whose transaction failed and were split in halves.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_inbox_item_failures_total", Help: "Inbox items that failed, by outcome (retry, given_up).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.batchItems, m.batchSeconds, m.eventsTotal, m.splitsTotal, m.failures, &queueCollector{db: db})
	return m
}

func (m *Metrics) batchDone(items int, d time.Duration) {
	if m == nil {
		return
	}
	m.batchItems.Observe(float64(items))
	m.batchSeconds.Observe(d.Seconds())
}

func (m *Metrics) events(n int) {
	if m != nil {
		m.eventsTotal.Add(float64(n))
	}
}

func (m *Metrics) split() {
	if m != nil {
		m.splitsTotal.Inc()
	}
}

func (m *Metrics) failed(outcome string) {
	if m != nil {
		m.failures.WithLabelValues(outcome).Inc()
	}
}

var (
	pendingDesc = prometheus.NewDesc("tributary_inbox_pending", "Native webhooks stored and not yet processed.", nil, nil)
	oldestDesc  = prometheus.NewDesc("tributary_inbox_oldest_pending_seconds",
		"Age of the oldest unprocessed native webhook (0 when none).", nil, nil)
)

// queueCollector reads the inbox queue at scrape time (index
// idx_inbox_pending holds only unprocessed items).
type queueCollector struct{ db *gorm.DB }

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingDesc
	ch <- oldestDesc
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var row struct {
		N      int64
		Oldest *time.Time
	}
	err := c.db.WithContext(ctx).Raw(`SELECT count(*) AS n, min(received_at) AS oldest FROM inbox_items WHERE processed_at IS NULL`).Scan(&row).Error
	if err != nil {
		ch <- prometheus.NewInvalidMetric(pendingDesc, err)
		return
	}
	age := 0.0
	if row.Oldest != nil {
		age = max(0, time.Since(*row.Oldest).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(row.N))
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, age)
}
