package synctest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/sync/poll"
)

// poll runs one poll of the connection as the scheduler would.
func (b *bundle) poll() poll.Result {
	b.t.Helper()
	var c models.Connection
	require.NoError(b.t, b.db.First(&c, "id = ?", b.row.ID).Error)
	res, err := b.runner.Run(b.t.Context(), &c)
	require.NoError(b.t, err, "poll: %+v", res)
	return res
}

// pollCompleted polls and requires a completed run.
func (b *bundle) pollCompleted() poll.Result {
	b.t.Helper()
	res := b.poll()
	require.Equal(b.t, poll.RunCompleted, res.Status, res.Error)
	return res
}

// initial runs the silent first sync and forgets its events.
func (b *bundle) initial() {
	b.t.Helper()
	res := b.pollCompleted()
	require.True(b.t, res.Initial)
	b.events()
	b.advance()
}

func (b *bundle) advance() { b.h.Advance(time.Minute) }

// events returns the events forwarding stored for the account since the
// last call, in sequence order, as receivers get them.
func (b *bundle) events() []models.Envelope {
	b.t.Helper()
	var rows []models.Event
	require.NoError(b.t, b.db.Where("account_id = ? AND seq > ?", b.account, b.seq).Order("seq").Find(&rows).Error)
	out := make([]models.Envelope, 0, len(rows))
	for _, r := range rows {
		var e models.Envelope
		require.NoError(b.t, json.Unmarshal(r.Body, &e), "event body %s", r.Body)
		require.Equal(b.t, r.ID, e.ID)
		require.Equal(b.t, r.Topic, e.Topic)
		out = append(out, e)
		b.seq = r.Seq
	}
	return out
}

// split separates data events from system events.
func split(envs []models.Envelope) (data, system []models.Envelope) {
	for _, e := range envs {
		if isSystem(e.Topic) {
			system = append(system, e)
		} else {
			data = append(data, e)
		}
	}
	return data, system
}

// dataEvents returns the new data events, requiring at most sync/* besides.
func (b *bundle) dataEvents() []models.Envelope {
	b.t.Helper()
	data, system := split(b.events())
	for _, e := range system {
		require.Equal(b.t, models.TopicSyncCompleted, e.Topic, "unexpected system event %s: %s", e.Topic, e.DataPayload)
	}
	return data
}

// remoteID reads dataPayload.remoteId.
func remoteID(t *testing.T, e models.Envelope) string {
	t.Helper()
	var c models.Common
	require.NoError(t, json.Unmarshal(e.DataPayload, &c), "payload %s", e.DataPayload)
	return c.RemoteID
}

// requireEnvelope checks what every data event of the connection carries.
func (b *bundle) requireEnvelope(e models.Envelope, updateType, source string) {
	b.t.Helper()
	require.True(b.t, strings.HasPrefix(e.ID, models.PrefixEvent+"_"), "event id %q", e.ID)
	require.Equal(b.t, updateType, e.UpdateType, "%s %s", e.Topic, e.DataPayload)
	require.Equal(b.t, source, e.Source)
	require.Equal(b.t, b.row.ID, e.ConnectionID)
	require.Equal(b.t, userID, e.UserID)
	require.Equal(b.t, userName, e.UserName)
	require.Equal(b.t, b.info.DisplayName, e.Name)
	require.Equal(b.t, models.CategoryOf(e.Topic), e.Category)
	require.False(b.t, e.EventTimestamp.IsZero())
	require.False(b.t, e.DetectedAt.IsZero(), "detectedAt")
	require.NotEmpty(b.t, e.DataPayload)
	// eventTimestamp is the provider's change time where the record says it.
	var common models.Common
	require.NoError(b.t, json.Unmarshal(e.DataPayload, &common))
	if common.RemoteUpdatedAt != nil && updateType != models.UpdateDeleted {
		require.Equal(b.t, common.RemoteUpdatedAt.UTC().Truncate(time.Millisecond), e.EventTimestamp.UTC(),
			"%s %s: eventTimestamp is the provider's modification time (detected %s)", e.Topic, updateType, e.DetectedAt)
	}
	var fields map[string]json.RawMessage
	require.NoError(b.t, json.Unmarshal(e.DataPayload, &fields), "dataPayload is a JSON object")
	raw, hasRaw := fields["remoteData"]
	switch {
	case !b.row.IncludeRaw:
		require.False(b.t, hasRaw, "%s: remoteData without includeRaw", e.Topic)
	case updateType != models.UpdateDeleted: // a deletion may come without the record
		require.True(b.t, hasRaw, "%s %s: includeRaw but no remoteData", e.Topic, updateType)
		var obj map[string]json.RawMessage
		require.NoError(b.t, json.Unmarshal(raw, &obj), "remoteData is the provider's record (a JSON object)")
		require.Contains(b.t, string(raw), remoteID(b.t, e), "remoteData is this record")
	}
}

// requireOnePer requires exactly one event per (object, remote id) of want
// and nothing else, each of updateType from source.
func (b *bundle) requireOnePer(envs []models.Envelope, want map[string]string, updateType, source string) {
	b.t.Helper()
	got := map[string][]string{}
	for _, e := range envs {
		b.requireEnvelope(e, updateType, source)
		got[e.Topic] = append(got[e.Topic], remoteID(b.t, e))
	}
	exp := map[string][]string{}
	for object, id := range want {
		exp[models.TopicFor(object)] = []string{id}
	}
	require.Equal(b.t, exp, got, "want exactly one %s event per object (%s)", updateType, source)
}

// createEach creates one record of every object and returns object → id.
func (b *bundle) createEach(objects []string) map[string]string {
	ids := map[string]string{}
	for _, o := range objects {
		ids[o] = b.h.Create(b.t, b.conn, o)
	}
	return ids
}

// cursors reads the connection's stored cursors.
func (b *bundle) cursors() map[string]string {
	b.t.Helper()
	var c models.Connection
	require.NoError(b.t, b.db.First(&c, "id = ?", b.row.ID).Error)
	m := map[string]string{}
	require.NoError(b.t, json.Unmarshal([]byte(c.Cursors), &m))
	return m
}

func (b *bundle) count(model any, where string, args ...any) int64 {
	b.t.Helper()
	var n int64
	require.NoError(b.t, b.db.Model(model).Where(where, args...).Count(&n).Error)
	return n
}
