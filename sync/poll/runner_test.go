package poll

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// seed puts n contacts c1..cn in the fake app, one second apart.
func seed(b *bundle, n int) {
	for i := 1; i <= n; i++ {
		b.app.set(fmt.Sprintf("c%d", i), fmt.Sprintf("c%d@x.test", i), t0.Add(-time.Hour+time.Duration(i)*time.Second))
	}
}

func firstSync(t *testing.T, b *bundle, n int) {
	t.Helper()
	seed(b, n)
	res, err := b.run(t)
	require.NoError(t, err)
	require.Equal(t, RunCompleted, res.Status)
	b.pub.take()
	b.clk.Add(time.Hour)
}

func syncPayload(t *testing.T, e *models.Envelope) runPayload {
	t.Helper()
	var p runPayload
	require.NoError(t, json.Unmarshal(e.DataPayload, &p))
	return p
}

func TestFirstSyncIsSilent(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		seed(b, 5)
		res, err := b.run(t)
		require.NoError(t, err)
		assert.Equal(t, RunCompleted, res.Status)
		assert.True(t, res.Initial)
		assert.Equal(t, Counts{Created: 5, Scanned: 5}, res.Counts)

		envs := b.pub.take()
		require.Len(t, envs, 1, "only sync/completed: %v", topicsOf(envs))
		e := envs[0]
		assert.Equal(t, models.TopicSyncCompleted, e.Topic)
		assert.Equal(t, models.UpdateCreated, e.UpdateType)
		assert.Equal(t, models.CategorySync, e.Category)
		assert.Equal(t, models.SourceSystem, e.Source)
		assert.Equal(t, "Fake CRM", e.Name)
		assert.Equal(t, "user-42", e.UserID)
		assert.Equal(t, "Gregg", e.UserName)
		p := syncPayload(t, e)
		assert.Equal(t, Counts{Created: 5, Scanned: 5}, p.Counts)
		assert.True(t, p.Initial)
		assert.Equal(t, []string{"contacts"}, p.Objects)
		assert.JSONEq(t, fmt.Sprintf(`{"runId":%q,"created":5,"updated":0,"deleted":0,"scanned":5,"initial":true,"objects":["contacts"]}`, res.RunID), string(e.DataPayload))

		c := b.conn(t)
		assert.True(t, c.InitialSyncDone)
		require.NotNil(t, c.LastSyncAt)
		assert.True(t, c.LastSyncAt.Equal(t0))
		cur := b.cursors(t)
		assert.Equal(t, t0.Add(-time.Hour+5*time.Second).Format(time.RFC3339Nano), cur["contacts"])
		assert.Equal(t, t0.Format(time.RFC3339Nano), cur["contacts#deleted"])

		var row models.SyncRun
		require.NoError(t, db.First(&row, "id = ?", res.RunID).Error)
		assert.Equal(t, RunCompleted, row.Status)
		assert.True(t, row.Initial)
		assert.Equal(t, []int{5, 0, 0, 5}, []int{row.Created, row.Updated, row.Deleted, row.Scanned})
		assert.NotNil(t, row.FinishedAt)
	})
}

func TestEmitBackfill(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", b.connID).Update("emit_backfill", true).Error)
		seed(b, 3)
		_, err := b.run(t)
		require.NoError(t, err)
		assert.Equal(t, []string{"crm/contacts:created", "crm/contacts:created", "crm/contacts:created", "sync/completed:created"},
			topicsOf(b.pub.take()))
	})
}

func TestLaterChangeEmitsOneUpdate(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		firstSync(t, b, 3)
		b.app.set("c2", "new@x.test", t0.Add(10*time.Minute))
		b.app.set("c4", "c4@x.test", t0.Add(11*time.Minute))

		res, err := b.run(t)
		require.NoError(t, err)
		assert.False(t, res.Initial)
		envs := b.pub.take()
		require.Equal(t, []string{"crm/contacts:updated", "crm/contacts:created", "sync/completed:created"}, topicsOf(envs))
		u := envs[0]
		assert.Equal(t, models.SourcePoll, u.Source)
		assert.Equal(t, b.connID, u.ConnectionID)
		assert.Equal(t, "crm", u.Category)
		assert.Equal(t, "Fake CRM", u.Name)
		assert.Equal(t, []string{"email"}, u.ChangedFields)
		assert.JSONEq(t, `"c2@x.test"`, string(u.Previous["email"]))
		assert.Contains(t, string(u.DataPayload), "new@x.test")
		assert.Empty(t, u.ID, "Publish assigns ids")
		assert.Equal(t, Counts{Created: 1, Updated: 1, Scanned: 3}, syncPayload(t, envs[2]).Counts)

		// Nothing changed: the overlapping re-read emits nothing.
		res, err = b.run(t)
		require.NoError(t, err)
		assert.Equal(t, []string{"sync/completed:created"}, topicsOf(b.pub.take()))
		assert.Equal(t, 0, res.Counts.Created+res.Counts.Updated+res.Counts.Deleted)
	})
}

func TestRereadAfterCrashEmitsNothing(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		firstSync(t, b, 4)
		old := b.conn(t).Cursors
		b.app.set("c1", "changed@x.test", t0.Add(time.Minute))
		_, err := b.run(t)
		require.NoError(t, err)
		require.Len(t, dataEvents(b.pub.take()), 1)

		// A crash before the cursor advanced: the pages are listed again.
		require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", b.connID).Update("cursors", old).Error)
		res, err := b.run(t)
		require.NoError(t, err)
		assert.Empty(t, dataEvents(b.pub.take()))
		assert.Equal(t, 2, res.Counts.Scanned)
	})
}

func TestRateLimitKeepsCursorAndDefers(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		seed(b, 5)
		b.app.failPage, b.app.failErr = 2, &connectors.RateLimitedError{RetryAfter: 90 * time.Second, Reason: "429"}
		res, err := b.run(t)
		require.NoError(t, err)
		assert.Equal(t, RunDeferred, res.Status)
		assert.Equal(t, 90*time.Second, res.RetryAfter)
		assert.Contains(t, res.Error, "rate limited")
		assert.Empty(t, b.pub.take(), "deferred: silent first sync, no sync/* event")

		page1 := t0.Add(-time.Hour + 2*time.Second).Format(time.RFC3339Nano)
		assert.Equal(t, map[string]string{"contacts": page1}, b.cursors(t))
		assert.False(t, b.conn(t).InitialSyncDone)
		var row models.SyncRun
		require.NoError(t, db.First(&row, "id = ?", res.RunID).Error)
		assert.Equal(t, RunDeferred, row.Status)
		assert.Equal(t, 2, row.Created)

		// A 5xx without Retry-After uses the backoff.
		b.app.failErr = &connectors.ProviderError{StatusCode: 503, Temporary: true}
		res, err = b.run(t)
		require.NoError(t, err)
		assert.Equal(t, RunDeferred, res.Status)
		assert.Equal(t, DefaultBackoff, res.RetryAfter)
		resume := b.cursors(t)["contacts"]
		assert.NotEqual(t, page1, resume, "the 5xx run committed its first page")

		// The next run resumes from the stored cursor and finishes silently.
		b.app.failPage = 0
		res, err = b.run(t)
		require.NoError(t, err)
		assert.Equal(t, RunCompleted, res.Status)
		assert.Equal(t, resume, b.app.requests[len(b.app.requests)-1].Cursor)
		assert.Equal(t, []string{"sync/completed:created"}, topicsOf(b.pub.take()))
		assert.True(t, b.conn(t).InitialSyncDone)
		var n int64
		require.NoError(t, db.Model(&models.Snapshot{}).Where("connection_id = ?", b.connID).Count(&n).Error)
		assert.EqualValues(t, 5, n)
	})
}

func TestDeletionsFromDeletedEndpoint(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		firstSync(t, b, 3)
		b.app.remove("c3", t0.Add(30*time.Minute), true)
		res, err := b.run(t)
		require.NoError(t, err)
		envs := b.pub.take()
		require.Equal(t, []string{"crm/contacts:deleted", "sync/completed:created"}, topicsOf(envs))
		assert.Contains(t, string(envs[0].DataPayload), "c3@x.test", "a delete carries the last payload")
		assert.Equal(t, 1, res.Counts.Deleted)
		assert.True(t, b.snapshot(t, "c3").Deleted)

		// The next window starts at this run: the deletion is not reported again.
		b.clk.Add(time.Hour)
		_, err = b.run(t)
		require.NoError(t, err)
		assert.Empty(t, dataEvents(b.pub.take()))
	})
}

func TestWindowExpiredFullScanDeletesUnseen(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		firstSync(t, b, 5)
		b.app.remove("c2", t0, false) // gone without a deletion record
		b.app.remove("c4", t0, false)
		b.app.windowExpired = true
		res, err := b.run(t)
		require.NoError(t, err)
		assert.Equal(t, RunCompleted, res.Status)
		assert.Equal(t, []string{"crm/contacts:deleted", "crm/contacts:deleted", "sync/completed:created"}, topicsOf(b.pub.take()))
		assert.Equal(t, Counts{Deleted: 2, Scanned: 3}, res.Counts)
		assert.True(t, b.app.requests[len(b.app.requests)-1].FullScan)
		assert.EqualValues(t, 1, b.conn(t).Generation)
		assert.True(t, b.snapshot(t, "c2").Deleted)
		assert.False(t, b.snapshot(t, "c1").Deleted)
		assert.EqualValues(t, 1, b.snapshot(t, "c1").ScanGeneration)
	})
}

func TestFailedScanDeletesNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status string
	}{
		{"rate limited", &connectors.RateLimitedError{RetryAfter: time.Minute}, RunDeferred},
		{"malformed", &connectors.ProviderError{StatusCode: 200, Code: "malformed_page", Message: "bad json"}, RunFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
				b := setup(t, db)
				firstSync(t, b, 5)
				b.app.remove("c5", t0, false)
				b.app.windowExpired = true
				b.app.failPage, b.app.failErr, b.app.failFullOnly = 2, tc.err, true
				res, _ := b.run(t)
				assert.Equal(t, tc.status, res.Status)
				assert.Empty(t, dataEvents(b.pub.take()))
				assert.False(t, b.snapshot(t, "c5").Deleted)
				// The pass did not complete: its deletion window did not move.
				assert.Equal(t, t0.Format(time.RFC3339Nano), b.cursors(t)["contacts#deleted"])
			})
		})
	}
}

func TestPublishErrorRollsBackPage(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		firstSync(t, b, 3)
		probes := b.probes(t) // the sync/completed of the first sync
		require.EqualValues(t, 1, probes)
		before := b.conn(t).Cursors
		hash := b.snapshot(t, "c1").ContentHash

		b.app.set("c1", "changed@x.test", t0.Add(time.Minute))
		b.pub.failData = errPublish
		res, err := b.run(t)
		require.ErrorIs(t, err, errPublish)
		assert.Equal(t, RunFailed, res.Status)
		assert.Equal(t, before, b.conn(t).Cursors, "cursor rolled back")
		assert.Equal(t, hash, b.snapshot(t, "c1").ContentHash, "snapshot rolled back")
		envs := b.pub.take()
		require.Equal(t, []string{"sync/failed:created"}, topicsOf(envs))
		assert.Contains(t, syncPayload(t, envs[0]).Error, "publish failed")
		assert.EqualValues(t, probes+1, b.probes(t), "only sync/failed's row was committed")

		// Once Publish works the change is emitted exactly once.
		b.pub.failData = nil
		_, err = b.run(t)
		require.NoError(t, err)
		assert.Len(t, dataEvents(b.pub.take()), 1)
	})
}

func TestMalformedPageFailsAndKeepsCursor(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		firstSync(t, b, 2)
		before := b.cursors(t)
		for i := 3; i <= 6; i++ {
			b.app.set(fmt.Sprintf("c%d", i), "n@x.test", t0.Add(time.Duration(i)*time.Minute))
		}
		b.app.badPage = 2
		res, err := b.run(t)
		require.Error(t, err)
		assert.Equal(t, RunFailed, res.Status)
		assert.Contains(t, err.Error(), "malformed_page")
		envs := b.pub.take()
		// Page 1 (c2 unchanged, c3 new) committed with its cursor; page 2 did not.
		assert.Equal(t, []string{"crm/contacts:created", "sync/failed:created"}, topicsOf(envs))
		assert.Contains(t, syncPayload(t, envs[1]).Error, "no data")
		assert.Equal(t, t0.Add(3*time.Minute).Format(time.RFC3339Nano), b.cursors(t)["contacts"])
		assert.NotEqual(t, before["contacts"], b.cursors(t)["contacts"])
		var row models.SyncRun
		require.NoError(t, db.First(&row, "id = ?", res.RunID).Error)
		assert.Equal(t, RunFailed, row.Status)
		assert.Contains(t, row.Error, "malformed_page")
	})
}

func TestUnauthorizedMarksNeedsReauth(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		b.opener.openErr = fmt.Errorf("refresh: %w", connectors.ErrUnauthorized)
		res, err := b.run(t)
		require.ErrorIs(t, err, connectors.ErrUnauthorized)
		assert.True(t, res.NeedsReauth)
		assert.Equal(t, RunFailed, res.Status)
		assert.Equal(t, []string{b.connID}, b.opener.reauth)
		assert.Equal(t, []string{"sync/failed:created"}, topicsOf(b.pub.take()))
	})
}

func TestLostLeaseOrDeletedConnectionStops(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		seed(b, 3)
		c := b.conn(t)
		c.LeaseToken = "someone-else"
		res, err := b.runner.Run(t.Context(), c)
		require.NoError(t, err)
		assert.Equal(t, RunAborted, res.Status)
		assert.Empty(t, b.pub.take())
		var n int64
		require.NoError(t, db.Model(&models.Snapshot{}).Count(&n).Error)
		assert.Zero(t, n)

		c = b.conn(t)
		require.NoError(t, db.Delete(&models.Connection{}, "id = ?", b.connID).Error)
		res, err = b.runner.Run(t.Context(), c)
		require.NoError(t, err)
		assert.Equal(t, RunAborted, res.Status)
		assert.Empty(t, b.pub.take())
	})
}

func TestCancelledRunIsDeferredAndResumes(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		seed(b, 5)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		b.app.afterPage = func(page int) {
			if page == 1 {
				cancel() // shutdown, or the scheduler's run timeout
			}
		}
		res, err := b.runner.Run(ctx, b.conn(t))
		require.NoError(t, err)
		assert.Equal(t, RunDeferred, res.Status)
		assert.Zero(t, res.RetryAfter, "due again at once")
		assert.Equal(t, t0.Add(-time.Hour+2*time.Second).Format(time.RFC3339Nano), b.cursors(t)["contacts"])
		var row models.SyncRun
		require.NoError(t, db.First(&row, "id = ?", res.RunID).Error)
		assert.Equal(t, RunDeferred, row.Status)

		b.app.afterPage = nil
		res, err = b.run(t)
		require.NoError(t, err)
		assert.Equal(t, RunCompleted, res.Status)
		assert.Equal(t, 3, res.Counts.Created, "the rest of the first sync")
	})
}

func TestFullScansForDeletionsAreRationed(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		b.runner.FullScanEvery = 24 * time.Hour
		firstSync(t, b, 4)
		b.app.windowExpired = true // the app cannot list deletions

		// No full scan completed yet: this run scans and finds the deletion.
		b.app.remove("c1", t0, false)
		res, err := b.run(t)
		require.NoError(t, err)
		require.Equal(t, 1, res.Counts.Deleted)
		require.True(t, b.app.requests[len(b.app.requests)-1].FullScan)
		b.pub.take()

		// Within the period: an incremental poll only; the deletion waits.
		b.clk.Add(time.Hour)
		b.app.remove("c2", t0, false)
		b.app.set("c3", "new@x.test", b.clk.Now())
		res, err = b.run(t)
		require.NoError(t, err)
		require.False(t, b.app.requests[len(b.app.requests)-1].FullScan)
		require.Equal(t, Counts{Updated: 1, Scanned: res.Counts.Scanned}, res.Counts)
		require.False(t, b.snapshot(t, "c2").Deleted)
		b.pub.take()

		// Once the period passed, the next run scans again and catches up.
		b.clk.Add(24 * time.Hour)
		res, err = b.run(t)
		require.NoError(t, err)
		require.True(t, b.app.requests[len(b.app.requests)-1].FullScan)
		require.Equal(t, 1, res.Counts.Deleted)
		require.True(t, b.snapshot(t, "c2").Deleted)
	})
}

// flakyFirst is an app whose first object always answers a temporary error.
type flakyFirst struct{ *fakeApp }

func (f flakyFirst) Info() connectors.Info {
	i := f.fakeApp.Info()
	i.Objects = []string{"leads", "contacts"}
	return i
}

func (f flakyFirst) ListChanges(ctx context.Context, c *connectors.Conn, req connectors.ListRequest, fn func(connectors.Page) error) error {
	if req.Object == "leads" {
		return &connectors.ProviderError{StatusCode: 503, Message: "try later", Temporary: true}
	}
	return f.fakeApp.ListChanges(ctx, c, req, fn)
}

func TestTemporaryErrorOnOneObjectDoesNotStarveTheOthers(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		b.runner.Apps = fakeApps{flakyFirst{b.app}}
		seed(b, 3)
		res, err := b.run(t)
		require.NoError(t, err)
		require.Equal(t, RunDeferred, res.Status, "the flaky object defers the run")
		require.Equal(t, 3, res.Counts.Scanned, "the object after it was still polled")
		require.NotEmpty(t, b.cursors(t)["contacts"])
		require.Contains(t, res.Error, "leads")
	})
}
