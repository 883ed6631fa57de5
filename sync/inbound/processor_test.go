package inbound

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/shopify"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

func TestHubSpotThinNoticesFetchedAndPublished(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		portal, conn := b.hubspotPortal(t, true)
		id := b.create(t, portal)
		b.receiveAll(t, "hubspot", b.hs.Webhooks(portal))
		require.Empty(t, b.events(t), "receiving only stores")

		require.Equal(t, 1, b.process(t))
		evs := b.events(t)
		require.Equal(t, []string{"crm/contacts created"}, kinds(evs))
		e := evs[0]
		require.Equal(t, conn.ID, e.ConnectionID)
		require.Equal(t, conn.UserID, e.UserID)
		require.Equal(t, conn.UserName, e.UserName)
		require.Equal(t, "crm", e.Category)
		require.Equal(t, "HubSpot", e.Name)
		require.Equal(t, models.SourceWebhook, e.Source)
		require.Equal(t, id, payloadField(t, e, "remoteId"))
		require.Equal(t, "Ada", payloadField(t, e, "firstName"))
		items := b.inbox(t)
		require.Len(t, items, 1)
		require.NotNil(t, items[0].ProcessedAt)
		require.Empty(t, items[0].LastError)
		require.Equal(t, 0, b.process(t), "nothing left")

		// Two property changes: two thin notices of one record, one event.
		b.hs.Advance(time.Second)
		require.NoError(t, b.hs.Update(portal, "contacts", id, map[string]string{"firstname": "Augusta", "email": "augusta@example.com"}))
		b.receiveAll(t, "hubspot", b.hs.Webhooks(portal))
		require.Equal(t, 1, b.process(t))
		evs = b.events(t)
		require.Equal(t, []string{"crm/contacts created", "crm/contacts updated"}, kinds(evs))
		require.Equal(t, []string{"email", "firstName"}, evs[1].ChangedFields)
		require.JSONEq(t, `"Ada"`, string(evs[1].Previous["firstName"]))

		// A notice delivered again after processing is ignored.
		before := len(b.inbox(t))
		b.create(t, portal)
		reqs := b.hs.Webhooks(portal)
		b.receiveAll(t, "hubspot", reqs)
		require.Equal(t, 1, b.process(t))
		b.receiveAll(t, "hubspot", reqs)
		require.Equal(t, 0, b.process(t))
		require.Len(t, b.inbox(t), before+1)
		require.Len(t, b.events(t), 3)
	})
}

func TestHubSpotBatchReadAndOrdering(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		portal, _ := b.hubspotPortal(t, true)
		var ids []string
		var reqs []*connectors.InboundRequest
		for range 3 {
			ids = append(ids, b.create(t, portal))
			reqs = append(reqs, b.hs.Webhooks(portal)...)
			b.hs.Advance(time.Second)
		}
		// The second contact is deleted later: its notices are creation then deletion.
		require.NoError(t, b.hs.Delete(portal, "contacts", ids[1]))
		reqs = append(reqs, b.hs.Webhooks(portal)...)
		// One delivery, notices out of order.
		reqs[0], reqs[3] = reqs[3], reqs[0]
		b.receiveAll(t, "hubspot", []*connectors.InboundRequest{b.mergeHubSpot(t, reqs)})

		b.open.requests.Store(0)
		require.Equal(t, 1, b.process(t))
		require.Equal(t, int64(1), b.open.requests.Load(), "thin notices fetched with one batch read")
		evs := b.events(t)
		// ids[1] was already archived when fetched: its creation is not
		// found, its deletion of a never-seen record emits nothing.
		require.Equal(t, []string{"crm/contacts created", "crm/contacts created"}, kinds(evs))
		require.Equal(t, ids[0], payloadField(t, evs[0], "remoteId"))
		require.Equal(t, ids[2], payloadField(t, evs[1], "remoteId"))
	})
}

func TestShopifyWebhooksDedupAndDelete(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		shop, conn := b.shopifyShop(t)
		id := b.sh.Create(shop, "orders", map[string]any{"email": "first@example.com"})
		reqs := b.shopifyRequests(shop)
		require.Len(t, reqs, 1)
		// Shopify redelivers with a new webhook id but the same event id.
		again := *reqs[0]
		again.Header = reqs[0].Header.Clone()
		again.Header.Set("X-Shopify-Webhook-Id", "00000000-0000-4000-8000-000000000999")
		b.receiveAll(t, "shopify", []*connectors.InboundRequest{reqs[0], &again})
		items := b.inbox(t)
		require.Len(t, items, 1)
		require.Equal(t, reqs[0].Header.Get("X-Shopify-Event-Id")+":orders/create", items[0].DedupKey)

		b.open.requests.Store(0)
		require.Equal(t, 1, b.process(t))
		require.Zero(t, b.open.requests.Load(), "full notices need no fetch")
		evs := b.events(t)
		require.Equal(t, []string{"commerce/orders created"}, kinds(evs))
		require.Equal(t, "Shopify", evs[0].Name)
		require.Equal(t, conn.ID, evs[0].ConnectionID)
		require.Equal(t, strconv.FormatInt(id, 10), payloadField(t, evs[0], "remoteId"))

		b.shClock.Advance(time.Minute)
		b.clock.Advance(time.Minute)
		require.True(t, b.sh.Delete(shop, "orders", id))
		b.receiveAll(t, "shopify", b.shopifyRequests(shop))
		require.Equal(t, 1, b.process(t))
		evs = b.events(t)
		require.Equal(t, []string{"commerce/orders created", "commerce/orders deleted"}, kinds(evs))
		require.Equal(t, "first@example.com", payloadField(t, evs[1], "email"), "a delete carries the last payload")
	})
}

func TestNoticeForUnknownExternalIDSkipped(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		portal, _ := b.hubspotPortal(t, false) // nobody connected this portal
		b.create(t, portal)
		b.receiveAll(t, "hubspot", b.hs.Webhooks(portal))
		require.Equal(t, 1, b.process(t))
		require.Empty(t, b.events(t))
		items := b.inbox(t)
		require.NotNil(t, items[0].ProcessedAt)
		require.Empty(t, items[0].LastError)
		require.Zero(t, b.open.requests.Load(), "nothing fetched")
	})
}

func TestSamePortalTwoAccounts(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		portal, c1 := b.hubspotPortal(t, true)
		c2 := b.connection(t, "hubspot", c1.ExternalID)
		require.NoError(t, db.Model(c2).Update("account_id", "acc_other").Error)
		b.create(t, portal)
		b.receiveAll(t, "hubspot", b.hs.Webhooks(portal))
		require.Equal(t, 1, b.process(t))
		evs := b.events(t)
		require.Len(t, evs, 2)
		require.ElementsMatch(t, []string{c1.ID, c2.ID}, []string{evs[0].ConnectionID, evs[1].ConnectionID})
	})
}

func TestCrashedClaimIsRetriedAfterLeaseOnce(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		portal, _ := b.hubspotPortal(t, true)
		b.create(t, portal)
		b.receiveAll(t, "hubspot", b.hs.Webhooks(portal))

		// A processor claims and dies.
		stale, err := b.proc.claim(t.Context())
		require.NoError(t, err)
		require.Len(t, stale, 1)
		require.Equal(t, 0, b.process(t), "leased: not due")

		b.clock.Advance(DefaultLease + time.Second)
		second, err := b.proc.claim(t.Context())
		require.NoError(t, err)
		require.Len(t, second, 1, "due again after the lease")

		// The dead processor wakes up and finishes: fenced by the lease
		// token, it changes nothing.
		require.NoError(t, b.proc.processBatch(t.Context(), stale))
		require.Empty(t, b.events(t))
		it := b.inbox(t)[0]
		require.Nil(t, it.ProcessedAt)
		require.Equal(t, second[0].LeaseToken, it.LeaseToken)

		require.NoError(t, b.proc.processBatch(t.Context(), second))
		require.Len(t, b.events(t), 1)
		require.NotNil(t, b.inbox(t)[0].ProcessedAt)

		// Even processed again without the fence, reconcile decides.
		require.NoError(t, db.Model(&models.InboxItem{}).Where("1 = 1").
			Updates(map[string]any{"processed_at": nil, "next_attempt_at": b.clock.Now()}).Error)
		require.Equal(t, 1, b.process(t))
		require.Len(t, b.events(t), 1, "no duplicate event")
	})
}

func TestPublishFailureRollsBackAndRetries(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		portal, conn := b.hubspotPortal(t, true)
		b.create(t, portal)
		b.receiveAll(t, "hubspot", b.hs.Webhooks(portal))
		b.pub.err = errors.New("boom")
		require.Equal(t, 1, b.process(t))
		var snaps int64
		require.NoError(t, db.Model(&models.Snapshot{}).Where("connection_id = ?", conn.ID).Count(&snaps).Error)
		require.Zero(t, snaps, "reconcile rolled back with the publish")
		it := b.inbox(t)[0]
		require.Nil(t, it.ProcessedAt)
		require.Equal(t, 1, it.Attempts)
		require.Contains(t, it.LastError, "boom")

		b.pub.err = nil
		b.clock.Advance(Backoff(1))
		require.Equal(t, 1, b.process(t))
		require.Equal(t, []string{"crm/contacts created"}, kinds(b.events(t)))
	})
}

func TestFetchFailuresBackOffThenGiveUp(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		portal, _ := b.hubspotPortal(t, true)
		b.create(t, portal)
		b.receiveAll(t, "hubspot", b.hs.Webhooks(portal))

		require.NoError(t, b.hs.FailNext(portal, "rate_limit", 1))
		require.Equal(t, 1, b.process(t))
		it := b.inbox(t)[0]
		require.Nil(t, it.ProcessedAt)
		require.Equal(t, 1, it.Attempts)
		require.Contains(t, it.LastError, "rate limited")
		require.WithinDuration(t, b.clock.Now().Add(Backoff(1)), it.NextAttemptAt, time.Second)
		require.Equal(t, 0, b.process(t), "not due before the backoff")
		b.clock.Advance(Backoff(1))
		require.Equal(t, 1, b.process(t))
		require.Len(t, b.events(t), 1)

		// A provider failing every time: given up after MaxAttempts.
		b.create(t, portal)
		b.receiveAll(t, "hubspot", b.hs.Webhooks(portal))
		require.NoError(t, b.hs.FailNext(portal, "server_error", 100))
		for attempt := 1; attempt <= DefaultMaxAttempts; attempt++ {
			require.Equal(t, 1, b.process(t), "attempt %d", attempt)
			b.clock.Advance(time.Hour)
		}
		it = b.inbox(t)[1]
		require.NotNil(t, it.ProcessedAt, "given up")
		require.Equal(t, DefaultMaxAttempts, it.Attempts)
		require.NotEmpty(t, it.LastError)
		require.Equal(t, 0, b.process(t))
		require.Len(t, b.events(t), 1)
	})
}

func TestVerifiedButUnparseableIsKeptAndGivenUp(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		req := b.signHubSpot([]byte(`{"not":"an array"}`))
		require.NoError(t, b.recv.Receive(t.Context(), "hubspot", req))
		items := b.inbox(t)
		require.Len(t, items, 1)
		require.Regexp(t, `^body:`, items[0].DedupKey)
		require.Equal(t, 1, b.process(t))
		it := b.inbox(t)[0]
		require.NotNil(t, it.ProcessedAt)
		require.Contains(t, it.LastError, "parse")
		require.Equal(t, 1, it.Attempts)
	})
}

func TestWebhookThenPollEmitsNothing(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		portal, conn := b.hubspotPortal(t, true)
		id := b.create(t, portal)
		b.receiveAll(t, "hubspot", b.hs.Webhooks(portal))
		require.Equal(t, 1, b.process(t))
		require.Len(t, b.events(t), 1)

		// The next poll reads the same version through the search API.
		cc, err := b.open.Open(t.Context(), conn)
		require.NoError(t, err)
		var recs []models.Record
		require.NoError(t, b.hsApp.ListChanges(t.Context(), cc, connectors.ListRequest{Object: models.ObjectContacts, FullScan: true},
			func(p connectors.Page) error { recs = append(recs, p.Records...); return nil }))
		require.Len(t, recs, 1)
		require.Equal(t, id, recs[0].RemoteID)
		err = db.Transaction(func(tx *gorm.DB) error {
			changes, err := b.proc.Reconciler.ApplyPage(tx, conn.ID, recs, conn.Generation)
			require.Empty(t, changes, "same version seen by webhook and poll: one event")
			return err
		})
		require.NoError(t, err)
	})
}

func TestRunDrainsAndStops(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		b.proc.Batch = 1
		portal, _ := b.hubspotPortal(t, true)
		for range 3 {
			b.create(t, portal)
		}
		b.receiveAll(t, "hubspot", b.hs.Webhooks(portal))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { b.proc.Run(ctx, time.Hour); close(done) }()
		require.Eventually(t, func() bool { return len(b.events(t)) == 3 }, 10*time.Second, 10*time.Millisecond)
		// A newly stored item wakes Run before its (hour-long) tick.
		b.recv.Notify = b.proc.Wake
		b.create(t, portal)
		b.receiveAll(t, "hubspot", b.hs.Webhooks(portal))
		require.Eventually(t, func() bool { return len(b.events(t)) == 4 }, 10*time.Second, 10*time.Millisecond)
		cancel()
		<-done
	})
}

func TestRejectedCredentialsSkipThinNoticesAndMarkReauth(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		portal, conn := b.hubspotPortal(t, true)
		b.create(t, portal)
		b.receiveAll(t, "hubspot", b.hs.Webhooks(portal))
		require.NoError(t, b.hs.FailNext(portal, "expired_token", 1))
		require.Equal(t, 1, b.process(t))
		require.Empty(t, b.events(t), "nothing to publish without the record")
		require.Equal(t, []string{conn.ID}, b.open.reauth)
		it := b.inbox(t)[0]
		require.NotNil(t, it.ProcessedAt, "not retried: the next poll after reconnecting catches up")
		require.Empty(t, it.LastError)
	})
}

func TestPruneKeepsTheDedupWindow(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		portal, _ := b.hubspotPortal(t, true)
		b.create(t, portal)
		old := b.hs.Webhooks(portal)
		b.receiveAll(t, "hubspot", old)
		require.Equal(t, 1, b.process(t))
		b.clock.Advance(DefaultRetention - time.Minute)
		b.create(t, portal)
		b.receiveAll(t, "hubspot", b.hs.Webhooks(portal)) // unprocessed: never pruned

		n, err := b.proc.Prune(t.Context(), 0)
		require.NoError(t, err)
		require.Zero(t, n, "inside the window")
		b.clock.Advance(2 * time.Minute)
		n, err = b.proc.Prune(t.Context(), 0)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		items := b.inbox(t)
		require.Len(t, items, 1)
		require.Nil(t, items[0].ProcessedAt)
	})
}

// TestShopifyForgedDeleteTopic: X-Shopify-Topic is not covered by the HMAC.
// A captured customers/update body replayed with the header customers/delete
// still verifies, but its body is a full customer: no deleted event. A
// correctly shaped delete body for a customer Shopify still has is not
// confirmed by the fetch: no deleted event either. A real delete is.
func TestShopifyForgedDeleteTopic(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		shop, _ := b.shopifyShop(t)
		id := b.sh.Create(shop, "customers", map[string]any{"email": "ada@example.com", "first_name": "Ada"})
		b.receiveAll(t, "shopify", b.shopifyRequests(shop))
		require.Equal(t, 1, b.process(t))
		b.shClock.Advance(time.Minute)
		b.clock.Advance(time.Minute)
		require.True(t, b.sh.Update(shop, "customers", id, map[string]any{"first_name": "Augusta"}))
		reqs := b.shopifyRequests(shop)
		require.Len(t, reqs, 1)
		require.Equal(t, "customers/update", reqs[0].Header.Get("X-Shopify-Topic"))
		b.receiveAll(t, "shopify", reqs)
		require.Equal(t, 1, b.process(t))
		require.Equal(t, []string{"commerce/customers created", "commerce/customers updated"}, kinds(b.events(t)))

		// The captured update body, replayed under a delete topic (new
		// event id so dedup does not drop it). The HMAC still verifies.
		forged := *reqs[0]
		forged.Header = reqs[0].Header.Clone()
		forged.Header.Set("X-Shopify-Topic", "customers/delete")
		forged.Header.Set("X-Shopify-Event-Id", "forged-1")
		require.NoError(t, b.shApp.VerifyWebhook(&forged))
		// A delete-shaped body for the live customer, signed with the app
		// secret (as a delete Shopify sent by mistake or a replay would be).
		body := []byte(fmt.Sprintf(`{"id":%d,"phone":null,"addresses":[],"tax_exemptions":[],"email_marketing_consent":null,"sms_marketing_consent":null,"admin_graphql_api_id":"gid://shopify/Customer/%d"}`, id, id))
		shaped := &connectors.InboundRequest{Method: http.MethodPost, URL: forged.URL, Header: forged.Header.Clone(), Body: body, ReceivedAt: b.clock.Now()}
		shaped.Header.Set("X-Shopify-Event-Id", "forged-2")
		shaped.Header.Set("X-Shopify-Hmac-Sha256", shopify.Sign("csecret", body))
		require.NoError(t, b.shApp.VerifyWebhook(shaped))
		b.receiveAll(t, "shopify", []*connectors.InboundRequest{&forged, shaped})
		b.process(t)
		require.Equal(t, []string{"commerce/customers created", "commerce/customers updated"}, kinds(b.events(t)),
			"neither notice deletes a customer that still exists")

		// A real deletion still produces its event.
		b.shClock.Advance(time.Minute)
		b.clock.Advance(time.Minute)
		require.True(t, b.sh.Delete(shop, "customers", id))
		b.receiveAll(t, "shopify", b.shopifyRequests(shop))
		require.Equal(t, 1, b.process(t))
		require.Equal(t, []string{"commerce/customers created", "commerce/customers updated", "commerce/customers deleted"}, kinds(b.events(t)))
	})
}

// Found in review: a database error while processing (a terminated
// connection, a deadlock) counted as one of the item's attempts, so an
// outage spanning MaxAttempts would give the webhook up and lose its change.
// Now the item keeps its attempts; a real failure still ends it.
func TestDatabaseErrorsUseNoAttempts(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		portal, _ := b.hubspotPortal(t, true)
		b.create(t, portal)
		b.receiveAll(t, "hubspot", b.hs.Webhooks(portal))
		it := b.inbox(t)[0]
		require.NoError(t, db.Model(&models.InboxItem{}).Where("id = ?", it.ID).
			Updates(map[string]any{"attempts": DefaultMaxAttempts - 1, "lease_token": "tok"}).Error)
		it.Attempts, it.LeaseToken = DefaultMaxAttempts-1, "tok"

		outage := fmt.Errorf("inbound %s: %w", it.ID, &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"})
		require.NoError(t, b.proc.fail(t.Context(), &it, outage))
		got := b.inbox(t)[0]
		require.Nil(t, got.ProcessedAt, "not given up because the database failed")
		require.Equal(t, DefaultMaxAttempts-1, got.Attempts)

		b.clock.Advance(time.Hour)
		require.Equal(t, 1, b.process(t))
		require.Len(t, b.events(t), 1, "the change is delivered once the database is back")
	})
}
