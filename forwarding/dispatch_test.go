package forwarding_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

func TestPublishFansOutInOneTransaction(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		all := b.subscribe(t, "acc_a", "https://a.example.com", []string{"*"})
		crm := b.subscribe(t, "acc_a", "https://b.example.com", []string{"crm/*"})
		orders := b.subscribe(t, "acc_a", "https://c.example.com", []string{"commerce/orders"})
		paused := b.subscribe(t, "acc_a", "https://d.example.com", []string{"*"}, func(in *forwarding.SubscriptionInput) { in.Active = ptr(false) })
		other := b.subscribe(t, "acc_b", "https://e.example.com", []string{"*"})

		b.publish(t, "acc_a", contactEvent("1"), &models.Envelope{Topic: "commerce/orders", UpdateType: "updated", DataPayload: json.RawMessage(`{"remoteId":"o1"}`)})
		count := func(sub string) int { return len(b.deliveries(t, "subscription_id = ?", sub)) }
		require.Equal(t, 2, count(all.ID))
		require.Equal(t, 1, count(crm.ID))
		require.Equal(t, 1, count(orders.ID))
		require.Zero(t, count(paused.ID), "a paused subscription gets nothing")
		require.Zero(t, count(other.ID), "another account's subscription gets nothing")

		// A failure later in the caller's transaction leaves no event and no delivery.
		boom := db.Transaction(func(tx *gorm.DB) error {
			require.NoError(t, b.svc.Publish(ctx, tx, "acc_a", contactEvent("2")))
			return gorm.ErrInvalidTransaction
		})
		require.Error(t, boom)
		var events int64
		require.NoError(t, db.Model(&models.Event{}).Count(&events).Error)
		require.EqualValues(t, 2, events)
		require.Len(t, b.deliveries(t, ""), 4)

		// Unknown topics are a programming error, refused.
		require.Error(t, b.svc.PublishNow(ctx, "acc_a", &models.Envelope{Topic: "crm/widgets"}))
	})
}

func TestDeliverySignedWithEachScheme(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		rsaRC, stdRC, hmacRC := newReceiver(t), newReceiver(t), newReceiver(t)
		b.subscribe(t, "acc_a", rsaRC.URL, []string{"crm/contacts"})
		std := b.subscribe(t, "acc_a", stdRC.URL, []string{"crm/*"}, func(in *forwarding.SubscriptionInput) {
			in.Signing = &forwarding.SigningInput{Scheme: "standard"}
		})
		hm := b.subscribe(t, "acc_a", hmacRC.URL, []string{"*"}, func(in *forwarding.SubscriptionInput) {
			in.Signing = &forwarding.SigningInput{Scheme: "hmac", Secret: "0123456789abcdef0123"}
		})
		ev := contactEvent("42")
		b.publish(t, "acc_a", ev)
		b.drain(t)

		// rsa: a receiver that knows only the JWKS document.
		got := rsaRC.requests()
		require.Len(t, got, 1)
		h := got[0].Header
		require.Equal(t, ev.ID, h.Get("X-Tributary-Event-Id"))
		require.Equal(t, "crm/contacts", h.Get("X-Tributary-Topic"))
		require.Equal(t, "1", h.Get("X-Tributary-Delivery-Attempt"))
		require.Equal(t, "application/json", h.Get("Content-Type"))
		require.Equal(t, strconv.FormatInt(b.clock.Now().Unix(), 10), h.Get("X-Tributary-Timestamp"))
		require.True(t, verifyWithJWKS(t, b.jwksJSON(t), h, got[0].Body))
		tampered := append([]byte(nil), got[0].Body...)
		tampered[len(tampered)-2] ^= 1
		require.False(t, verifyWithJWKS(t, b.jwksJSON(t), h, tampered))
		var body models.Envelope
		require.NoError(t, json.Unmarshal(got[0].Body, &body))
		require.Equal(t, ev.ID, body.ID)
		require.Equal(t, "crm", body.Category)
		require.Equal(t, "created", body.UpdateType)
		require.JSONEq(t, `{"remoteId":"42","email":"a@example.com"}`, string(body.DataPayload))

		// standard: the official Standard Webhooks library verifies it.
		got = stdRC.requests()
		require.Len(t, got, 1)
		wh, err := standardwebhooks.NewWebhook(std.Signing.Secret)
		require.NoError(t, err)
		// The library checks the timestamp against the wall clock; the test
		// clock is fixed, so verify the signature with the library's own signer.
		ts, err := strconv.ParseInt(got[0].Header.Get("webhook-timestamp"), 10, 64)
		require.NoError(t, err)
		want, err := wh.Sign(got[0].Header.Get("webhook-id"), time.Unix(ts, 0), got[0].Body)
		require.NoError(t, err)
		require.Equal(t, want, got[0].Header.Get("webhook-signature"))
		require.Equal(t, ev.ID, got[0].Header.Get("webhook-id"))

		// hmac: sha256=<hex> over the raw body.
		got = hmacRC.requests()
		require.Len(t, got, 1)
		mac := hmac.New(sha256.New, []byte(hm.Signing.Secret))
		mac.Write(got[0].Body)
		require.Equal(t, "sha256="+hex.EncodeToString(mac.Sum(nil)), got[0].Header.Get("X-Webhook-Signature"))
		require.Empty(t, got[0].Header.Get("X-Tributary-Signature"))

		for _, d := range b.deliveries(t, "") {
			require.Equal(t, models.DeliverySucceeded, d.Status)
			require.Equal(t, 1, d.Attempts)
		}
	})
}

func TestStandardSignatureVerifiesWithOfficialLibraryAtWallClock(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db, func(c *forwarding.Config) { c.Now = time.Now })
		rc := newReceiver(t)
		sub := b.subscribe(t, "acc_a", rc.URL, []string{"*"}, func(in *forwarding.SubscriptionInput) {
			in.Signing = &forwarding.SigningInput{Scheme: "standard"}
		})
		b.publish(t, "acc_a", contactEvent("1"))
		b.drain(t)
		got := rc.requests()
		require.Len(t, got, 1)
		wh, err := standardwebhooks.NewWebhook(sub.Signing.Secret)
		require.NoError(t, err)
		require.NoError(t, wh.Verify(got[0].Body, got[0].Header))
		require.Error(t, wh.Verify(append(got[0].Body, ' '), got[0].Header))
	})
}

func TestRetriesDeadLetterAndReplay(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		rc := newReceiver(t)
		rc.setRespond(func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(500)
			_, _ = w.Write([]byte(strings.Repeat("x", 10000)))
		})
		sub := b.subscribe(t, "acc_a", rc.URL, []string{"*"}, func(in *forwarding.SubscriptionInput) {
			in.Retry = &forwarding.RetryInput{Schedule: []string{"1m", "10m"}}
		})
		ev := contactEvent("1")
		b.publish(t, "acc_a", ev)
		b.drain(t)
		d := b.deliveries(t, "")[0]
		require.Equal(t, models.DeliveryFailed, d.Status)
		wait := d.NextAttemptAt.Sub(b.clock.Now())
		require.InDelta(t, time.Minute, wait, float64(6*time.Second), "first retry about 1m later (±10%% jitter)")

		b.drain(t) // not due yet
		require.Len(t, rc.requests(), 1)
		b.clock.Add(70 * time.Second)
		b.drain(t)
		d = b.deliveries(t, "")[0]
		require.Equal(t, models.DeliveryFailed, d.Status)
		require.InDelta(t, 10*time.Minute, d.NextAttemptAt.Sub(b.clock.Now()), float64(61*time.Second))
		b.clock.Add(11 * time.Minute)
		b.drain(t)
		d = b.deliveries(t, "")[0]
		require.Equal(t, models.DeliveryDead, d.Status, "dead after the schedule is spent")
		require.Equal(t, 3, d.Attempts)

		views, _, err := b.svc.ListDeliveries(ctx, "acc_a", forwarding.DeliveryFilter{WebhookID: sub.ID, Status: "dead"}, 10, "")
		require.NoError(t, err)
		require.Len(t, views, 1)
		require.Len(t, views[0].Attempts, 3)
		for _, a := range views[0].Attempts {
			require.Equal(t, 500, a.StatusCode)
			require.Len(t, a.ResponseBody, 4096, "response body capped")
			require.Equal(t, "endpoint answered 500", a.Error)
		}
		for i, r := range rc.requests() {
			require.Equal(t, ev.ID, r.Header.Get("X-Tributary-Event-Id"), "event id stable across retries")
			require.Equal(t, strconv.Itoa(i+1), r.Header.Get("X-Tributary-Delivery-Attempt"))
		}
		st, err := b.svc.SubscriptionStats(ctx, "acc_a", sub.ID)
		require.NoError(t, err)
		require.EqualValues(t, 1, st.TotalDeliveries)
		require.EqualValues(t, 1, st.FailedDeliveries)
		require.Equal(t, "failed", *st.LastDeliveryStatus)

		// The endpoint recovers; replaying the dead letter delivers it.
		rc.setRespond(nil)
		require.NoError(t, b.svc.Replay(ctx, "acc_a", d.ID))
		require.True(t, models.IsNotFound(b.svc.Replay(ctx, "acc_a", d.ID)), "no longer dead")
		b.drain(t)
		d = b.deliveries(t, "")[0]
		require.Equal(t, models.DeliverySucceeded, d.Status)
		require.Equal(t, 4, d.Attempts)
		st, err = b.svc.SubscriptionStats(ctx, "acc_a", sub.ID)
		require.NoError(t, err)
		require.EqualValues(t, 1, st.SuccessfulDeliveries)
		require.Equal(t, "succeeded", *st.LastDeliveryStatus)

		// Resend makes a new delivery of the same event.
		v, err := b.svc.Resend(ctx, "acc_a", d.ID)
		require.NoError(t, err)
		require.NotEqual(t, d.ID, v.ID)
		b.drain(t)
		last := rc.requests()[len(rc.requests())-1]
		require.Equal(t, ev.ID, last.Header.Get("X-Tributary-Event-Id"))
	})
}

func TestGoneDisablesAndKeepsEventsForReplay(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		rc := newReceiver(t)
		rc.setRespond(func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
		sub := b.subscribe(t, "acc_a", rc.URL, []string{"*"})
		monitor := newReceiver(t)
		b.subscribe(t, "acc_a", monitor.URL, []string{"webhook/*"})
		b.publish(t, "acc_a", contactEvent("1"))
		b.drain(t)
		got, err := b.svc.GetSubscription(ctx, "acc_a", sub.ID)
		require.NoError(t, err)
		require.False(t, got.Active)
		require.Contains(t, got.DisabledReason, "410")
		// The account's other endpoints hear of it: webhook/disabled, once.
		notices := monitor.requests()
		require.Len(t, notices, 1)
		require.Equal(t, "webhook/disabled", notices[0].Header.Get("X-Tributary-Topic"))
		var notice struct {
			DataPayload struct{ WebhookID, Reason string } `json:"dataPayload"`
		}
		require.NoError(t, json.Unmarshal(notices[0].Body, &notice))
		require.Equal(t, sub.ID, notice.DataPayload.WebhookID)
		require.Contains(t, notice.DataPayload.Reason, "410")

		// Later events are kept as dead letters, not sent.
		b.publish(t, "acc_a", contactEvent("2"), contactEvent("3"))
		b.drain(t)
		require.Len(t, rc.requests(), 1)
		require.Len(t, b.deliveries(t, "status = ? AND subscription_id = ?", models.DeliveryDead, sub.ID), 3)

		// Fixed and re-enabled: replay all delivers every event once.
		rc.setRespond(nil)
		_, err = b.svc.UpdateSubscription(ctx, "acc_a", sub.ID, forwarding.SubscriptionInput{Active: ptr(true)})
		require.NoError(t, err)
		n, err := b.svc.ReplayAll(ctx, "acc_a", sub.ID)
		require.NoError(t, err)
		require.EqualValues(t, 3, n)
		b.drain(t)
		require.Len(t, rc.requests(), 4)
		require.Len(t, b.deliveries(t, "status = ? AND subscription_id = ?", models.DeliverySucceeded, sub.ID), 3)
	})
}

func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		for _, code := range []int{429, 503} {
			rc := newReceiver(t)
			rc.setRespond(func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", "120")
				w.WriteHeader(code)
			})
			sub := b.subscribe(t, "acc_a", rc.URL, []string{"*"})
			b.publish(t, "acc_a", contactEvent(strconv.Itoa(code)))
			b.drain(t)
			d := b.deliveries(t, "subscription_id = ?", sub.ID)[0]
			require.Equal(t, models.DeliveryFailed, d.Status)
			require.Equal(t, b.clock.Now().Add(120*time.Second), d.NextAttemptAt.UTC(), "status %d", code)
		}
	})
}

func TestCircuitOpensAfterRepeatedFailures(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db, func(c *forwarding.Config) {
			c.Dispatcher.CircuitThreshold = 3
			c.Dispatcher.CircuitCooldown = 10 * time.Minute
			c.Dispatcher.BatchSize = 3
		})
		rc := newReceiver(t)
		rc.setRespond(func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
		sub := b.subscribe(t, "acc_a", rc.URL, []string{"*"})
		for i := range 10 {
			b.publish(t, "acc_a", contactEvent(strconv.Itoa(i)))
		}
		n, err := b.disp.DispatchDue(context.Background())
		require.NoError(t, err)
		require.Equal(t, 3, n)
		var row models.Subscription
		require.NoError(t, db.Take(&row, "id = ?", sub.ID).Error)
		require.Equal(t, 3, row.ConsecutiveFailures)
		require.NotNil(t, row.CircuitOpenUntil)
		until := b.clock.Now().Add(10 * time.Minute)
		require.Equal(t, until, row.CircuitOpenUntil.UTC())

		// The other seven rest until the cooldown ends instead of hammering.
		b.drain(t)
		require.Len(t, rc.requests(), 3)
		for _, d := range b.deliveries(t, "status = ?", models.DeliveryPending) {
			require.False(t, d.NextAttemptAt.Before(until))
		}
		// New events for the endpoint wait too.
		b.publish(t, "acc_a", contactEvent("late"))
		b.drain(t)
		require.Len(t, rc.requests(), 3)

		// After the cooldown a success closes the circuit.
		rc.setRespond(nil)
		b.clock.Add(11 * time.Minute)
		b.drain(t)
		row = models.Subscription{}
		require.NoError(t, db.Take(&row, "id = ?", sub.ID).Error)
		require.Zero(t, row.ConsecutiveFailures)
		require.Nil(t, row.CircuitOpenUntil)
		require.Len(t, b.deliveries(t, "status = ?", models.DeliverySucceeded), 11)
	})
}

func TestEndpointFailingTooLongIsDisabled(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db, func(c *forwarding.Config) {
			c.Dispatcher.DisableAfter = time.Hour
			c.Dispatcher.CircuitThreshold = 1000
		})
		rc := newReceiver(t)
		rc.setRespond(func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
		sub := b.subscribe(t, "acc_a", rc.URL, []string{"*"}, func(in *forwarding.SubscriptionInput) {
			in.Retry = &forwarding.RetryInput{Schedule: []string{"30m"}, MaxRetries: ptr(10)}
		})
		b.publish(t, "acc_a", contactEvent("1"))
		for range 4 {
			b.drain(t)
			b.clock.Add(35 * time.Minute)
		}
		got, err := b.svc.GetSubscription(context.Background(), "acc_a", sub.ID)
		require.NoError(t, err)
		require.False(t, got.Active)
		require.Contains(t, got.DisabledReason, "failing without success since")
	})
}

func TestSSRFGuard(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		rc := newReceiver(t)
		u, err := url.Parse(rc.URL)
		require.NoError(t, err)
		_, port, _ := net.SplitHostPort(u.Host)
		// "localhost" passes validation (it is a name) but resolves to loopback:
		// the dialer refuses it after resolution.
		byName := "http://localhost:" + port + "/hook"

		blocked := setup(t, db, func(c *forwarding.Config) { c.AllowPrivate = false })
		sub := blocked.subscribe(t, "acc_a", byName, []string{"*"})
		blocked.publish(t, "acc_a", contactEvent("1"))
		blocked.drain(t)
		require.Empty(t, rc.requests(), "nothing reached the private address")
		views, _, err := blocked.svc.ListDeliveries(context.Background(), "acc_a", forwarding.DeliveryFilter{WebhookID: sub.ID}, 10, "")
		require.NoError(t, err)
		require.Equal(t, models.DeliveryFailed, views[0].Status)
		require.Contains(t, views[0].Attempts[0].Error, "refused")
		require.Contains(t, views[0].Attempts[0].Error, "TRIBUTARY_ALLOW_PRIVATE_ADDRESSES")

		allowed := setup(t, db) // the development default allows private addresses
		allowed.subscribe(t, "acc_b", byName, []string{"*"})
		allowed.publish(t, "acc_b", contactEvent("2"))
		allowed.drain(t)
		require.Len(t, rc.requests(), 1)
	})
}

func TestSendTestAnswersTheAttempt(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		rc := newReceiver(t)
		rc.setRespond(func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(202)
			_, _ = w.Write([]byte("thanks"))
		})
		sub := b.subscribe(t, "acc_a", rc.URL, []string{"crm/contacts"})
		att, evID, err := b.svc.SendTest(context.Background(), "acc_a", sub.ID, "commerce/orders")
		require.NoError(t, err)
		require.Equal(t, 202, att.StatusCode)
		require.Equal(t, "thanks", att.ResponseBody)
		got := rc.requests()
		require.Len(t, got, 1)
		require.Equal(t, evID, got[0].Header.Get("X-Tributary-Event-Id"))
		require.Equal(t, "commerce/orders", got[0].Header.Get("X-Tributary-Topic"))
		require.True(t, verifyWithJWKS(t, b.jwksJSON(t), got[0].Header, got[0].Body))
		// It went through Publish: the event is stored and pullable.
		evs, _, err := b.svc.ListEvents(context.Background(), "acc_a", "", "commerce/*", 10)
		require.NoError(t, err)
		require.Len(t, evs, 1)
	})
}

func TestRotationKeepsOldKeysPublished(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		rc := newReceiver(t)
		b.subscribe(t, "acc_a", rc.URL, []string{"*"})
		b.publish(t, "acc_a", contactEvent("1"))
		b.drain(t)
		oldKID := rc.requests()[0].Header.Get("X-Tributary-Key-Id")
		newKey, err := b.svc.RotateSigningKey(ctx, "acc_a")
		require.NoError(t, err)
		require.NotEqual(t, oldKID, newKey.KID)
		b.publish(t, "acc_a", contactEvent("2"))
		b.drain(t)
		got := rc.requests()
		require.Equal(t, newKey.KID, got[1].Header.Get("X-Tributary-Key-Id"))
		jwks := b.jwksJSON(t)
		require.True(t, verifyWithJWKS(t, jwks, got[0].Header, got[0].Body), "old signature still verifies")
		require.True(t, verifyWithJWKS(t, jwks, got[1].Header, got[1].Body))
		keys, err := b.svc.SigningKeys(ctx, "acc_a")
		require.NoError(t, err)
		require.Len(t, keys, 2)
		require.True(t, keys[0].Current)
		require.False(t, keys[1].Current)
		require.Contains(t, keys[0].PublicKey, "BEGIN PUBLIC KEY")
		var raw models.SigningKey
		require.NoError(t, db.Take(&raw, "id = ?", newKey.KID).Error)
		require.NotContains(t, string(raw.PrivateKeyEnc), "PRIVATE KEY")
	})
}

func TestPullEventsInCommitOrder(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		for i := range 5 {
			b.publish(t, "acc_a", contactEvent(strconv.Itoa(i)))
		}
		b.publish(t, "acc_a", &models.Envelope{Topic: "commerce/orders", UpdateType: "created", DataPayload: json.RawMessage(`{}`)})
		b.publish(t, "acc_b", contactEvent("b"))
		page, next, err := b.svc.ListEvents(ctx, "acc_a", "", "", 4)
		require.NoError(t, err)
		require.Len(t, page, 4)
		rest, next2, err := b.svc.ListEvents(ctx, "acc_a", next, "", 50)
		require.NoError(t, err)
		require.Len(t, rest, 2)
		none, next3, err := b.svc.ListEvents(ctx, "acc_a", next2, "", 50)
		require.NoError(t, err)
		require.Empty(t, none)
		require.Empty(t, next3)
		var ids []string
		for _, raw := range append(page, rest...) {
			var e struct {
				DataPayload struct{ RemoteID string } `json:"dataPayload"`
			}
			require.NoError(t, json.Unmarshal(raw, &e))
			ids = append(ids, e.DataPayload.RemoteID)
		}
		require.Equal(t, []string{"0", "1", "2", "3", "4", ""}, ids, "commit order")
		orders, _, err := b.svc.ListEvents(ctx, "acc_a", "", "commerce/orders", 50)
		require.NoError(t, err)
		require.Len(t, orders, 1)
		_, _, err = b.svc.ListEvents(ctx, "acc_a", "abc", "", 50)
		require.Equal(t, models.ErrCodeUnprocessable, models.ErrorCode(err))
	})
}

func TestSubscriptionRateLimit(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		rc := newReceiver(t)
		_, err := b.svc.CreateSubscription(context.Background(), "acc_a", forwarding.SubscriptionInput{
			Address: &rc.URL, Topic: &[]string{"*"}, RateLimit: ptr(-1)})
		require.Equal(t, "rateLimit", func() string { f, _ := fieldOf(err); return f }())
		sub := b.subscribe(t, "acc_a", rc.URL, []string{"*"}, func(in *forwarding.SubscriptionInput) { in.RateLimit = ptr(1) })
		require.Equal(t, 1, sub.RateLimit)
		for i := range 5 {
			b.publish(t, "acc_a", contactEvent(strconv.Itoa(i)))
		}
		start := time.Now()
		n, err := b.disp.DispatchDue(context.Background())
		require.NoError(t, err)
		require.Equal(t, 5, n)
		// One per second: three fit in the in-memory wait, two go back to the queue.
		require.Len(t, rc.requests(), 3)
		require.GreaterOrEqual(t, time.Since(start), 1900*time.Millisecond)
		later := b.deliveries(t, "status = ?", models.DeliveryPending)
		require.Len(t, later, 2)
		for _, d := range later {
			require.True(t, d.NextAttemptAt.After(b.clock.Now()), "put back for later, not attempted")
			require.Zero(t, d.Attempts)
		}
	})
}

func fieldOf(err error) (string, bool) {
	var me *models.Error
	if errors.As(err, &me) {
		return me.Field, true
	}
	return "", false
}

func TestPruneKeepsWhatIsStillQueued(t *testing.T) {
	t.Parallel()
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ok, failing := newReceiver(t), newReceiver(t)
		failing.setRespond(func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
		b.subscribe(t, "acc_a", ok.URL, []string{"crm/contacts"})
		b.subscribe(t, "acc_a", failing.URL, []string{"crm/leads"})
		b.publish(t, "acc_a", contactEvent("old"), &models.Envelope{Topic: "crm/leads", UpdateType: "created", DataPayload: json.RawMessage(`{}`)})
		b.drain(t) // contact delivered; lead failed, waiting for a retry
		b.clock.Add(48 * time.Hour)
		b.publish(t, "acc_a", contactEvent("new"))
		b.drain(t)

		p, err := b.svc.Prune(context.Background(), b.clock.Now().Add(-24*time.Hour))
		require.NoError(t, err)
		require.Equal(t, forwarding.Pruned{Attempts: 2, Deliveries: 1, Events: 1}, p)
		var events []models.Event
		require.NoError(t, db.Order("seq").Find(&events).Error)
		require.Len(t, events, 2, "the queued lead and the new contact stay")
		require.Equal(t, "crm/leads", events[0].Topic)
		require.Len(t, b.deliveries(t, ""), 2)
	})
}
