package sandboxapp_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/sandbox"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage"
	"github.com/tributary/tributary/storage/storagetest"
)

func requireCode(t *testing.T, err error, code, field string) {
	t.Helper()
	var e *models.Error
	require.ErrorAs(t, err, &e, "want a %s error, got %v", code, err)
	require.Equal(t, code, e.Code, e.Message)
	require.Equal(t, field, e.Field)
	require.NotEmpty(t, e.Message)
}

func TestRecordLifecycle(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := t.Context()
		c := b.newConnection(t, "acc_1", sandbox.AppName, sandbox.ModePolling)

		id, err := b.svc.Create(ctx, "acc_1", c.ID, "contacts", raw(`{"first_name":"Ada","email":"ada@example.com"}`))
		require.NoError(t, err)
		require.True(t, models.HasPrefix(id, models.PrefixSandboxRecord))
		// The clock stands still: modification times still strictly increase.
		require.NoError(t, b.svc.Update(ctx, "acc_1", c.ID, "contacts", id, raw(`{"first_name":null,"title":"CTO"}`)))
		require.NoError(t, b.svc.Update(ctx, "acc_1", c.ID, "contacts", id, raw(`{"title":"CTO"}`)), "a no-op patch is fine")
		rows := b.rows(t, c.ID)
		require.Len(t, rows, 1)
		require.EqualValues(t, 2, rows[0].Version, "a no-op patch is not a new version")
		require.JSONEq(t, `{"email":"ada@example.com","title":"CTO"}`, rows[0].Data)
		require.True(t, rows[0].ModifiedAt.After(rows[0].CreatedAt))

		// The clock going back does not move modification times back.
		b.clock.Advance(-time.Hour)
		require.NoError(t, b.svc.Delete(ctx, "acc_1", c.ID, "contacts", id))
		after := b.rows(t, c.ID)[0]
		require.True(t, after.Deleted)
		require.EqualValues(t, 3, after.Version)
		require.True(t, after.ModifiedAt.After(rows[0].ModifiedAt))

		// The connector sees the deletion with the last state.
		recs, err := b.conn.FetchRecords(ctx, c, "contacts", []string{id})
		require.NoError(t, err)
		require.Len(t, recs, 1)
		require.True(t, recs[0].Deleted)
		require.Equal(t, "CTO", recs[0].Data.(*models.Contact).Title)

		require.Empty(t, b.in.take(c.ID), "polling mode sends no webhooks")

		require.NoError(t, b.svc.DeleteConnection(ctx, c.ID))
		require.Empty(t, b.rows(t, c.ID))
	})
}

func TestErrors(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := t.Context()
		c := b.newConnection(t, "acc_1", sandbox.AppName, sandbox.ModePolling)
		hub := b.newConnection(t, "acc_1", "hubspot", sandbox.ModePolling)
		id, err := b.svc.Create(ctx, "acc_1", c.ID, "orders", raw(`{"order_number":"1"}`))
		require.NoError(t, err)
		gone, err := b.svc.Create(ctx, "acc_1", c.ID, "orders", raw(`{"order_number":"2"}`))
		require.NoError(t, err)
		require.NoError(t, b.svc.Delete(ctx, "acc_1", c.ID, "orders", gone))

		for _, tc := range []struct {
			name        string
			call        func() error
			code, field string
		}{
			{"other account", func() error {
				_, err := b.svc.Create(ctx, "acc_2", c.ID, "orders", raw(`{}`))
				return err
			}, models.ErrCodeNotFound, ""},
			{"not a sandbox connection", func() error {
				_, err := b.svc.Create(ctx, "acc_1", hub.ID, "contacts", raw(`{}`))
				return err
			}, models.ErrCodeNotFound, ""},
			{"missing connection", func() error { return b.svc.Delete(ctx, "acc_1", "con_missing", "orders", id) }, models.ErrCodeNotFound, ""},
			{"unknown object", func() error {
				_, err := b.svc.Create(ctx, "acc_1", c.ID, "tickets", raw(`{}`))
				return err
			}, models.ErrCodeNotFound, ""},
			{"unknown object on delete", func() error { return b.svc.Delete(ctx, "acc_1", c.ID, "tickets", id) }, models.ErrCodeNotFound, ""},
			{"not an object", func() error {
				_, err := b.svc.Create(ctx, "acc_1", c.ID, "orders", raw(`"x"`))
				return err
			}, models.ErrCodeInvalid, ""},
			{"unknown field", func() error {
				_, err := b.svc.Create(ctx, "acc_1", c.ID, "orders", raw(`{"orderNumber":"1"}`))
				return err
			}, models.ErrCodeUnprocessable, "orderNumber"},
			{"wrong type", func() error {
				return b.svc.Update(ctx, "acc_1", c.ID, "orders", id, raw(`{"line_items":{"sku":"x"}}`))
			}, models.ErrCodeUnprocessable, "line_items"},
			{"read-only field", func() error { return b.svc.Update(ctx, "acc_1", c.ID, "orders", id, raw(`{"id":"x"}`)) }, models.ErrCodeUnprocessable, "id"},
			{"missing record", func() error { return b.svc.Update(ctx, "acc_1", c.ID, "orders", "sbx_missing", raw(`{}`)) }, models.ErrCodeNotFound, ""},
			{"record of another object", func() error { return b.svc.Delete(ctx, "acc_1", c.ID, "customers", id) }, models.ErrCodeNotFound, ""},
			{"update deleted", func() error { return b.svc.Update(ctx, "acc_1", c.ID, "orders", gone, raw(`{"email":"x"}`)) }, models.ErrCodeNotFound, ""},
			{"delete twice", func() error { return b.svc.Delete(ctx, "acc_1", c.ID, "orders", gone) }, models.ErrCodeNotFound, ""},
			{"other account update", func() error { return b.svc.Update(ctx, "acc_2", c.ID, "orders", id, raw(`{}`)) }, models.ErrCodeNotFound, ""},
		} {
			t.Run(tc.name, func(t *testing.T) { requireCode(t, tc.call(), tc.code, tc.field) })
		}
		var n int64
		require.NoError(t, db.Model(&models.SandboxRecord{}).Count(&n).Error)
		require.EqualValues(t, 2, n, "refused calls wrote nothing")
	})
}

func TestWebhookMode(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		ctx := t.Context()
		c := b.newConnection(t, "acc_1", sandbox.AppName, sandbox.ModeWebhook)

		id, err := b.svc.Create(ctx, "acc_1", c.ID, "products", raw(`{"title":"Anvil","tags":["heavy"]}`))
		require.NoError(t, err)
		reqs := b.in.take(c.ID)
		require.Len(t, reqs, 1, "one signed webhook per change, sent before Create returns")
		req := reqs[0]
		require.Equal(t, "POST", req.Method)
		require.Equal(t, id+".v1", req.Header.Get("X-Sandbox-Event-Id"))
		require.Equal(t, sandbox.Signature(secret, req.Body), req.Header.Get("X-Sandbox-Signature"))
		var body map[string]any
		require.NoError(t, json.Unmarshal(req.Body, &body))
		require.Equal(t, c.ID, body["account"])
		require.Equal(t, "products", body["object"])
		require.Equal(t, "created", body["action"])
		rec := body["record"].(map[string]any)
		require.Equal(t, id, rec["id"])
		require.Equal(t, "Anvil", rec["title"])
		occurred, err := time.Parse(time.RFC3339Nano, body["occurredAt"].(string))
		require.NoError(t, err)
		require.True(t, occurred.Equal(b.rows(t, c.ID)[0].ModifiedAt))

		require.NoError(t, b.svc.Update(ctx, "acc_1", c.ID, "products", id, raw(`{"title":"Anvil XL"}`)))
		require.NoError(t, b.svc.Update(ctx, "acc_1", c.ID, "products", id, raw(`{"title":"Anvil XL"}`)))
		reqs = b.in.take(c.ID)
		require.Len(t, reqs, 1, "no webhook for a no-op patch")
		ns, err := b.conn.ParseWebhook(reqs[0])
		require.NoError(t, err)
		require.Equal(t, "Anvil XL", ns[0].Record.Data.(*models.Product).Title)

		// The inbound endpoint failing: the change stays, the error says so.
		b.in.setFail(503)
		err = b.svc.Delete(ctx, "acc_1", c.ID, "products", id)
		requireCode(t, err, models.ErrCodeUnavailable, "")
		require.Contains(t, err.Error(), id)
		require.True(t, b.rows(t, c.ID)[0].Deleted, "the deletion is committed")
		id2, err := b.svc.Create(ctx, "acc_1", c.ID, "products", raw(`{"title":"Rocket"}`))
		requireCode(t, err, models.ErrCodeUnavailable, "")
		require.NotEmpty(t, id2, "the new record's id comes back with the error")
		require.Contains(t, err.Error(), id2)

		// A poll still finds both changes.
		got := map[string]bool{}
		require.NoError(t, b.conn.ListChanges(ctx, c, connectors.ListRequest{Object: "products"}, func(p connectors.Page) error {
			for _, r := range p.Records {
				got[r.RemoteID] = r.Deleted
			}
			return nil
		}))
		require.Equal(t, map[string]bool{id: true, id2: false}, got)

		b.in.setFail(0)
		b.svc.InboundURL = "http://127.0.0.1:1/inbound/sandbox"
		_, err = b.svc.Create(ctx, "acc_1", c.ID, "products", raw(`{"title":"Unreachable"}`))
		requireCode(t, err, models.ErrCodeUnavailable, "")
	})
}

func TestConcurrentWritesGetDistinctModstamps(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		c := b.newConnection(t, "acc_1", sandbox.AppName, sandbox.ModePolling)
		const n = 12
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				obj := []string{"contacts", "orders", "notes"}[i%3]
				_, err := b.svc.Create(t.Context(), "acc_1", c.ID, obj, raw(`{}`))
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		rows := b.rows(t, c.ID)
		require.Len(t, rows, n)
		for i := 1; i < n; i++ {
			require.True(t, rows[i].ModifiedAt.After(rows[i-1].ModifiedAt), "modstamps are unique per connection")
		}
	})
}

// Regression (issue 10): every write of a connection took one advisory lock
// for its whole transaction, so writers of one connection queued holding
// pool connections (the pool filled and starved the dispatcher). A write
// now goes on while another write of the same connection is still open.
func TestWritesOfOneConnectionDoNotQueue(t *testing.T) {
	db := storagetest.New(t, storage.Postgres)
	b := setup(t, db)
	ctx := t.Context()
	c := b.newConnection(t, "acc_1", sandbox.AppName, sandbox.ModePolling)
	id, err := b.svc.Create(ctx, "acc_1", c.ID, "contacts", raw(`{"first_name":"Ada"}`))
	require.NoError(t, err)

	// Another session holds the record's row: an update of it waits inside
	// its transaction.
	hold := db.Begin()
	require.NoError(t, hold.Error)
	defer hold.Rollback()
	require.NoError(t, hold.Exec(`SELECT 1 FROM sandbox_records WHERE remote_id = ? FOR UPDATE`, id).Error)
	var holder int64
	require.NoError(t, hold.Raw(`SELECT pg_backend_pid()`).Scan(&holder).Error)
	updated := make(chan error, 1)
	go func() { updated <- b.svc.Update(ctx, "acc_1", c.ID, "contacts", id, raw(`{"title":"CTO"}`)) }()
	require.Eventually(t, func() bool {
		var waiting int64
		db.Raw(`SELECT count(*) FROM pg_stat_activity WHERE ? = ANY(pg_blocking_pids(pid))`, holder).Scan(&waiting)
		return waiting > 0
	}, 10*time.Second, 5*time.Millisecond, "the update waits for the row")

	select {
	case err := <-updated:
		t.Fatalf("update finished early: %v", err)
	default:
	}
	// A write of another record of the same connection is not held back.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = b.svc.Create(wctx, "acc_1", c.ID, "contacts", raw(`{"first_name":"Grace"}`))
	require.NoError(t, err, "a second write of the connection must not wait for the first")

	require.NoError(t, hold.Rollback().Error)
	require.NoError(t, <-updated)
	rows := b.rows(t, c.ID)
	require.Len(t, rows, 2)
	require.NotEqual(t, rows[0].ModifiedAt, rows[1].ModifiedAt)
}

// With Deliver set, a webhook-mode change is handed to the receiver
// in-process, signed exactly as over HTTP, and nothing is POSTed.
func TestWebhookDeliveredInProcess(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		var got []*connectors.InboundRequest
		b.svc.Deliver = func(_ context.Context, req *connectors.InboundRequest) error {
			got = append(got, req)
			return b.conn.VerifyWebhook(req)
		}
		c := b.newConnection(t, "acc_1", sandbox.AppName, sandbox.ModeWebhook)
		id, err := b.svc.Create(t.Context(), "acc_1", c.ID, "contacts", raw(`{"first_name":"Ada"}`))
		require.NoError(t, err)
		require.Len(t, got, 1)
		ns, err := b.conn.ParseWebhook(got[0])
		require.NoError(t, err)
		require.Equal(t, id, ns[0].RemoteID)
		require.Equal(t, c.ID, ns[0].ExternalID)
		require.Empty(t, b.in.take(c.ID), "no HTTP request")

		got[0].Body = append(got[0].Body, ' ')
		require.Error(t, b.conn.VerifyWebhook(got[0]), "the signature covers the body")
	})
}
