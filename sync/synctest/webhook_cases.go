package synctest

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// webhookObjects are the objects with native notices.
func (b *bundle) webhookObjects() []string {
	if b.h.WebhookObjects != nil {
		return b.h.WebhookObjects
	}
	return b.h.Objects
}

// deliver sends the fake's pending webhooks through the receiver, processes
// the inbox and returns the requests.
func (b *bundle) deliver() []*connectors.InboundRequest {
	b.t.Helper()
	reqs := b.h.Webhooks(b.t, b.conn)
	require.NotEmpty(b.t, reqs, "the fake sent no webhook")
	b.receive(reqs)
	return reqs
}

func (b *bundle) receive(reqs []*connectors.InboundRequest) {
	b.t.Helper()
	for _, r := range reqs {
		require.NoError(b.t, b.recv.Receive(b.t.Context(), b.info.Name, r), "a webhook signed as %s documents is accepted", b.info.DisplayName)
	}
	for {
		n, err := b.proc.ProcessDue(b.t.Context())
		require.NoError(b.t, err)
		if n == 0 {
			break
		}
	}
	var failed []models.InboxItem
	require.NoError(b.t, b.db.Where("app = ? AND last_error <> ''", b.info.Name).Find(&failed).Error)
	for _, it := range failed {
		b.t.Fatalf("inbox item %s failed: %s", it.ID, it.LastError)
	}
	require.Zero(b.t, b.count(&models.InboxItem{}, "app = ? AND processed_at IS NULL", b.info.Name), "every item processed")
}

// testWebhook: create, update and delete of every webhook object arrive as
// signed provider webhooks, each exactly one event; the provider retrying a
// delivery and the next poll seeing the same change emit nothing more.
func testWebhook(t *testing.T, b *bundle) {
	b.initial()
	b.h.Webhooks(t, b.conn)
	objects := b.webhookObjects()
	ids := b.createEach(objects)
	reqs := b.deliver()
	b.requireOnePer(b.dataEvents(), ids, models.UpdateCreated, models.SourceWebhook)
	b.thenQuiet(reqs)

	for o, id := range ids {
		b.h.Update(t, b.conn, o, id)
	}
	reqs = b.deliver()
	upd := b.dataEvents()
	b.requireOnePer(upd, ids, models.UpdateUpdated, models.SourceWebhook)
	b.requireChanges(upd)
	b.thenQuiet(reqs)

	for o, id := range ids {
		b.h.Delete(t, b.conn, o, id)
	}
	reqs = b.deliver()
	b.requireOnePer(b.dataEvents(), ids, models.UpdateDeleted, models.SourceWebhook)
	b.thenQuiet(reqs)
}

// thenQuiet redelivers reqs (a provider retry) and polls: neither may emit.
func (b *bundle) thenQuiet(reqs []*connectors.InboundRequest) {
	b.t.Helper()
	items := b.count(&models.InboxItem{}, "app = ?", b.info.Name)
	b.receive(reqs)
	require.Equal(b.t, items, b.count(&models.InboxItem{}, "app = ?", b.info.Name), "a redelivery is stored once")
	require.Empty(b.t, topics(b.dataEvents()), "a redelivered webhook emits nothing")
	b.advance()
	if slices.Contains(b.info.Capture, connectors.CapturePolling) {
		b.pollCompleted()
		require.Empty(b.t, topics(b.dataEvents()), "the poll after a webhook emits nothing for the same change")
	}
	b.h.Webhooks(b.t, b.conn) // nothing new is expected; forget it either way
}

// testBadSignature: a tampered or unsigned webhook is refused as
// unauthorized before anything is stored; the genuine one is accepted.
func testBadSignature(t *testing.T, b *bundle) {
	before := b.count(&models.InboxItem{}, "app = ?", b.info.Name)
	b.h.Webhooks(t, b.conn)
	b.h.Create(t, b.conn, b.webhookObjects()[0])
	reqs := b.h.Webhooks(t, b.conn)
	require.NotEmpty(t, reqs)
	genuine := reqs[0]

	tampered := *genuine
	tampered.Body = append([]byte(nil), genuine.Body...)
	tampered.Body[len(tampered.Body)/2] ^= 0x01
	unsigned := *genuine
	unsigned.Header = genuine.Header.Clone()
	for k := range unsigned.Header {
		if k != "Content-Type" {
			delete(unsigned.Header, k)
		}
	}
	for name, r := range map[string]*connectors.InboundRequest{"tampered": &tampered, "unsigned": &unsigned} {
		err := b.recv.Receive(t.Context(), b.info.Name, r)
		require.Error(t, err, name)
		require.Equal(t, models.ErrCodeUnauthorized, models.ErrorCode(err), "%s: %v", name, err)
	}
	require.Equal(t, before, b.count(&models.InboxItem{}, "app = ?", b.info.Name), "a refused webhook stores nothing (zero rows)")

	b.receive([]*connectors.InboundRequest{genuine})
	require.Equal(t, before+1, b.count(&models.InboxItem{}, "app = ?", b.info.Name), "the genuine webhook is stored")
	data := b.dataEvents()
	require.Len(t, data, 1, "the genuine webhook is processed: %v", topics(data))
	b.requireEnvelope(data[0], models.UpdateCreated, models.SourceWebhook)
}

// testLateWebhook: a webhook delayed past a newer change that a poll already
// forwarded emits nothing and does not roll the record back: the next poll
// still finds nothing to report.
func testLateWebhook(t *testing.T, b *bundle) {
	b.initial()
	b.h.Webhooks(t, b.conn)
	object := b.webhookObjects()[0]
	id := b.h.Create(t, b.conn, object)
	b.deliver()
	b.requireOnePer(b.dataEvents(), map[string]string{object: id}, models.UpdateCreated, models.SourceWebhook)

	b.advance()
	b.h.Update(t, b.conn, object, id)
	late := b.h.Webhooks(t, b.conn) // held back by the network
	require.NotEmpty(t, late)
	b.advance()
	b.h.Update(t, b.conn, object, id)
	b.h.Webhooks(t, b.conn) // lost
	b.advance()
	b.pollCompleted()
	b.requireOnePer(b.dataEvents(), map[string]string{object: id}, models.UpdateUpdated, models.SourcePoll)

	b.receive(late)
	require.Empty(t, topics(b.dataEvents()), "an older version arriving late emits nothing")
	b.advance()
	b.pollCompleted()
	require.Empty(t, topics(b.dataEvents()), "the late webhook did not roll the snapshot back")
}
