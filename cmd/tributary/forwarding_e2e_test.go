package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/config"
	"github.com/tributary/tributary/forwarding/signing/signingtest"
	"github.com/tributary/tributary/storage/storagetest"
)

// jwksReceiver is an ISV endpoint that knows nothing but the engine's JWKS
// URL: it fetches the document over HTTP and verifies every delivery with
// crypto/rsa, recording the ones that verify.
type jwksReceiver struct {
	*httptest.Server
	jwksURL string
	mu      sync.Mutex
	ok, bad []map[string]any
	status  int
}

func newJWKSReceiver(t *testing.T, jwksURL string) *jwksReceiver {
	rc := &jwksReceiver{jwksURL: jwksURL, status: 200}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev map[string]any
		_ = json.Unmarshal(body, &ev)
		good := rc.verify(r.Header, body)
		rc.mu.Lock()
		if good {
			rc.ok = append(rc.ok, ev)
		} else {
			rc.bad = append(rc.bad, ev)
		}
		status := rc.status
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *jwksReceiver) verify(h http.Header, body []byte) bool {
	resp, err := http.Get(rc.jwksURL)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	doc, err := io.ReadAll(resp.Body)
	if err != nil {
		return false
	}
	ok, err := signingtest.VerifyWithJWKS(doc, h, body)
	return err == nil && ok
}

func (rc *jwksReceiver) verified() []map[string]any {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]map[string]any(nil), rc.ok...)
}

func allowPrivate(c *config.Config) { yes := true; c.AllowPrivateAddresses = &yes; c.AllowHTTP = &yes }

func (e *engine) account(t *testing.T, name string) string {
	t.Helper()
	st, body := e.do(t, "POST", "/v1/admin/accounts", e.admin, map[string]any{"name": name})
	require.Equal(t, 201, st, "%v", body)
	return body["apiKey"].(string)
}

func TestWebhooksOverHTTP(t *testing.T) {
	t.Parallel()
	for _, d := range storagetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			e := startEngine(t, d, allowPrivate)
			keyA, keyB := e.account(t, "A"), e.account(t, "B")
			rc := newJWKSReceiver(t, e.url+"/.well-known/jwks.json")

			// Validation: an unknown topic is a 422 naming it; nothing stored.
			st, body := e.do(t, "POST", "/v1/webhooks", keyA, map[string]any{"address": rc.URL, "topic": []string{"crm/widgets"}})
			requireError(t, st, body, 422, "invalid_field")
			require.Contains(t, body["error"].(map[string]any)["message"], "crm/widgets")
			st, body = e.do(t, "POST", "/v1/webhooks", keyA, `{"address": 5}`)
			requireError(t, st, body, 422, "invalid_field")
			st, body = e.do(t, "POST", "/v1/webhooks", keyA, `{"address": "x", "bogus": 1}`)
			requireError(t, st, body, 400, "invalid_request")

			st, wh := e.do(t, "POST", "/v1/webhooks", keyA, map[string]any{"address": rc.URL, "topic": []string{"crm/*"},
				"retry": map[string]any{"maxRetries": 3}, "timeoutSeconds": 10})
			require.Equal(t, 201, st, "%v", wh)
			id := wh["id"].(string)
			require.True(t, strings.HasPrefix(id, "wh_"))
			require.Equal(t, "rsa", wh["signing"].(map[string]any)["scheme"])
			require.Equal(t, "drop", wh["pauseMode"])
			require.Equal(t, []any{}, wh["connectionIds"])

			st, res := e.do(t, "POST", "/v1/webhooks/"+id+"/test", keyA, map[string]any{"topic": "crm/contacts"})
			require.Equal(t, 200, st, "%v", res)
			require.EqualValues(t, 200, res["statusCode"])
			got := rc.verified()
			require.Len(t, got, 1, "the receiver verified the signature with the JWKS alone")
			require.Equal(t, res["eventId"], got[0]["id"])
			require.Equal(t, "crm/contacts", got[0]["topic"])

			st, list := e.do(t, "GET", "/v1/webhooks/"+id+"/deliveries?status=succeeded", keyA, nil)
			require.Equal(t, 200, st)
			dels := list["data"].([]any)
			require.Len(t, dels, 1)
			att := dels[0].(map[string]any)["attempts"].([]any)[0].(map[string]any)
			require.EqualValues(t, 200, att["statusCode"])
			require.Contains(t, att, "responseTimeMs")
			require.Contains(t, att, "attemptedAt")
			st, stats := e.do(t, "GET", "/v1/webhooks/"+id+"/stats", keyA, nil)
			require.Equal(t, 200, st)
			require.EqualValues(t, 1, stats["totalDeliveries"])
			require.EqualValues(t, 1, stats["successfulDeliveries"])
			require.Equal(t, "succeeded", stats["lastDeliveryStatus"])

			st, evs := e.do(t, "GET", "/v1/events?after=", keyA, nil)
			require.Equal(t, 200, st)
			require.Len(t, evs["data"].([]any), 1)
			require.NotNil(t, evs["nextCursor"])
			st, evs = e.do(t, "GET", "/v1/events?after="+evs["nextCursor"].(string), keyA, nil)
			require.Equal(t, 200, st)
			require.Empty(t, evs["data"])

			st, keys := e.do(t, "GET", "/v1/signing-keys", keyA, nil)
			require.Equal(t, 200, st)
			require.Len(t, keys["data"].([]any), 1)
			st, _ = e.do(t, "POST", "/v1/signing-keys/rotate", keyA, nil)
			require.Equal(t, 201, st)
			st, res = e.do(t, "POST", "/v1/webhooks/"+id+"/test", keyA, nil)
			require.Equal(t, 200, st)
			require.Len(t, rc.verified(), 2, "signed with the new key, published in the JWKS")

			// Replay of a time range: both test events again, as new deliveries.
			st, body = e.do(t, "POST", "/v1/webhooks/"+id+"/replay", keyA, map[string]any{"since": "2000-01-01T00:00:00Z"})
			require.Equal(t, 202, st, "%v", body)
			require.EqualValues(t, 2, body["replayed"])
			st, body = e.do(t, "POST", "/v1/webhooks/"+id+"/replay", keyA, map[string]any{"since": "yesterday"})
			requireError(t, st, body, 422, "invalid_field")
			st, body = e.do(t, "POST", "/v1/webhooks/"+id+"/replay", keyA, map[string]any{"since": "2000-01-01T00:00:00Z", "until": "1999-01-01T00:00:00Z"})
			requireError(t, st, body, 422, "invalid_field")

			// Account B sees none of it: 404 for each of A's objects.
			dlvID := dels[0].(map[string]any)["id"].(string)
			for _, c := range []struct{ method, path string }{
				{"GET", "/v1/webhooks/" + id}, {"PATCH", "/v1/webhooks/" + id}, {"DELETE", "/v1/webhooks/" + id},
				{"POST", "/v1/webhooks/" + id + "/test"}, {"GET", "/v1/webhooks/" + id + "/deliveries"},
				{"GET", "/v1/webhooks/" + id + "/stats"}, {"POST", "/v1/deliveries/" + dlvID + "/resend"},
				{"POST", "/v1/dead-letters/" + dlvID + "/replay"}, {"POST", "/v1/webhooks/" + id + "/replay"},
			} {
				var b any
				switch c.method + c.path {
				case "PATCH/v1/webhooks/" + id:
					b = map[string]any{"active": false}
				case "POST/v1/webhooks/" + id + "/replay":
					b = map[string]any{"since": "2000-01-01T00:00:00Z"}
				}
				st, body := e.do(t, c.method, c.path, keyB, b)
				requireError(t, st, body, 404, "not_found")
			}
			st, body = e.do(t, "GET", "/v1/webhooks", keyB, nil)
			require.Equal(t, 200, st)
			require.Empty(t, body["data"])
			st, body = e.do(t, "GET", "/v1/events", keyB, nil)
			require.Equal(t, 200, st)
			require.Empty(t, body["data"])

			st, _ = e.do(t, "DELETE", "/v1/webhooks/"+id, keyA, nil)
			require.Equal(t, 204, st)
			st, body = e.do(t, "GET", "/v1/webhooks/"+id, keyA, nil)
			requireError(t, st, body, 404, "not_found")
		})
	}
}
