package poll

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/storage/storagetest"
)

// TestEventTimestampIsTheProviderChangeTime: on a poll long after the
// change, eventTimestamp is still the provider's modification (or deletion)
// time and detectedAt the poll; a deletion found by a full scan has no
// provider time, so it leaves eventTimestamp to Publish (detection time).
func TestEventTimestampIsTheProviderChangeTime(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		firstSync(t, b, 3) // the clock is now t0+1h
		b.app.set("c1", "changed@x.test", t0.Add(10*time.Minute))
		b.app.set("c9", "new@x.test", t0.Add(20*time.Minute))
		b.app.remove("c2", t0.Add(30*time.Minute), true)
		b.clk.Add(11 * time.Hour) // a 12 h poll
		polled := b.clk.Now()
		_, err := b.run(t)
		require.NoError(t, err)
		envs := dataEvents(b.pub.take())
		require.Equal(t, []string{"crm/contacts:deleted", "crm/contacts:updated", "crm/contacts:created"}, topicsOf(envs))
		for i, want := range []time.Time{t0.Add(30 * time.Minute), t0.Add(10 * time.Minute), t0.Add(20 * time.Minute)} {
			assert.Equal(t, want, envs[i].EventTimestamp.UTC(), "%s", topicsOf(envs)[i])
			assert.Equal(t, polled, envs[i].DetectedAt.UTC())
		}

		b.app.windowExpired = true
		b.app.remove("c3", time.Time{}, false)
		b.clk.Add(time.Hour)
		_, err = b.run(t)
		require.NoError(t, err)
		envs = dataEvents(b.pub.take())
		require.Equal(t, []string{"crm/contacts:deleted"}, topicsOf(envs))
		assert.True(t, envs[0].EventTimestamp.IsZero(), "no provider time: Publish stamps detection time")
		assert.Equal(t, b.clk.Now(), envs[0].DetectedAt.UTC())
	})
}
