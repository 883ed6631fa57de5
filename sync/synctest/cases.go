package synctest

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/sync/poll"
)

// runPayload is the dataPayload of sync/completed.
type runPayload struct {
	RunID   string   `json:"runId"`
	Created int      `json:"created"`
	Updated int      `json:"updated"`
	Deleted int      `json:"deleted"`
	Scanned int      `json:"scanned"`
	Initial bool     `json:"initial"`
	Objects []string `json:"objects"`
}

// requireOnlyCompleted requires that envs is exactly one sync/completed and
// returns its payload.
func (b *bundle) requireOnlyCompleted(envs []models.Envelope, res poll.Result) runPayload {
	b.t.Helper()
	require.Len(b.t, envs, 1, "want only sync/completed, got %v", topics(envs))
	e := envs[0]
	require.Equal(b.t, models.TopicSyncCompleted, e.Topic)
	require.Equal(b.t, models.SourceSystem, e.Source)
	require.Equal(b.t, b.row.ID, e.ConnectionID)
	var p runPayload
	require.NoError(b.t, json.Unmarshal(e.DataPayload, &p))
	require.Equal(b.t, res.RunID, p.RunID)
	require.ElementsMatch(b.t, b.info.Objects, p.Objects, "every object polled (in turn order)")
	return p
}

func topics(envs []models.Envelope) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.Topic + ":" + e.UpdateType
	}
	return out
}

// testFirstSync: records that exist before the first sync are recorded
// silently; the run ends with one sync/completed counting them; the next run
// finds nothing new.
func testFirstSync(t *testing.T, b *bundle) {
	ids := b.createEach(b.h.Objects)
	paged := b.createMany(b.h.Objects[0], b.pagedRecords())
	b.advance()
	res := b.pollCompleted()
	require.True(t, res.Initial)
	p := b.requireOnlyCompleted(b.events(), res)
	require.True(t, p.Initial)
	require.GreaterOrEqual(t, p.Created, len(ids)+len(paged), "every seeded record counted")
	require.GreaterOrEqual(t, p.Scanned, len(ids)+len(paged))
	for _, id := range paged {
		require.Equal(t, int64(1), b.count(&models.Snapshot{}, "connection_id = ? AND object = ? AND remote_id = ?", b.row.ID, b.h.Objects[0], id),
			"paged record %s has no snapshot after the first sync", id)
	}
	for o, id := range ids {
		require.Equal(t, int64(1), b.count(&models.Snapshot{}, "connection_id = ? AND object = ? AND remote_id = ? AND deleted = ?", b.row.ID, o, id, false),
			"%s %s has no snapshot after the first sync", o, id)
	}
	var run models.SyncRun
	require.NoError(t, b.db.First(&run, "id = ?", res.RunID).Error)
	require.Equal(t, poll.RunCompleted, run.Status)
	require.True(t, run.Initial)

	b.advance()
	res = b.pollCompleted()
	require.False(t, res.Initial)
	p = b.requireOnlyCompleted(b.events(), res)
	require.False(t, p.Initial)
	require.Zero(t, p.Created+p.Updated+p.Deleted, "a re-poll with no change finds none: %+v", p)
}

// testPoll: create, update and delete of every object, each seen by the next
// poll as exactly one event of the object's topic; a quiet re-poll emits none.
func testPoll(t *testing.T, b *bundle) {
	b.initial()
	ids := b.createEach(b.h.Objects)
	b.advance()
	b.pollCompleted()
	b.requireOnePer(b.dataEvents(), ids, models.UpdateCreated, models.SourcePoll)

	for o, id := range ids {
		b.h.Update(t, b.conn, o, id)
	}
	b.advance()
	b.pollCompleted()
	upd := b.dataEvents()
	b.requireOnePer(upd, ids, models.UpdateUpdated, models.SourcePoll)
	b.requireChanges(upd)

	for o, id := range ids {
		b.h.Delete(t, b.conn, o, id)
	}
	b.advance()
	b.pollCompleted()
	b.requireOnePer(b.dataEvents(), ids, models.UpdateDeleted, models.SourcePoll)

	b.advance()
	b.pollCompleted()
	require.Empty(t, topics(b.dataEvents()), "a quiet re-poll emits nothing")
}

// requireChanges requires that updated events name their changed fields
// (never volatile ones) and give previous values only for those.
func (b *bundle) requireChanges(envs []models.Envelope) {
	b.t.Helper()
	for _, e := range envs {
		require.NotEmpty(b.t, e.ChangedFields, "%s updated without changedFields", e.Topic)
		for _, f := range e.ChangedFields {
			require.NotContains(b.t, models.VolatileFields, f)
		}
		for f := range e.Previous { // a field seen for the first time has no previous value
			require.Contains(b.t, e.ChangedFields, f, "%s: previous value of an unchanged field", e.Topic)
		}
	}
}

// pagedRecords is how many records span more than three pages.
func (b *bundle) pagedRecords() int { return 3*b.h.PageSize + 1 }

// createMany creates n records of object and returns their ids.
func (b *bundle) createMany(object string, n int) []string {
	ids := make([]string, 0, n)
	for range n {
		ids = append(ids, b.h.Create(b.t, b.conn, object))
	}
	return ids
}

// requireCreatedOnce requires that envs are created events of object, one
// per id, none twice.
func (b *bundle) requireCreatedOnce(envs []models.Envelope, object string, ids []string) {
	b.t.Helper()
	var got []string
	for _, e := range envs {
		b.requireEnvelope(e, models.UpdateCreated, models.SourcePoll)
		require.Equal(b.t, models.TopicFor(object), e.Topic)
		got = append(got, remoteID(b.t, e))
	}
	require.ElementsMatch(b.t, ids, got, "every record exactly once")
}

// testPaging: more than three pages of new records, each one event.
func testPaging(t *testing.T, b *bundle) {
	b.initial()
	object := b.h.Objects[0]
	ids := b.createMany(object, b.pagedRecords())
	b.advance()
	b.pollCompleted()
	b.requireCreatedOnce(b.dataEvents(), object, ids)
	require.Greater(t, b.pub.pagesOf(models.TopicFor(object)), 3, "the listing must span more than 3 pages of %d", b.h.PageSize)
}

// testDeferred: the provider fails (429 or 5xx) after the first page of a
// run: the run is deferred with a retry delay and no sync/* event, the
// committed page's cursor is kept, and the next run resumes without losing
// or repeating a record.
func testDeferred(t *testing.T, b *bundle, kind string) {
	b.initial()
	before := b.cursors()
	object := b.h.Objects[0]
	ids := b.createMany(object, b.pagedRecords())
	b.advance()
	b.pub.afterFirstPage(func() { b.h.FailNext(t, b.conn, kind, 1) })
	res := b.poll()
	require.Equal(t, poll.RunDeferred, res.Status, "a %s must defer the run: %s", kind, res.Error)
	require.Positive(t, res.RetryAfter)
	var run models.SyncRun
	require.NoError(t, b.db.First(&run, "id = ?", res.RunID).Error)
	require.Equal(t, poll.RunDeferred, run.Status)
	first, system := split(b.events())
	require.Empty(t, topics(system), "a deferred run reports nothing")
	require.NotEmpty(t, first, "the first page was committed")
	require.Less(t, len(first), len(ids), "the failure came before the last page")
	after := b.cursors()
	for k, v := range before {
		require.NotEmpty(t, after[k], "cursor %s (%q) lost by the deferred run", k, v)
	}

	b.advance()
	b.pollCompleted()
	rest := b.dataEvents()
	b.requireCreatedOnce(append(first, rest...), object, ids)
}

// testTokenRefresh: the access token expires in the middle of a run; the
// connector refreshes it once and the run completes with every record.
func testTokenRefresh(t *testing.T, b *bundle) {
	b.initial()
	object := b.h.Objects[0]
	ids := b.createMany(object, b.pagedRecords())
	b.advance()
	refreshed := b.refreshes.Load()
	b.pub.afterFirstPage(func() { b.h.FailNext(t, b.conn, "expired_token", 1) })
	b.pollCompleted()
	b.requireCreatedOnce(b.dataEvents(), object, ids)
	if b.conn.Refresh != nil {
		require.Greater(t, b.refreshes.Load(), refreshed, "the expired token was refreshed")
	}
	require.Zero(t, b.reauth.Load(), "a refreshable token never asks for re-authorization")
}

// testTokenExpiry: the access token outlives its lifetime between two runs;
// the next run refreshes it and completes with every change.
func testTokenExpiry(t *testing.T, b *bundle) {
	require.NotNil(t, b.conn.Refresh, "expiring tokens need Conn.Refresh")
	b.initial()
	b.h.Advance(b.h.TokenLifetime + time.Minute)
	object := b.h.Objects[0]
	ids := b.createMany(object, b.pagedRecords())
	b.advance()
	refreshed := b.refreshes.Load()
	b.pollCompleted()
	b.requireCreatedOnce(b.dataEvents(), object, ids)
	require.Greater(t, b.refreshes.Load(), refreshed, "the expired token was refreshed")
	require.Zero(t, b.reauth.Load())
}

// testDeletedPayload: a deleted event's dataPayload is the last version seen,
// marked remoteDeleted — also when the provider reports a deletion without
// the record (getDeleted, archived listing, full scan, delete webhooks).
func testDeletedPayload(t *testing.T, b *bundle) {
	b.initial()
	ids := b.createEach(b.h.Objects)
	b.advance()
	b.pollCompleted()
	b.events()
	for o, id := range ids {
		b.h.Delete(t, b.conn, o, id)
	}
	b.advance()
	b.pollCompleted()
	del := b.dataEvents()
	b.requireOnePer(del, ids, models.UpdateDeleted, models.SourcePoll)
	var wrong []string
	for _, e := range del {
		var c models.Common
		require.NoError(t, json.Unmarshal(e.DataPayload, &c))
		require.NotEmpty(t, c.RemoteID)
		if !c.RemoteDeleted {
			wrong = append(wrong, e.Topic)
		}
	}
	require.Empty(t, wrong, "deleted events must carry remoteDeleted=true in dataPayload")
}

// testFirstSyncDeferred: the provider rate-limits the first sync after its
// first page; the resumed run is still silent, loses nothing, and reports
// sync/completed once, at its end.
func testFirstSyncDeferred(t *testing.T, b *bundle) {
	object := b.h.Objects[0]
	ids := b.createMany(object, b.pagedRecords())
	b.advance()
	b.afterCursorWrite(func() { b.h.FailNext(t, b.conn, "rate_limit", 1) })
	res := b.poll()
	require.Equal(t, poll.RunDeferred, res.Status, "the first sync must be deferred: %s", res.Error)
	require.True(t, res.Initial)
	require.Empty(t, topics(b.events()), "a deferred first sync emits nothing")

	b.advance()
	res = b.pollCompleted()
	require.True(t, res.Initial, "the resumed run is still the first sync")
	b.requireOnlyCompleted(b.events(), res)
	for _, id := range ids {
		require.Equal(t, int64(1), b.count(&models.Snapshot{}, "connection_id = ? AND object = ? AND remote_id = ?", b.row.ID, object, id),
			"record %s lost by the deferred first sync", id)
	}
	b.advance()
	res = b.pollCompleted()
	require.False(t, res.Initial)
	require.Empty(t, topics(b.dataEvents()))
}

// testIncludeRaw: on a connection created with includeRaw, every created and
// updated event's dataPayload carries the provider's record as remoteData,
// through polling and, where the app has them, native webhooks. (Without it,
// requireEnvelope requires that no event carries remoteData.)
func testIncludeRaw(t *testing.T, b *bundle) {
	require.NoError(t, b.db.Model(&models.Connection{}).Where("id = ?", b.row.ID).Update("include_raw", true).Error)
	b.row.IncludeRaw = true
	b.initial()
	ids := b.createEach(b.h.Objects)
	b.advance()
	b.pollCompleted()
	b.requireOnePer(b.dataEvents(), ids, models.UpdateCreated, models.SourcePoll)
	if !slices.Contains(b.info.Capture, connectors.CaptureWebhook) {
		return
	}
	b.h.Webhooks(t, b.conn)
	objects := b.webhookObjects()
	want := map[string]string{}
	for _, o := range objects {
		b.h.Update(t, b.conn, o, ids[o])
		want[o] = ids[o]
	}
	b.deliver()
	b.requireOnePer(b.dataEvents(), want, models.UpdateUpdated, models.SourceWebhook)
}
