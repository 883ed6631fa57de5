package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// TestSandboxEndToEnd is the capture issue's proof: sandbox connections in
// webhook and polling modes, records created, updated and deleted — one
// change seen by a webhook and then again by a poll — and a receiver that
// verifies every delivery with the JWKS gets exactly one event per change.
func TestSandboxEndToEnd(t *testing.T) {
	t.Parallel()
	for _, d := range storagetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			e := startEngine(t, d, allowPrivate, func(c *config.Config) {
				yes := true
				c.Sandbox = &yes
				c.Scheduler.Tick = 50 * time.Millisecond
				c.Dispatcher.Tick = 20 * time.Millisecond
			})
			key := e.account(t, "Acme")
			rc := newJWKSReceiver(t, e.url+"/.well-known/jwks.json")
			st, body := e.do(t, "POST", "/v1/webhooks", key, map[string]any{"address": rc.URL, "topic": []string{"crm/*", "commerce/*"}})
			require.Equal(t, 201, st, "%v", body)

			connect := func(mode string) string {
				st, body := e.do(t, "POST", "/v1/connections", key, map[string]any{"app": "sandbox", "userId": "u-" + mode,
					"userName": "Demo " + mode, "credentials": map[string]any{"mode": mode}, "includeRaw": mode == "polling"})
				require.Equal(t, 201, st, "%v", body)
				id := body["id"].(string)
				// The silent first sync completes before records are written.
				require.Eventually(t, func() bool {
					_, c := e.do(t, "GET", "/v1/connections/"+id, key, nil)
					return c["lastSyncAt"] != nil && c["status"] == "active"
				}, 20*time.Second, 20*time.Millisecond, "first sync of %s", id)
				return id
			}
			syncNow := func(id string) {
				_, before := e.do(t, "GET", "/v1/connections/"+id, key, nil)
				st, body := e.do(t, "POST", "/v1/connections/"+id+"/sync", key, nil)
				require.Equal(t, 202, st, "%v", body)
				require.Eventually(t, func() bool {
					_, c := e.do(t, "GET", "/v1/connections/"+id, key, nil)
					return c["lastSyncAt"] != before["lastSyncAt"] && c["status"] == "active"
				}, 20*time.Second, 20*time.Millisecond, "poll of %s", id)
			}
			write := func(method, path string, body any, want int) map[string]any {
				st, out := e.do(t, method, path, key, body)
				require.Equal(t, want, st, "%s %s: %v", method, path, out)
				return out
			}
			hook, polled := connect("webhook"), connect("polling")

			// Webhook mode: each write arrives as a signed native webhook.
			c1 := write("POST", "/v1/sandbox/"+hook+"/contacts", map[string]any{"first_name": "Ada", "email": "ada@example.com"}, 201)["remoteId"].(string)
			write("PATCH", "/v1/sandbox/"+hook+"/contacts/"+c1, map[string]any{"email": "ada@lovelace.dev"}, 200)
			// Once the webhook is processed, the poll sees the same change
			// again: no second event.
			require.Eventually(t, func() bool {
				var inbox int64
				require.NoError(t, e.db.Model(&models.InboxItem{}).Where("processed_at IS NULL").Count(&inbox).Error)
				return inbox == 0
			}, 20*time.Second, 10*time.Millisecond)
			syncNow(hook)
			o1 := write("POST", "/v1/sandbox/"+hook+"/orders", map[string]any{"order_number": "1001", "currency": "EUR"}, 201)["remoteId"].(string)
			write("DELETE", "/v1/sandbox/"+hook+"/contacts/"+c1, nil, 204)

			// Polling mode: each change is found by the next poll.
			c2 := write("POST", "/v1/sandbox/"+polled+"/contacts", map[string]any{"first_name": "Grace"}, 201)["remoteId"].(string)
			syncNow(polled)
			write("PATCH", "/v1/sandbox/"+polled+"/contacts/"+c2, map[string]any{"title": "Rear Admiral"}, 200)
			syncNow(polled)
			write("DELETE", "/v1/sandbox/"+polled+"/contacts/"+c2, nil, 204)
			syncNow(polled)
			syncNow(hook)

			want := map[string]int{
				hook + "/crm/contacts/" + c1 + "/created": 1, hook + "/crm/contacts/" + c1 + "/updated": 1,
				hook + "/commerce/orders/" + o1 + "/created": 1, hook + "/crm/contacts/" + c1 + "/deleted": 1,
				polled + "/crm/contacts/" + c2 + "/created": 1, polled + "/crm/contacts/" + c2 + "/updated": 1,
				polled + "/crm/contacts/" + c2 + "/deleted": 1,
			}
			key4 := func(ev map[string]any) string {
				p, _ := ev["dataPayload"].(map[string]any)
				return fmt.Sprintf("%v/%v/%v/%v", ev["connectionId"], ev["topic"], p["remoteId"], ev["updateType"])
			}
			require.Eventually(t, func() bool { return len(rc.verified()) >= len(want) }, 20*time.Second, 20*time.Millisecond)
			// Count only once nothing is left in flight: no unprocessed inbound
			// webhook, no delivery still queued.
			require.Eventually(t, func() bool {
				var inbox, queued int64
				require.NoError(t, e.db.Model(&models.InboxItem{}).Where("processed_at IS NULL").Count(&inbox).Error)
				require.NoError(t, e.db.Model(&models.Delivery{}).Where("status IN ?", []string{"pending", "failed"}).Count(&queued).Error)
				return inbox == 0 && queued == 0
			}, 20*time.Second, 20*time.Millisecond)
			got := map[string]int{}
			for _, ev := range rc.verified() {
				got[key4(ev)]++
			}
			require.Equal(t, want, got, "exactly one signed event per change")
			rc.mu.Lock()
			require.Empty(t, rc.bad, "every delivery verified with the JWKS")
			rc.mu.Unlock()
			for _, ev := range rc.verified() {
				if ev["connectionId"] == hook && ev["updateType"] != "deleted" {
					require.Equal(t, "webhook", ev["source"], "%v", ev)
				}
				switch ev["connectionId"] {
				case polled:
					require.Equal(t, "poll", ev["source"])
					// includeRaw: the app's own record rides along as remoteData.
					raw, _ := ev["dataPayload"].(map[string]any)["remoteData"].(map[string]any)
					require.Equal(t, "Grace", raw["first_name"], "%v", ev)
				case hook:
					require.NotContains(t, ev["dataPayload"], "remoteData")
				}
				require.Equal(t, "Sandbox", ev["name"])
			}
			upd := func() map[string]any {
				for _, ev := range rc.verified() {
					if key4(ev) == hook+"/crm/contacts/"+c1+"/updated" {
						return ev
					}
				}
				return nil
			}()
			require.Equal(t, []any{"email"}, upd["changedFields"])
			require.Equal(t, map[string]any{"email": "ada@example.com"}, upd["previous"])
		})
	}
}
