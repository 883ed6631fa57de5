package connections

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
	"github.com/tributary/tributary/sync/reconcile"
)

func TestCreateGetList(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		v := b.createCred(t, b.accA, "u1")
		assert.True(t, models.HasPrefix(v.ID, models.PrefixConnection))
		assert.Equal(t, "fakecrm", v.App)
		assert.Equal(t, models.ConnectionActive, v.Status)
		assert.Equal(t, "ext-u1", v.ExternalID)
		assert.Equal(t, "12h", v.PollInterval)
		assert.Nil(t, v.PollIntervalOverride)
		assert.Equal(t, t0, v.NextSyncAt)
		assert.Equal(t, []string{"https://trb.example.com/inbound/fakecrm"}, b.cred.subscribed)

		row := b.row(t, v.ID)
		assert.JSONEq(t, `{"region":"eu","hook_id":"hook-`+v.ID+`"}`, row.Metadata)
		assert.False(t, bytes.Contains(row.CredentialsEnc, []byte("good")), "credentials must be sealed")
		assert.WithinDuration(t, t0, row.NextSyncAt, 0)
		conn, err := b.svc.Open(ctx, &row)
		require.NoError(t, err)
		assert.Equal(t, map[string]string{"api_key": "good", "tenant": "u1"}, conn.Credentials)
		assert.Equal(t, "hook-"+v.ID, conn.Metadata["hook_id"])
		assert.Nil(t, conn.Refresh)

		// connection/created, inside the transaction, with the view as payload.
		require.Equal(t, []string{models.TopicConnectionCreated}, b.pub.topics())
		ev := b.pub.last()
		assert.True(t, b.pub.inTx[0])
		assert.Equal(t, models.UpdateCreated, ev.UpdateType)
		assert.Equal(t, v.ID, ev.ConnectionID)
		assert.Equal(t, "u1", ev.UserID)
		assert.Equal(t, "connection", ev.Category)
		assert.Equal(t, "Fake CRM", ev.Name)
		assert.Equal(t, models.SourceSystem, ev.Source)
		var payload map[string]any
		require.NoError(t, json.Unmarshal(ev.DataPayload, &payload))
		assert.Equal(t, v.ID, payload["id"])
		assert.NotContains(t, string(ev.DataPayload), "good")

		// Empty external id → the connection id.
		noext, err := b.svc.Create(ctx, b.accA, CreateInput{App: "fakecrm", UserID: "u2", Credentials: map[string]string{"api_key": "noext"}})
		require.NoError(t, err)
		assert.Equal(t, noext.ID, noext.ExternalID)
		third := b.createCred(t, b.accA, "u3")
		b.createCred(t, b.accB, "u1")

		got, err := b.svc.View(ctx, b.accA, v.ID)
		require.NoError(t, err)
		assert.Equal(t, v, got)

		page1, next, err := b.svc.List(ctx, b.accA, "", 2, "")
		require.NoError(t, err)
		require.Len(t, page1, 2)
		require.NotEmpty(t, next)
		page2, next2, err := b.svc.List(ctx, b.accA, "", 2, next)
		require.NoError(t, err)
		assert.Empty(t, next2)
		ids := []string{page1[0].ID, page1[1].ID, page2[0].ID}
		assert.Equal(t, []string{v.ID, noext.ID, third.ID}, ids)

		byUser, _, err := b.svc.List(ctx, b.accA, "u3", 50, "")
		require.NoError(t, err)
		require.Len(t, byUser, 1)
		assert.Equal(t, third.ID, byUser[0].ID)
		_, _, err = b.svc.List(ctx, b.accA, "", 50, "bogus")
		assert.Equal(t, models.ErrCodeInvalid, code(err))
	})
}

func TestIsolation(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		v := b.createCred(t, b.accA, "u1")
		_, err := b.svc.Get(ctx, b.accB, v.ID)
		assert.True(t, models.IsNotFound(err))
		_, err = b.svc.View(ctx, b.accB, v.ID)
		assert.True(t, models.IsNotFound(err))
		_, err = b.svc.UpdatePollInterval(ctx, b.accB, v.ID, "1h")
		assert.True(t, models.IsNotFound(err))
		assert.True(t, models.IsNotFound(b.svc.SyncNow(ctx, b.accB, v.ID)))
		assert.True(t, models.IsNotFound(b.svc.Delete(ctx, b.accB, v.ID)))
		list, _, err := b.svc.List(ctx, b.accB, "", 50, "")
		require.NoError(t, err)
		assert.Empty(t, list)
		_, err = b.svc.Get(ctx, b.accA, v.ID)
		require.NoError(t, err)
	})
}

func TestCreateValidation(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		good := map[string]string{"api_key": "good"}
		for _, tc := range []struct {
			name  string
			in    CreateInput
			field string
		}{
			{"unknown app", CreateInput{App: "nope", UserID: "u", Credentials: good}, "app"},
			{"no app", CreateInput{UserID: "u", Credentials: good}, "app"},
			{"oauth-only app", CreateInput{App: "fakeoauth", UserID: "u", Credentials: good}, "app"},
			{"no user", CreateInput{App: "fakecrm", Credentials: good}, "userId"},
			{"bad interval", CreateInput{App: "fakecrm", UserID: "u", Credentials: good, PollInterval: "often"}, "pollInterval"},
			{"below floor", CreateInput{App: "fakecrm", UserID: "u", Credentials: good, PollInterval: "1m"}, "pollInterval"},
			{"rejected credentials", CreateInput{App: "fakecrm", UserID: "u", Credentials: map[string]string{"api_key": "bad"}}, "credentials"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := b.svc.Create(ctx, b.accA, tc.in)
				require.Error(t, err)
				assert.Equal(t, models.ErrCodeUnprocessable, code(err), err.Error())
				assert.Equal(t, tc.field, field(err))
			})
		}
		_, err := b.svc.Create(ctx, b.accA, CreateInput{App: "fakecrm", UserID: "u", Credentials: map[string]string{"api_key": "down"}})
		assert.Equal(t, models.ErrCodeUnavailable, code(err), "a provider outage is not the user's fault")

		var n int64
		require.NoError(t, db.Model(&models.Connection{}).Count(&n).Error)
		assert.Zero(t, n)
		assert.Empty(t, b.pub.topics())

		v, err := b.svc.Create(ctx, b.accA, CreateInput{App: "fakecrm", UserID: "u", Credentials: good, PollInterval: "30m", EmitBackfill: true})
		require.NoError(t, err)
		assert.Equal(t, "30m", v.PollInterval)
		assert.Equal(t, "30m", *v.PollIntervalOverride)
		assert.True(t, v.EmitBackfill)
		assert.True(t, b.row(t, v.ID).EmitBackfill)
	})
}

func TestPollIntervals(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		six, floor := 6*time.Hour, time.Hour
		_, err := b.accounts.Update(ctx, b.accA, accounts.Update{DefaultPollInterval: &six, MinPollInterval: &floor})
		require.NoError(t, err)
		v := b.createCred(t, b.accA, "u1")
		assert.Equal(t, "6h", v.PollInterval, "account default")

		_, err = b.svc.UpdatePollInterval(ctx, b.accA, v.ID, "30m")
		assert.Equal(t, models.ErrCodeUnprocessable, code(err))
		assert.Equal(t, "pollInterval", field(err))
		assert.Contains(t, err.Error(), "1h")

		// Last synced an hour ago, next due in 11h: 2h moves it to 1h from now.
		last := t0.Add(-time.Hour)
		require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", v.ID).
			Updates(map[string]any{"last_sync_at": last, "next_sync_at": t0.Add(11 * time.Hour)}).Error)
		got, err := b.svc.UpdatePollInterval(ctx, b.accA, v.ID, "2h")
		require.NoError(t, err)
		assert.Equal(t, "2h", got.PollInterval)
		assert.Equal(t, t0.Add(time.Hour), got.NextSyncAt)
		// A longer interval does not postpone the due poll.
		got, err = b.svc.UpdatePollInterval(ctx, b.accA, v.ID, "24h")
		require.NoError(t, err)
		assert.Equal(t, t0.Add(time.Hour), got.NextSyncAt)
		// "" clears the override.
		got, err = b.svc.UpdatePollInterval(ctx, b.accA, v.ID, "")
		require.NoError(t, err)
		assert.Equal(t, "6h", got.PollInterval)
		assert.Nil(t, got.PollIntervalOverride)

		// Admin: below the floor, any account, but not below a minute.
		got, err = b.svc.AdminUpdatePollInterval(ctx, v.ID, "5m")
		require.NoError(t, err)
		assert.Equal(t, "5m", got.PollInterval)
		assert.Equal(t, t0, got.NextSyncAt, "5m after a sync an hour ago is due now")
		_, err = b.svc.AdminUpdatePollInterval(ctx, v.ID, "30s")
		assert.Equal(t, "pollInterval", field(err))
		_, err = b.svc.AdminUpdatePollInterval(ctx, "con_missing", "5m")
		assert.True(t, models.IsNotFound(err))

		// A running poll's lease is never moved.
		require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", v.ID).
			Updates(map[string]any{"status": models.ConnectionSyncing, "next_sync_at": t0.Add(10 * time.Minute)}).Error)
		got, err = b.svc.AdminUpdatePollInterval(ctx, v.ID, "1m")
		require.NoError(t, err)
		assert.Equal(t, t0.Add(10*time.Minute), got.NextSyncAt)

		// Deployment floor applies to accounts without their own.
		w := b.createCred(t, b.accB, "u1")
		_, err = b.svc.UpdatePollInterval(ctx, b.accB, w.ID, "4m")
		assert.Contains(t, err.Error(), "5m")
		_, err = b.svc.UpdatePollInterval(ctx, b.accB, w.ID, "5m")
		require.NoError(t, err)
	})
}

func TestSyncNow(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		v := b.createCred(t, b.accA, "u1")
		require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", v.ID).Update("next_sync_at", t0.Add(5*time.Hour)).Error)
		b.clock.Advance(time.Minute)
		require.NoError(t, b.svc.SyncNow(ctx, b.accA, v.ID))
		assert.Equal(t, t0.Add(time.Minute), b.row(t, v.ID).NextSyncAt.UTC())

		// A running poll (leased until NextSyncAt) conflicts; an expired lease does not.
		require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", v.ID).
			Updates(map[string]any{"status": models.ConnectionSyncing, "next_sync_at": t0.Add(10 * time.Minute)}).Error)
		assert.Equal(t, models.ErrCodeConflict, code(b.svc.SyncNow(ctx, b.accA, v.ID)))
		b.clock.Advance(10 * time.Minute)
		require.NoError(t, b.svc.SyncNow(ctx, b.accA, v.ID))
		require.NoError(t, b.svc.MarkNeedsReauth(ctx, v.ID, "token revoked"))
		err := b.svc.SyncNow(ctx, b.accA, v.ID)
		assert.Equal(t, models.ErrCodeConflict, code(err))
		assert.Contains(t, err.Error(), "re-authorization")
		assert.True(t, models.IsNotFound(b.svc.SyncNow(ctx, b.accA, "con_missing")))
	})
}

func TestDelete(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		v := b.createCred(t, b.accA, "u1")
		other := b.createCred(t, b.accA, "u2")
		for _, id := range []string{v.ID, other.ID} {
			for i := range 25 {
				require.NoError(t, db.Create(&models.Snapshot{ConnectionID: id, Object: "contacts", RemoteID: fmt.Sprint(i), ContentHash: "h", RemoteUpdatedAt: t0}).Error)
			}
		}
		require.NoError(t, b.svc.Delete(ctx, b.accA, v.ID))
		// The request only schedules the snapshots' removal; the maintenance
		// job sweeps them in batches.
		var n int64
		require.NoError(t, db.Model(&models.Snapshot{}).Where("connection_id = ?", v.ID).Count(&n).Error)
		assert.EqualValues(t, 25, n, "snapshots are not deleted inside the request")
		swept, err := reconcile.SweepSnapshots(ctx, db, 10)
		require.NoError(t, err)
		assert.EqualValues(t, 25, swept)
		require.NoError(t, db.Model(&models.SnapshotSweep{}).Count(&n).Error)
		assert.Zero(t, n, "the sweep is done")
		swept, err = reconcile.SweepSnapshots(ctx, db, 10)
		require.NoError(t, err)
		assert.Zero(t, swept)

		require.Len(t, b.cred.unsubscribed, 1)
		assert.Equal(t, v.ID, b.cred.unsubscribed[0].ID)
		assert.Equal(t, "good", b.cred.unsubscribed[0].Credentials["api_key"])
		assert.Equal(t, "hook-"+v.ID, b.cred.unsubscribed[0].Metadata["hook_id"])
		_, err = b.svc.Get(ctx, b.accA, v.ID)
		assert.True(t, models.IsNotFound(err))
		var snaps []models.Snapshot
		require.NoError(t, db.Find(&snaps).Error)
		require.Len(t, snaps, 25)
		assert.Equal(t, other.ID, snaps[0].ConnectionID)

		ev := b.pub.last()
		assert.Equal(t, models.TopicConnectionDeleted, ev.Topic)
		assert.Equal(t, models.UpdateDeleted, ev.UpdateType)
		assert.Equal(t, v.ID, ev.ConnectionID)
		assert.True(t, b.pub.inTx[len(b.pub.inTx)-1])
		assert.True(t, models.IsNotFound(b.svc.Delete(ctx, b.accA, v.ID)))
	})
}

func TestPublishFailureRollsBack(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		v := b.createCred(t, b.accA, "u1")
		b.pub.err = errors.New("forwarding down")

		_, err := b.svc.Create(ctx, b.accA, CreateInput{App: "fakecrm", UserID: "u2", Credentials: map[string]string{"api_key": "good"}})
		require.ErrorIs(t, err, b.pub.err)
		var n int64
		require.NoError(t, db.Model(&models.Connection{}).Count(&n).Error)
		assert.EqualValues(t, 1, n, "the insert rolled back")
		require.Len(t, b.cred.unsubscribed, 1, "the subscription was undone")

		require.ErrorIs(t, b.svc.Delete(ctx, b.accA, v.ID), b.pub.err)
		_, err = b.svc.Get(ctx, b.accA, v.ID)
		require.NoError(t, err, "the delete rolled back")
		assert.Len(t, b.cred.unsubscribed, 1, "no unsubscribe for a delete that did not happen")

		require.ErrorIs(t, b.svc.MarkNeedsReauth(ctx, v.ID, "x"), b.pub.err)
		assert.Equal(t, models.ConnectionActive, b.row(t, v.ID).Status)
	})
}

func TestReconnectReauthorizes(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := context.Background()
		v := b.createCred(t, b.accA, "u1")
		require.NoError(t, b.svc.MarkNeedsReauth(ctx, v.ID, "revoked"))
		b.clock.Advance(time.Hour)
		require.NoError(t, db.Model(&models.Connection{}).Where("id = ?", v.ID).Update("next_sync_at", t0.Add(9*time.Hour)).Error)

		// Same user, same provider account: the connection is re-authorized.
		again, err := b.svc.Create(ctx, b.accA, CreateInput{App: "fakecrm", UserID: "u1", UserName: "renamed",
			Credentials: map[string]string{"api_key": "good", "tenant": "u1", "extra": "new"}})
		require.NoError(t, err)
		assert.Equal(t, v.ID, again.ID)
		assert.Equal(t, models.ConnectionActive, again.Status)
		assert.Nil(t, again.LastError)
		assert.Equal(t, "renamed", again.UserName)
		assert.Equal(t, t0.Add(time.Hour), again.NextSyncAt)
		row := b.row(t, v.ID)
		conn, err := b.svc.Open(ctx, &row)
		require.NoError(t, err)
		assert.Equal(t, "new", conn.Credentials["extra"])
		assert.Equal(t, []string{models.TopicConnectionCreated, models.TopicConnectionReauthRequired}, b.pub.topics())

		// Another user, or another account, gets a connection of its own.
		other := b.createCred(t, b.accB, "u1")
		assert.NotEqual(t, v.ID, other.ID)
		var n int64
		require.NoError(t, db.Model(&models.Connection{}).Count(&n).Error)
		assert.EqualValues(t, 2, n)
	})
}
