package chaos

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors/sandbox"
	"github.com/tributary/tributary/storage/storagetest"
)

// TestRecordOrderingUnderChaos: a subscription with "ordering": "record"
// behind the chaos receiver (about half the requests fail, in every way):
// for every record, the events the receiver acknowledged arrive in the
// order the changes were made, whatever was retried in between.
func TestRecordOrderingUnderChaos(t *testing.T) {
	t.Parallel()
	for i, d := range storagetest.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			s := seed(20261170 + uint64(i))
			e := NewEngine(t, d)
			key := e.Account("Ordered")
			rc := NewReceiver(e.URL+"/.well-known/jwks.json", s, time.Second, DefaultWeights)
			t.Cleanup(rc.Close)
			sub := subscription(rc.URL)
			sub["ordering"] = "record"
			e.Must("POST", "/v1/webhooks", key, sub, 201)
			require.NoError(t, rc.Prefetch())
			w := NewWorld(e, e.DB, key, s)
			conn, err := w.Connect(sandbox.ModeWebhook)
			require.NoError(t, err)

			order := map[string][]string{} // remote id → markers in change order
			for range 4 {
				c, err := w.Create(conn)
				require.NoError(t, err)
				if c.RemoteID == "" {
					continue
				}
				order[c.RemoteID] = append(order[c.RemoteID], c.Marker)
				for range 3 {
					u, err := w.Update(conn, c.RemoteID)
					require.NoError(t, err)
					if u.Marker != "" {
						order[c.RemoteID] = append(order[c.RemoteID], u.Marker)
					}
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			require.NoError(t, Drain(ctx, e, true))

			// The first acknowledged arrival of each version, per record.
			seen := map[string]bool{}
			last := map[string]int{}
			arrived := 0
			for _, en := range rc.Log() {
				if !en.Acked || !en.SignatureOK || en.Topic != "crm/contacts" || seen[en.EventID] {
					continue
				}
				seen[en.EventID] = true
				var p struct {
					Email string `json:"email"`
				}
				require.NoError(t, json.Unmarshal(en.Payload, &p))
				idx := -1
				for k, m := range order[en.RemoteID] {
					if m == p.Email {
						idx = k
					}
				}
				require.GreaterOrEqual(t, idx, 0, "an event of a change this test made: %s %s", en.RemoteID, p.Email)
				if prev, ok := last[en.RemoteID]; ok {
					require.Greater(t, idx, prev, "record %s: version %d acknowledged after version %d", en.RemoteID, idx, prev)
				}
				last[en.RemoteID] = idx
				arrived++
			}
			require.Len(t, last, len(order), "every record delivered")
			t.Logf("%d versions of %d records acknowledged in order (%d requests, seed %d)", arrived, len(order), len(rc.Log()), s)
		})
	}
}
