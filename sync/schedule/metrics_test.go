package schedule

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
	"github.com/tributary/tributary/sync/poll"
)

// Every finished poll is counted and timed by its outcome.
func TestPollMetricsByOutcome(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		reg := prometheus.NewRegistry()
		b := setup(t, db, func(c *Config) { c.Observe = NewPollMetrics(reg) })
		b.conn(t, models.ConnectionActive, t0, nil)
		b.conn(t, models.ConnectionActive, t0, nil)
		failed := b.conn(t, models.ConnectionActive, t0, nil)
		b.runner.results[failed] = poll.Result{Status: poll.RunFailed, Error: "malformed page"}
		require.Equal(t, 3, b.tick(t))

		families, err := reg.Gather()
		require.NoError(t, err)
		got := map[string]float64{}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				outcome := m.GetLabel()[0].GetValue()
				switch f.GetName() {
				case "tributary_polls_total":
					got["total "+outcome] = m.GetCounter().GetValue()
				case "tributary_poll_seconds":
					got["seconds "+outcome] = float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
		require.Equal(t, map[string]float64{"total completed": 2, "total failed": 1, "seconds completed": 2, "seconds failed": 1}, got)
	})
}
