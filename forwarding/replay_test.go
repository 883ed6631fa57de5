package forwarding_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// TestReplayRange re-delivers the events of a time range that match the
// webhook's topics as new deliveries; other accounts' webhooks are not
// found, bad ranges are 422s, and nothing is queued for them.
func TestReplayRange(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		rc := newReceiver(t)
		sub := b.subscribe(t, "acc_a", rc.URL, []string{"crm/contacts"})
		t0 := b.clock.Now()
		b.publish(t, "acc_a", contactEvent("1")) // t0
		b.clock.Advance(time.Hour)
		b.publish(t, "acc_a", contactEvent("2"), &models.Envelope{Topic: "crm/leads", UpdateType: models.UpdateCreated,
			DataPayload: json.RawMessage(`{"remoteId":"l"}`)}) // t0+1h, the lead is not the webhook's topic
		b.clock.Advance(time.Hour)
		b.publish(t, "acc_a", contactEvent("3")) // t0+2h
		b.publish(t, "acc_b", contactEvent("4"))
		b.drain(t)
		require.Len(t, rc.requests(), 3)

		n, err := b.svc.ReplayRange(ctx, "acc_a", sub.ID, t0.Add(30*time.Minute), t0.Add(2*time.Hour))
		require.NoError(t, err)
		require.Equal(t, 1, n, "only contact 2 lies in [t0+30m, t0+2h)")
		b.drain(t)
		got := rc.requests()
		require.Len(t, got, 4)
		var ev models.Envelope
		require.NoError(t, json.Unmarshal(got[3].Body, &ev))
		require.JSONEq(t, `{"remoteId":"2","email":"a@example.com"}`, string(ev.DataPayload))

		n, err = b.svc.ReplayRange(ctx, "acc_a", sub.ID, t0, time.Time{}) // until defaults to now
		require.NoError(t, err)
		require.Equal(t, 3, n)
		require.Len(t, b.deliveries(t, "subscription_id = ?", sub.ID), 7)

		for _, tc := range []struct {
			name         string
			account, id  string
			since, until time.Time
			code, field  string
		}{
			{"other account's webhook", "acc_b", sub.ID, t0, time.Time{}, models.ErrCodeNotFound, ""},
			{"no since", "acc_a", sub.ID, time.Time{}, t0, models.ErrCodeUnprocessable, "since"},
			{"until before since", "acc_a", sub.ID, t0, t0.Add(-time.Minute), models.ErrCodeUnprocessable, "until"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := b.svc.ReplayRange(ctx, tc.account, tc.id, tc.since, tc.until)
				require.Equal(t, tc.code, models.ErrorCode(err), "%v", err)
				if tc.field != "" {
					var me *models.Error
					require.ErrorAs(t, err, &me)
					require.Equal(t, tc.field, me.Field)
				}
			})
		}
		require.Len(t, b.deliveries(t, "subscription_id = ?", sub.ID), 7, "refused replays queue nothing")

		// A paused webhook (pauseMode drop) cannot take a replay.
		_, err = b.svc.UpdateSubscription(ctx, "acc_a", sub.ID, forwarding.SubscriptionInput{Active: ptr(false)})
		require.NoError(t, err)
		_, err = b.svc.ReplayRange(ctx, "acc_a", sub.ID, t0, time.Time{})
		require.Equal(t, models.ErrCodeConflict, models.ErrorCode(err))
	})
}

// TestReplayRangeLimit refuses a range holding more than the replay bound
// (lowered to 20 here; MaxReplayEvents by default) with a 422 naming the
// limit, and queues nothing.
func TestReplayRangeLimit(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db, func(c *forwarding.Config) { c.MaxReplayEvents = 20 })
		ctx := context.Background()
		sub := b.subscribe(t, "acc_a", "http://127.0.0.1:1/", []string{"sync/*"})
		t0 := b.clock.Now()
		// Events of a topic the webhook does not take still count: the bound
		// is on the work the range costs.
		evs := make([]*models.Envelope, 21)
		for i := range evs {
			evs[i] = contactEvent("x")
		}
		b.publish(t, "acc_a", evs...)
		_, err := b.svc.ReplayRange(ctx, "acc_a", sub.ID, t0, time.Time{})
		require.Equal(t, models.ErrCodeUnprocessable, models.ErrorCode(err))
		require.Contains(t, err.Error(), "more than 20 events")
		require.Empty(t, b.deliveries(t, "subscription_id = ?", sub.ID))
		b.clock.Advance(time.Minute)
		b.publish(t, "acc_a", &models.Envelope{Topic: "sync/completed", UpdateType: models.UpdateCreated})
		n, err := b.svc.ReplayRange(ctx, "acc_a", sub.ID, t0.Add(time.Second), time.Time{})
		require.NoError(t, err)
		require.Equal(t, 1, n)
	})
}
