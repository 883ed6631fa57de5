package inbound

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

func TestReceiveRefusesBadSignatures(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		portal, _ := b.hubspotPortal(t, true)
		b.create(t, portal)
		good := b.hs.Webhooks(portal)
		require.Len(t, good, 1)

		for _, tc := range []struct {
			name   string
			mutate func(r *connectors.InboundRequest)
		}{
			{"tampered body", func(r *connectors.InboundRequest) { r.Body = append([]byte{}, r.Body...); r.Body[len(r.Body)-2] ^= 1 }},
			{"missing signature", func(r *connectors.InboundRequest) { r.Header.Del("X-HubSpot-Signature-v3") }},
			{"wrong url", func(r *connectors.InboundRequest) { r.URL = "https://evil.example/inbound/hubspot" }},
			{"stale timestamp", func(r *connectors.InboundRequest) { b.hs.Advance(6 * time.Minute) }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := *good[0]
				r.Header = good[0].Header.Clone()
				tc.mutate(&r)
				err := b.recv.Receive(t.Context(), "hubspot", &r)
				require.Error(t, err)
				require.Equal(t, models.ErrCodeUnauthorized, models.ErrorCode(err))
				require.Equal(t, "invalid webhook signature", err.Error())
				require.Empty(t, b.inbox(t), "nothing stored")
			})
		}

		// Shopify: a tampered body fails the HMAC too.
		shop, _ := b.shopifyShop(t)
		b.sh.Create(shop, "orders", nil)
		reqs := b.shopifyRequests(shop)
		require.Len(t, reqs, 1)
		reqs[0].Body = append(reqs[0].Body, ' ')
		err := b.recv.Receive(t.Context(), "shopify", reqs[0])
		require.Equal(t, models.ErrCodeUnauthorized, models.ErrorCode(err))
		require.Empty(t, b.inbox(t))
	})
}

func TestReceiveUnknownApps(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		req := &connectors.InboundRequest{Method: http.MethodPost, URL: "https://x/inbound/a", Header: http.Header{}, Body: []byte(`[]`)}
		for _, app := range []string{"nope", "salesforce"} { // salesforce has no native webhooks
			err := b.recv.Receive(t.Context(), app, req)
			require.Equal(t, models.ErrCodeNotFound, models.ErrorCode(err), app)
		}
		require.Empty(t, b.inbox(t))
	})
}

func TestReceiveStoresRawOnceAndDedups(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		portal, _ := b.hubspotPortal(t, true)
		b.create(t, portal)
		reqs := b.hs.Webhooks(portal)
		require.Len(t, reqs, 1)
		reqs[0].Header.Set("Authorization", "Bearer something")

		b.receiveAll(t, "hubspot", reqs)
		b.receiveAll(t, "hubspot", reqs) // HubSpot retried the delivery
		items := b.inbox(t)
		require.Len(t, items, 1)
		it := items[0]
		require.Equal(t, "hubspot", it.App)
		require.Equal(t, reqs[0].Body, it.Body, "raw body kept byte for byte")
		require.Equal(t, reqs[0].URL, it.URL)
		require.Equal(t, http.MethodPost, it.Method)
		require.Contains(t, it.Header, "X-Hubspot-Signature-V3")
		require.NotContains(t, it.Header, "Bearer something", "caller credentials are not kept")
		require.Nil(t, it.ProcessedAt)
		require.WithinDuration(t, b.clock.Now(), it.NextAttemptAt, time.Second)
		ns, err := b.hsApp.ParseWebhook(reqs[0])
		require.NoError(t, err)
		require.Equal(t, ns[0].EventID, it.DedupKey, "one notice: the provider's event id")
	})
}

func TestDedupKey(t *testing.T) {
	a := connectors.Notice{EventID: "a"}
	bb := connectors.Notice{EventID: "b"}
	require.Equal(t, "a", DedupKey([]connectors.Notice{a, a}, nil))
	require.Equal(t, DedupKey([]connectors.Notice{a, bb}, []byte("x")), DedupKey([]connectors.Notice{bb, a}, []byte("y")),
		"several ids: order and body do not matter")
	require.Regexp(t, `^ids:[0-9a-f]{64}$`, DedupKey([]connectors.Notice{a, bb}, nil))
	require.Regexp(t, `^body:[0-9a-f]{64}$`, DedupKey(nil, []byte("x")))
	require.NotEqual(t, DedupKey(nil, []byte("x")), DedupKey(nil, []byte("y")))
	long := connectors.Notice{EventID: string(make([]byte, 300))}
	require.LessOrEqual(t, len(DedupKey([]connectors.Notice{long}, nil)), 255)
}
