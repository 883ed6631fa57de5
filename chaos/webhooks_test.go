package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors/sandbox"
	"github.com/tributary/tributary/secrets"
	"github.com/tributary/tributary/storage/storagetest"
	"github.com/tributary/tributary/sync/sandboxapp"
)

// held is one native webhook the sandbox app sent, held back by the test.
type held struct {
	body   []byte
	header http.Header
}

// holdTransport keeps every webhook instead of sending it, answering 200.
type holdTransport struct {
	mu  sync.Mutex
	got []held
}

func (h *holdTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.got = append(h.got, held{body: body, header: r.Header.Clone()})
	h.mu.Unlock()
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("")), Header: http.Header{}, Request: r}, nil
}

// last returns the webhook sent most recently.
func (h *holdTransport) last() held {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got[len(h.got)-1]
}

// TestNativeWebhooksDuplicatedReorderedLate holds back the sandbox app's
// signed native webhooks and delivers them to the engine duplicated, out of
// order and after a poll already captured their change. The audit allows
// exactly one event per change the engine could see, and nothing else: no
// second event for a duplicate, no step back to an older version, no
// resurrection of a deleted record.
func TestNativeWebhooksDuplicatedReorderedLate(t *testing.T) {
	t.Parallel()
	for i, d := range storagetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			s := seed(20261140 + uint64(i))
			e := NewEngine(t, d)
			key := e.Account("Replay")
			rc := NewReceiver(e.URL+"/.well-known/jwks.json", s, time.Second, DefaultWeights)
			t.Cleanup(rc.Close)
			e.Must("POST", "/v1/webhooks", key, subscription(rc.URL), 201)
			require.NoError(t, rc.Prefetch())
			w := NewWorld(e, e.DB, key, s)
			conn, err := w.Connect(sandbox.ModeWebhook)
			require.NoError(t, err)
			var acc struct{ AccountID string }
			require.NoError(t, e.DB.Table("connections").Select("account_id").Where("id = ?", conn).Take(&acc).Error)

			mk, err := secrets.ParseKey(e.MasterKey)
			require.NoError(t, err)
			hold := &holdTransport{}
			app := sandboxapp.New(e.DB, engineConns{e}, sandbox.DeriveSecret(mk), e.URL+"/inbound/sandbox")
			app.HTTP = &http.Client{Transport: hold}
			ctx := context.Background()
			fields := func(m string) json.RawMessage {
				b, _ := json.Marshal(map[string]any{"first_name": "Hook", "email": m})
				return b
			}
			create := func() (string, string, held) {
				m := w.Marker()
				rid, err := app.Create(ctx, acc.AccountID, conn, "contacts", fields(m))
				require.NoError(t, err)
				return rid, m, hold.last()
			}
			update := func(rid string) (string, held) {
				m := w.Marker()
				require.NoError(t, app.Update(ctx, acc.AccountID, conn, "contacts", rid, json.RawMessage(`{"email":"`+m+`"}`)))
				return m, hold.last()
			}
			deliver := func(hs ...held) {
				for _, h := range hs {
					req, err := http.NewRequest("POST", e.URL+"/inbound/sandbox", bytes.NewReader(h.body))
					require.NoError(t, err)
					req.Header = h.header.Clone()
					resp, err := http.DefaultClient.Do(req)
					require.NoError(t, err)
					resp.Body.Close()
					require.Less(t, resp.StatusCode, 300, "inbound answered %d", resp.StatusCode)
				}
			}
			settleInbox := func() {
				require.Eventually(t, func() bool {
					var n int64
					require.NoError(t, e.DB.Table("inbox_items").Where("processed_at IS NULL").Count(&n).Error)
					return n == 0
				}, 30*time.Second, 20*time.Millisecond)
			}
			change := func(rid, kind, m string) {
				w.Record(Change{ConnectionID: conn, Topic: "crm/contacts", RemoteID: rid, Kind: kind, Marker: m})
			}

			// Duplicated: the same webhook three times.
			c, cm, c1 := create()
			deliver(c1, c1, c1)
			change(c, "created", cm)

			// Reordered: v2 and v3 arrive newest first, then each again.
			b, bm1, b1 := create()
			deliver(b1)
			settleInbox()
			_, b2 := update(b)
			bm3, b3 := update(b)
			deliver(b3, b2, b2, b3)
			change(b, "created", bm1)
			change(b, "updated", bm3) // v2 was overtaken: never an event, never a step back

			// Late: v2 is held until a poll has captured it, then arrives
			// with v1 again.
			l, lm1, l1 := create()
			deliver(l1)
			settleInbox()
			lm2, l2 := update(l)
			change(l, "created", lm1)
			change(l, "updated", lm2)
			require.NoError(t, w.Settle(30*time.Second))
			deliver(l2, l1)

			// Deleted, then its creation webhook arrives again: no resurrection.
			x, xm, x1 := create()
			deliver(x1)
			settleInbox()
			require.NoError(t, app.Delete(ctx, acc.AccountID, conn, "contacts", x))
			deliver(hold.last(), x1, hold.last())
			change(x, "created", xm)
			change(x, "deleted", "")

			settleInbox()
			require.NoError(t, w.Settle(30*time.Second))
			finish(t, e, rc, w, false, nil)
		})
	}
}
