package forwarding_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// TestDeliveryFilters selects deliveries by event id, topic, connection and
// creation time, within the account only.
func TestDeliveryFilters(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		rc := newReceiver(t)
		sub := b.subscribe(t, "acc_a", rc.URL, []string{"*"})
		other := b.subscribe(t, "acc_b", rc.URL, []string{"*"})
		t0 := b.clock.Now()
		b.publish(t, "acc_a", contactEvent("1"))
		b.clock.Advance(time.Hour)
		lead := &models.Envelope{Topic: "crm/leads", UpdateType: models.UpdateCreated, ConnectionID: "con_y",
			Source: models.SourcePoll, DataPayload: []byte(`{"remoteId":"2"}`)}
		b.publish(t, "acc_a", lead)
		b.publish(t, "acc_b", contactEvent("3"))
		all, _, err := b.svc.ListDeliveries(context.Background(), "acc_a", forwarding.DeliveryFilter{}, 50, "")
		require.NoError(t, err)
		require.Len(t, all, 2)
		leadEvent := all[0].EventID // newest first
		_, _, err = b.svc.ListDeliveries(context.Background(), "acc_b", forwarding.DeliveryFilter{WebhookID: other.ID}, 50, "")
		require.NoError(t, err)

		for _, tc := range []struct {
			name string
			f    forwarding.DeliveryFilter
			want int
		}{
			{"event id", forwarding.DeliveryFilter{EventID: leadEvent}, 1},
			{"topic", forwarding.DeliveryFilter{Topic: "crm/contacts"}, 1},
			{"topic none", forwarding.DeliveryFilter{Topic: "commerce/orders"}, 0},
			{"connection", forwarding.DeliveryFilter{ConnectionID: "con_y"}, 1},
			{"connection and topic", forwarding.DeliveryFilter{ConnectionID: "con_y", Topic: "crm/contacts"}, 0},
			{"since", forwarding.DeliveryFilter{Since: t0.Add(30 * time.Minute)}, 1},
			{"until", forwarding.DeliveryFilter{Until: t0.Add(30 * time.Minute)}, 1},
			{"window", forwarding.DeliveryFilter{Since: t0, Until: t0.Add(2 * time.Hour), WebhookID: sub.ID}, 2},
			{"another account's event", forwarding.DeliveryFilter{Topic: "crm/contacts", Since: t0.Add(30 * time.Minute)}, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, _, err := b.svc.ListDeliveries(context.Background(), "acc_a", tc.f, 50, "")
				require.NoError(t, err)
				require.Len(t, got, tc.want)
				for _, d := range got {
					if tc.f.Topic != "" {
						require.Equal(t, tc.f.Topic, d.Topic)
					}
				}
			})
		}
	})
}

// TestEventFilters pages events of one connection, and from a time.
func TestEventFilters(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		t0 := b.clock.Now()
		b.publish(t, "acc_a", contactEvent("1")) // con_x
		b.clock.Advance(time.Hour)
		b.publish(t, "acc_a", &models.Envelope{Topic: "crm/leads", UpdateType: models.UpdateCreated, ConnectionID: "con_y",
			Source: models.SourcePoll, DataPayload: []byte(`{"remoteId":"2"}`)})
		b.publish(t, "acc_b", contactEvent("3"))
		for _, tc := range []struct {
			name string
			f    forwarding.EventFilter
			want int
		}{
			{"all", forwarding.EventFilter{}, 2},
			{"connection", forwarding.EventFilter{ConnectionID: "con_x"}, 1},
			{"other connection", forwarding.EventFilter{ConnectionID: "con_y"}, 1},
			{"after a time", forwarding.EventFilter{After: t0.Add(30 * time.Minute).Format(time.RFC3339)}, 1},
			{"after the start", forwarding.EventFilter{After: t0.Format(time.RFC3339)}, 2},
			{"time and connection", forwarding.EventFilter{After: t0.Add(30 * time.Minute).Format(time.RFC3339), ConnectionID: "con_x"}, 0},
		} {
			t.Run(tc.name, func(t *testing.T) {
				evs, _, err := b.svc.Events(ctx, "acc_a", tc.f, 50)
				require.NoError(t, err)
				require.Len(t, evs, tc.want)
			})
		}
		_, _, err := b.svc.Events(ctx, "acc_a", forwarding.EventFilter{After: "yesterday"}, 50)
		require.Error(t, err)
	})
}
