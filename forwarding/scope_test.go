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

func addConnection(t *testing.T, db *gorm.DB, account, id, user string) {
	t.Helper()
	require.NoError(t, db.Create(&models.Connection{ID: id, AccountID: account, App: "hubspot", UserID: user,
		Status: "active", NextSyncAt: time.Now()}).Error)
}

func orderEvent(conn, user, payload string) *models.Envelope {
	return &models.Envelope{Topic: "commerce/orders", UpdateType: models.UpdateUpdated, ConnectionID: conn, UserID: user,
		Source: models.SourcePoll, DataPayload: json.RawMessage(payload)}
}

// TestSubscriptionScopes delivers to a scoped subscription only the events
// of its connections and users whose dataPayload holds its filter values.
func TestSubscriptionScopes(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		addConnection(t, db, "acc_a", "con_1", "u1")
		addConnection(t, db, "acc_a", "con_2", "u2")
		addConnection(t, db, "acc_b", "con_b", "u1")
		rc := newReceiver(t)
		subs := map[string]*forwarding.Subscription{
			"all": b.subscribe(t, "acc_a", rc.URL, []string{"*"}),
			"con_1": b.subscribe(t, "acc_a", rc.URL, []string{"*"}, func(in *forwarding.SubscriptionInput) {
				in.ConnectionIDs = &[]string{"con_1"}
			}),
			"u2": b.subscribe(t, "acc_a", rc.URL, []string{"*"}, func(in *forwarding.SubscriptionInput) {
				in.UserIDs = &[]string{"u2"}
			}),
			"paid": b.subscribe(t, "acc_a", rc.URL, []string{"*"}, func(in *forwarding.SubscriptionInput) {
				in.Filters = &map[string]any{"dataPayload.status": "paid"}
			}),
			"nested": b.subscribe(t, "acc_a", rc.URL, []string{"*"}, func(in *forwarding.SubscriptionInput) {
				in.Filters = &map[string]any{"dataPayload.total.amount": float64(10), "dataPayload.test": false}
				in.ConnectionIDs = &[]string{"con_1", "con_2"}
			}),
		}
		require.Equal(t, []string{"con_1"}, subs["con_1"].ConnectionIDs)
		require.Equal(t, map[string]any{"dataPayload.status": "paid"}, subs["paid"].Filters)
		require.Empty(t, subs["all"].ConnectionIDs)

		b.publish(t, "acc_a",
			orderEvent("con_1", "u1", `{"remoteId":"1","status":"paid","total":{"amount":10},"test":false}`),   // all con_1 paid nested
			orderEvent("con_2", "u2", `{"remoteId":"2","status":"open","total":{"amount":10.0},"test":false}`), // all u2 nested
			orderEvent("con_2", "u2", `{"remoteId":"3","status":"paid","total":{"amount":"10"}}`),              // all u2 paid
			orderEvent("con_1", "u1", `{"remoteId":"4","status":["paid"],"total":10}`),                         // all con_1
		)
		// Account B's events on its connection reach none of A's webhooks.
		b.publish(t, "acc_b", orderEvent("con_b", "u1", `{"remoteId":"5","status":"paid"}`))
		want := map[string][]string{"all": {"1", "2", "3", "4"}, "con_1": {"1", "4"}, "u2": {"2", "3"},
			"paid": {"1", "3"}, "nested": {"1", "2"}}
		for name, sub := range subs {
			var got []string
			for _, d := range b.deliveries(t, "subscription_id = ?", sub.ID) {
				var ev models.Event
				require.NoError(t, db.Take(&ev, "id = ?", d.EventID).Error)
				var env struct {
					DataPayload struct{ RemoteID string } `json:"dataPayload"`
				}
				require.NoError(t, json.Unmarshal(ev.Body, &env))
				got = append(got, env.DataPayload.RemoteID)
			}
			require.ElementsMatch(t, want[name], got, name)
		}

		// A replay applies the same scopes.
		n, err := b.svc.ReplayRange(context.Background(), "acc_a", subs["paid"].ID, b.clock.Now().Add(-time.Hour), time.Time{})
		require.NoError(t, err)
		require.Equal(t, 2, n)

		// Clearing a scope widens the subscription again.
		v, err := b.svc.UpdateSubscription(context.Background(), "acc_a", subs["con_1"].ID,
			forwarding.SubscriptionInput{ConnectionIDs: &[]string{}})
		require.NoError(t, err)
		require.Empty(t, v.ConnectionIDs)
	})
}

// TestSubscriptionScopeValidation answers 422 naming the field for bad
// scopes, another account's connection included, and stores nothing.
func TestSubscriptionScopeValidation(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		addConnection(t, db, "acc_a", "con_a", "u1")
		addConnection(t, db, "acc_b", "con_b", "u1")
		many := make([]string, forwarding.MaxScopeIDs+1)
		for i := range many {
			many[i] = "u" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		}
		for _, tc := range []struct {
			name  string
			in    func(*forwarding.SubscriptionInput)
			field string
		}{
			{"another account's connection", func(in *forwarding.SubscriptionInput) { in.ConnectionIDs = &[]string{"con_a", "con_b"} }, "connectionIds"},
			{"unknown connection", func(in *forwarding.SubscriptionInput) { in.ConnectionIDs = &[]string{"con_nope"} }, "connectionIds"},
			{"empty user id", func(in *forwarding.SubscriptionInput) { in.UserIDs = &[]string{""} }, "userIds"},
			{"too many users", func(in *forwarding.SubscriptionInput) { in.UserIDs = &many }, "userIds"},
			{"filter not on dataPayload", func(in *forwarding.SubscriptionInput) { in.Filters = &map[string]any{"topic": "x"} }, "filters"},
			{"filter empty segment", func(in *forwarding.SubscriptionInput) { in.Filters = &map[string]any{"dataPayload..a": "x"} }, "filters"},
			{"filter object value", func(in *forwarding.SubscriptionInput) {
				in.Filters = &map[string]any{"dataPayload.a": map[string]any{"b": 1}}
			}, "filters"},
			{"filter null value", func(in *forwarding.SubscriptionInput) { in.Filters = &map[string]any{"dataPayload.a": nil} }, "filters"},
			{"pause mode", func(in *forwarding.SubscriptionInput) { in.PauseMode = ptr("hold") }, "pauseMode"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				addr, topics := "http://127.0.0.1:1/", []string{"*"}
				in := forwarding.SubscriptionInput{Address: &addr, Topic: &topics}
				tc.in(&in)
				_, err := b.svc.CreateSubscription(context.Background(), "acc_a", in)
				var me *models.Error
				require.ErrorAs(t, err, &me)
				require.Equal(t, models.ErrCodeUnprocessable, me.Code)
				require.Equal(t, tc.field, me.Field, me.Message)
			})
		}
		var n int64
		require.NoError(t, db.Model(&models.Subscription{}).Count(&n).Error)
		require.Zero(t, n)

		// PATCH too: B cannot scope its webhook to A's connection.
		sub := b.subscribe(t, "acc_b", "http://127.0.0.1:1/", []string{"*"})
		_, err := b.svc.UpdateSubscription(context.Background(), "acc_b", sub.ID, forwarding.SubscriptionInput{ConnectionIDs: &[]string{"con_a"}})
		require.Equal(t, models.ErrCodeUnprocessable, models.ErrorCode(err))
		got, err := b.svc.GetSubscription(context.Background(), "acc_b", sub.ID)
		require.NoError(t, err)
		require.Empty(t, got.ConnectionIDs)
	})
}

// TestPauseModeQueue holds a paused queue-mode subscription's deliveries
// and sends them in order on resume; drop mode creates none.
func TestPauseModeQueue(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		rcQ, rcD := newReceiver(t), newReceiver(t)
		queued := b.subscribe(t, "acc_a", rcQ.URL, []string{"*"}, func(in *forwarding.SubscriptionInput) {
			in.PauseMode, in.Active = ptr(forwarding.PauseQueue), ptr(false)
		})
		require.Equal(t, "queue", queued.PauseMode)
		dropped := b.subscribe(t, "acc_a", rcD.URL, []string{"*"}, func(in *forwarding.SubscriptionInput) { in.Active = ptr(false) })
		require.Equal(t, "drop", dropped.PauseMode)

		b.publish(t, "acc_a", contactEvent("1"))
		b.publish(t, "acc_a", contactEvent("2"))
		b.drain(t)
		require.Empty(t, rcQ.requests(), "held while paused")
		require.Empty(t, rcD.requests())
		require.Empty(t, b.deliveries(t, "subscription_id = ?", dropped.ID), "drop mode creates nothing")
		held := b.deliveries(t, "subscription_id = ?", queued.ID)
		require.Len(t, held, 2)
		for _, d := range held {
			require.Equal(t, models.DeliveryHeld, d.Status)
		}
		st, err := b.svc.SubscriptionStats(ctx, "acc_a", queued.ID)
		require.NoError(t, err)
		require.EqualValues(t, 2, st.HeldDeliveries)
		list, _, err := b.svc.ListDeliveries(ctx, "acc_a", forwarding.DeliveryFilter{Status: models.DeliveryHeld}, 10, "")
		require.NoError(t, err)
		require.Len(t, list, 2)

		// Replaying into a paused queue-mode webhook holds too.
		n, err := b.svc.ReplayRange(ctx, "acc_a", queued.ID, b.clock.Now().Add(-time.Hour), time.Time{})
		require.NoError(t, err)
		require.Equal(t, 2, n)
		b.drain(t)
		require.Empty(t, rcQ.requests())

		b.clock.Advance(time.Minute)
		for _, id := range []string{queued.ID, dropped.ID} {
			_, err = b.svc.UpdateSubscription(ctx, "acc_a", id, forwarding.SubscriptionInput{Active: ptr(true)})
			require.NoError(t, err)
		}
		b.drain(t)
		got := rcQ.requests()
		require.Len(t, got, 4, "every held delivery is sent on resume")
		var ids []string
		for _, r := range got {
			var env struct {
				DataPayload struct{ RemoteID string } `json:"dataPayload"`
			}
			require.NoError(t, json.Unmarshal(r.Body, &env))
			ids = append(ids, env.DataPayload.RemoteID)
		}
		require.ElementsMatch(t, []string{"1", "2", "1", "2"}, ids)
		require.Empty(t, rcD.requests(), "drop mode lost what came while paused")
		require.Empty(t, b.deliveries(t, "status = ?", models.DeliveryHeld))

		// Deleting a paused queue-mode webhook drops what it held.
		_, err = b.svc.UpdateSubscription(ctx, "acc_a", queued.ID, forwarding.SubscriptionInput{Active: ptr(false)})
		require.NoError(t, err)
		b.publish(t, "acc_a", contactEvent("3"))
		require.Len(t, b.deliveries(t, "status = ?", models.DeliveryHeld), 1)
		require.NoError(t, b.svc.DeleteSubscription(ctx, "acc_a", queued.ID))
		require.Empty(t, b.deliveries(t, "status = ?", models.DeliveryHeld))
	})
}
