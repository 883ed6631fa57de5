package schedule

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// NewPollMetrics registers tributary_poll_seconds (a histogram of poll
// durations) and tributary_polls_total (a counter), both by outcome (the
// run's status: completed, failed, deferred, …), and returns the Observe
// function of Config that feeds them.
func NewPollMetrics(reg prometheus.Registerer) func(status string, took time.Duration) {
	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tributary_poll_seconds", Help: "Duration of one poll of one connection, by outcome.",
		Buckets: prometheus.ExponentialBuckets(0.01, 3, 12),
	}, []string{"outcome"})
	total := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tributary_polls_total", Help: "Polls finished, by outcome.",
	}, []string{"outcome"})
	reg.MustRegister(seconds, total)
	return func(status string, took time.Duration) {
		if status == "" {
			status = "unknown"
		}
		seconds.WithLabelValues(status).Observe(took.Seconds())
		total.WithLabelValues(status).Inc()
	}
}
