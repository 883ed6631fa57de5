package forwarding_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// recordEvent is one change of a contact, tagged so the receiver can tell
// the versions apart.
func recordEvent(remoteID, updateType, version string) *models.Envelope {
	e := contactEvent(remoteID)
	e.UpdateType = updateType
	e.DataPayload = json.RawMessage(`{"remoteId":"` + remoteID + `","email":"` + version + `@example.com"}`)
	return e
}

// arrivals lists "remoteId:email-local-part" in the order the receiver got
// them (successful or not).
func arrivals(t *testing.T, rc *receiver) []string {
	t.Helper()
	var out []string
	for _, r := range rc.requests() {
		var e struct {
			DataPayload struct {
				RemoteID string `json:"remoteId"`
				Email    string `json:"email"`
			} `json:"dataPayload"`
		}
		require.NoError(t, json.Unmarshal(r.Body, &e))
		out = append(out, e.DataPayload.RemoteID+":"+e.DataPayload.Email[:len(e.DataPayload.Email)-len("@example.com")])
	}
	return out
}

// TestRecordOrdering is the reproduction: the first attempt of a
// record's created event fails; with "ordering": "record" its two later
// updates wait until it succeeded (another record is not held up), so the
// receiver sees created, updated, updated; a dead letter releases the queue.
// Unordered (the default), the updates overtake the failed created.
func TestRecordOrdering(t *testing.T) {
	for _, ordering := range []string{models.OrderingRecord, forwarding.OrderingUnordered} {
		t.Run(ordering, func(t *testing.T) {
			storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
				b := setup(t, db)
				rc := newReceiver(t)
				rc.setRespond(func(n int, w http.ResponseWriter, r *http.Request) {
					if n == 1 { // the first request (r1's created) fails once
						w.WriteHeader(http.StatusInternalServerError)
						return
					}
					w.WriteHeader(http.StatusOK)
				})
				sub := b.subscribe(t, "acc_1", rc.URL, []string{"crm/*"}, func(in *forwarding.SubscriptionInput) {
					in.Ordering = ptr(ordering)
					in.Retry = &forwarding.RetryInput{Schedule: []string{"1m"}}
				})
				assert.Equal(t, ordering, sub.Ordering)

				b.publish(t, "acc_1", recordEvent("r1", models.UpdateCreated, "v1"))
				_, err := b.disp.DispatchDue(t.Context()) // r1 v1 fails, retried in 1m
				require.NoError(t, err)
				b.publish(t, "acc_1", recordEvent("r1", models.UpdateUpdated, "v2"), recordEvent("r2", models.UpdateCreated, "v1"),
					recordEvent("r1", models.UpdateUpdated, "v3"))
				b.drain(t)
				b.clock.Add(2 * time.Minute)
				b.drain(t)

				got := arrivals(t, rc)
				if ordering == models.OrderingRecord {
					assert.Equal(t, []string{"r1:v1", "r2:v1", "r1:v1", "r1:v2", "r1:v3"}, got,
						"r1's updates wait for its created; r2 is not held up")
				} else {
					require.Len(t, got, 5)
					assert.ElementsMatch(t, []string{"r1:v2", "r2:v1", "r1:v3"}, got[1:4], "unordered: the updates go at once")
					assert.Equal(t, "r1:v1", got[4], "unordered: the created arrives after its updates")
				}
				assert.Empty(t, b.deliveries(t, "status <> ?", models.DeliverySucceeded), "everything delivered")
			})
		})
	}
}

// TestRecordOrderingDeadLetterReleases: when a record's earlier delivery is
// dead-lettered, its later ones go.
func TestRecordOrderingDeadLetterReleases(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		rc := newReceiver(t)
		rc.setRespond(func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				w.WriteHeader(http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusOK)
		})
		b.subscribe(t, "acc_1", rc.URL, []string{"crm/*"}, func(in *forwarding.SubscriptionInput) {
			in.Ordering = ptr(models.OrderingRecord)
			in.Retry = &forwarding.RetryInput{MaxRetries: ptr(0)}
		})
		b.publish(t, "acc_1", recordEvent("r1", models.UpdateCreated, "v1"), recordEvent("r1", models.UpdateUpdated, "v2"))
		b.drain(t)
		assert.Equal(t, []string{"r1:v1", "r1:v2"}, arrivals(t, rc), "the dead first delivery released the second")
		assert.Len(t, b.deliveries(t, "status = ?", models.DeliveryDead), 1)
	})
}

func TestOrderingValidation(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		addr, topics := "http://127.0.0.1:1/hook", []string{"*"}
		_, err := b.svc.CreateSubscription(t.Context(), "acc_1", forwarding.SubscriptionInput{Address: &addr, Topic: &topics, Ordering: ptr("fifo")})
		require.Error(t, err)
		assert.Equal(t, models.ErrCodeUnprocessable, models.ErrorCode(err))
		sub, err := b.svc.CreateSubscription(t.Context(), "acc_1", forwarding.SubscriptionInput{Address: &addr, Topic: &topics})
		require.NoError(t, err)
		assert.Equal(t, forwarding.OrderingUnordered, sub.Ordering, "default")
	})
}
