package forwarding_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
)

// gaugeValue reads a gauge from reg (0 when absent).
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

// TestReplicasWakeEachOther publishes on one replica (its own database
// handle) while the dispatcher of another, whose tick is an hour, listens:
// the delivery goes out within moments, woken by NOTIFY at commit.
func TestReplicasWakeEachOther(t *testing.T) {
	t.Parallel()
	opts := storagetest.Options(t, storage.Postgres)
	open := func() *gorm.DB {
		db, err := storage.Open(context.Background(), opts)
		require.NoError(t, err)
		t.Cleanup(func() { storage.Close(db) })
		return db
	}
	db1 := open()
	_, err := storage.Migrate(context.Background(), db1)
	require.NoError(t, err)
	slowTick := func(c *forwarding.Config) { c.Dispatcher.Tick = time.Hour }
	listener := setup(t, db1, slowTick)
	publisher := setup(t, open(), slowTick)
	rc := newReceiver(t)
	publisher.subscribe(t, "acc_a", rc.URL, []string{"*"})

	reg := prometheus.NewRegistry()
	listener.disp = listener.svc.NewDispatcher(reg)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- listener.disp.Run(ctx) }()
	require.Eventually(t, func() bool { return gaugeValue(t, reg, "tributary_dispatcher_listening") == 1 },
		10*time.Second, time.Millisecond, "the dispatcher listens")

	for i := range 3 {
		start := time.Now()
		publisher.publish(t, "acc_a", contactEvent("x"))
		require.Eventually(t, func() bool { return len(rc.requests()) == i+1 }, 5*time.Second, time.Millisecond,
			"another replica's delivery is picked up without waiting for the tick")
		t.Logf("picked up %s after the other replica's commit", time.Since(start))
	}
	stop()
	require.NoError(t, <-done)
	require.Zero(t, gaugeValue(t, reg, "tributary_dispatcher_listening"))
}

func TestQueueStatsAndDeliveryLatency(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		rc := newReceiver(t)
		b.subscribe(t, "acc_a", rc.URL, []string{"*"})
		b.subscribe(t, "acc_b", rc.URL+"/b", []string{"*"})
		b.publish(t, "acc_a", contactEvent("1"), contactEvent("2"))
		b.publish(t, "acc_b", contactEvent("3"))
		b.clock.Add(30 * time.Second)
		st, err := b.svc.QueueStats(ctx)
		require.NoError(t, err)
		require.Equal(t, forwarding.QueueStats{Depth: 3, Due: 3, OldestDue: 30 * time.Second}, st)

		reg := prometheus.NewRegistry()
		b.disp = b.svc.NewDispatcher(reg)
		n, err := b.disp.DispatchDue(ctx)
		require.NoError(t, err)
		require.Equal(t, 3, n)

		st, err = b.svc.QueueStats(ctx)
		require.NoError(t, err)
		require.Equal(t, forwarding.QueueStats{}, st, "all delivered")

		mfs, err := reg.Gather()
		require.NoError(t, err)
		var found bool
		for _, mf := range mfs {
			if mf.GetName() == "tributary_delivery_capture_to_delivered_seconds" {
				h := mf.GetMetric()[0].GetHistogram()
				require.EqualValues(t, 3, h.GetSampleCount())
				require.InDelta(t, 90, h.GetSampleSum(), 0.001, "three deliveries, 30 s after their events")
				found = true
			}
		}
		require.True(t, found)
	})
}
