package sandbox_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/sandbox"
	"github.com/tributary/tributary/connectors/sandbox/fake"
	"github.com/tributary/tributary/models"
)

func TestInfo(t *testing.T) {
	info := sandbox.New(nil, nil).Info()
	require.Equal(t, "sandbox", info.Name)
	require.Equal(t, "Sandbox", info.DisplayName)
	require.Equal(t, "crm,commerce", info.Category)
	require.Len(t, info.Objects, 11)
	require.Len(t, info.Topics, 11)
	require.Contains(t, info.Topics, "commerce/orders")
	require.ElementsMatch(t, []string{connectors.CaptureWebhook, connectors.CapturePolling}, info.Capture)
	require.Equal(t, connectors.AuthCredentials, info.Auth)
}

func TestValidateCredentials(t *testing.T) {
	c := sandbox.New(nil, nil)
	for _, tc := range []struct {
		name  string
		creds map[string]string
		mode  string
		field string
	}{
		{"default polling", nil, "polling", ""},
		{"empty mode", map[string]string{"mode": ""}, "polling", ""},
		{"webhook", map[string]string{"mode": "webhook"}, "webhook", ""},
		{"polling", map[string]string{"mode": "polling"}, "polling", ""},
		{"bad mode", map[string]string{"mode": "push"}, "", "credentials.mode"},
		{"unknown key", map[string]string{"mode": "webhook", "token": "x"}, "", "credentials.token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ext, meta, err := c.ValidateCredentials(t.Context(), tc.creds)
			if tc.field != "" {
				var e *models.Error
				require.ErrorAs(t, err, &e)
				require.Equal(t, models.ErrCodeUnprocessable, e.Code)
				require.Equal(t, tc.field, e.Field)
				return
			}
			require.NoError(t, err)
			require.Empty(t, ext)
			require.Equal(t, map[string]string{"mode": tc.mode}, meta)
		})
	}
}

func signed(t *testing.T, secret []byte, w *sandbox.Webhook) *connectors.InboundRequest {
	body, h, err := w.Sign(secret)
	require.NoError(t, err)
	return &connectors.InboundRequest{Method: "POST", URL: "http://x/inbound/sandbox", Header: h, Body: body}
}

func TestVerifyAndParseWebhook(t *testing.T) {
	c := sandbox.New(nil, testSecret)
	mod := time.Date(2026, 11, 1, 9, 0, 0, 123456000, time.UTC)
	rec := sandbox.StoredRecord{RemoteID: "sbx_1", Data: json.RawMessage(`{"email":"a@example.com"}`), Version: 1, ModifiedAt: mod, CreatedAt: mod}
	w, err := sandbox.WebhookFor("con_1", models.ObjectContacts, rec)
	require.NoError(t, err)
	require.Equal(t, "sbx_1.v1", w.EventID)
	require.Equal(t, sandbox.ActionCreated, w.Action)
	req := signed(t, testSecret, w)
	require.Equal(t, w.EventID, req.Header.Get(sandbox.HeaderEventID))
	require.Regexp(t, `^sha256=[0-9a-f]{64}$`, req.Header.Get(sandbox.HeaderSignature))
	require.NoError(t, c.VerifyWebhook(req))

	ns, err := c.ParseWebhook(req)
	require.NoError(t, err)
	require.Len(t, ns, 1)
	n := ns[0]
	require.Equal(t, "sbx_1.v1", n.EventID)
	require.Equal(t, "con_1", n.ExternalID)
	require.Equal(t, "sbx_1", n.RemoteID)
	require.False(t, n.Deleted)
	require.True(t, mod.Equal(n.OccurredAt))
	require.Equal(t, "a@example.com", n.Record.Data.(*models.Contact).Email)
	require.True(t, mod.Equal(n.Record.RemoteUpdatedAt))

	// A deletion carries the last state, flagged deleted.
	rec.Deleted, rec.Version = true, 3
	w, err = sandbox.WebhookFor("con_1", models.ObjectContacts, rec)
	require.NoError(t, err)
	require.Equal(t, sandbox.ActionDeleted, w.Action)
	ns, err = c.ParseWebhook(signed(t, testSecret, w))
	require.NoError(t, err)
	require.True(t, ns[0].Deleted)
	require.True(t, ns[0].Record.Deleted)
	require.True(t, ns[0].Record.Data.(*models.Contact).RemoteDeleted)

	// An action "deleted" on a record without the flag still deletes.
	w.Record = json.RawMessage(`{"id":"sbx_1","email":"a@example.com"}`)
	ns, err = c.ParseWebhook(signed(t, testSecret, w))
	require.NoError(t, err)
	require.True(t, ns[0].Deleted && ns[0].Record.Deleted)

	bad := func(mut func(r *connectors.InboundRequest)) *connectors.InboundRequest {
		r := signed(t, testSecret, w)
		mut(r)
		return r
	}
	for name, r := range map[string]*connectors.InboundRequest{
		"missing": bad(func(r *connectors.InboundRequest) { r.Header.Del(sandbox.HeaderSignature) }),
		"no prefix": bad(func(r *connectors.InboundRequest) {
			r.Header.Set(sandbox.HeaderSignature, r.Header.Get(sandbox.HeaderSignature)[7:])
		}),
		"not hex":      bad(func(r *connectors.InboundRequest) { r.Header.Set(sandbox.HeaderSignature, "sha256=zz") }),
		"other secret": signed(t, []byte("other"), w),
		"tampered":     bad(func(r *connectors.InboundRequest) { r.Body = append(r.Body[:len(r.Body)-1:len(r.Body)-1], ' ', '}') }),
	} {
		t.Run(name, func(t *testing.T) {
			require.ErrorIs(t, c.VerifyWebhook(r), connectors.ErrBadSignature)
		})
	}
	require.ErrorIs(t, sandbox.New(nil, nil).VerifyWebhook(signed(t, nil, w)), connectors.ErrBadSignature, "no secret, no webhooks")

	for name, body := range map[string]string{
		"not json":       `nope`,
		"no event id":    `{"account":"a","object":"contacts","action":"created","record":{"id":"1"}}`,
		"no account":     `{"eventId":"e","object":"contacts","action":"created","record":{"id":"1"}}`,
		"unknown object": `{"eventId":"e","account":"a","object":"tickets","action":"created","record":{"id":"1"}}`,
		"unknown action": `{"eventId":"e","account":"a","object":"contacts","action":"merged","record":{"id":"1"}}`,
		"record no id":   `{"eventId":"e","account":"a","object":"contacts","action":"created","record":{}}`,
		"record type":    `{"eventId":"e","account":"a","object":"contacts","action":"created","record":{"id":"1","email":3}}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.ParseWebhook(&connectors.InboundRequest{Body: []byte(body)})
			require.Error(t, err)
		})
	}
}

func TestPollingCursorAndLookback(t *testing.T) {
	app := fake.New(testSecret)
	c := sandbox.New(app, testSecret)
	conn := &connectors.Conn{ID: "con_p", ExternalID: "con_p"}
	list := func(req connectors.ListRequest) ([]connectors.Page, []string) {
		var pages []connectors.Page
		var ids []string
		require.NoError(t, c.ListChanges(t.Context(), conn, req, func(p connectors.Page) error {
			pages = append(pages, p)
			for _, r := range p.Records {
				ids = append(ids, r.RemoteID)
			}
			return nil
		}))
		return pages, ids
	}
	pages, _ := list(connectors.ListRequest{Object: models.ObjectNotes})
	require.Empty(t, pages, "nothing to list, no page")
	pages, _ = list(connectors.ListRequest{Object: models.ObjectNotes, FullScan: true})
	require.Len(t, pages, 1, "a full scan always ends with a page")
	require.Empty(t, pages[0].Cursor)

	var ids []string
	for range 5 {
		id, err := app.Create(conn.ID, models.ObjectNotes, json.RawMessage(`{"body":"x"}`))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	pages, got := list(connectors.ListRequest{Object: models.ObjectNotes, PageSize: 2})
	require.Len(t, pages, 3)
	require.Equal(t, ids, got, "ordered by modification time, each record once")
	cursor := pages[2].Cursor
	require.Contains(t, cursor, ids[4])

	// Records inside the lookback are re-read; older ones are not.
	app.Advance(2 * sandbox.Lookback)
	_, got = list(connectors.ListRequest{Object: models.ObjectNotes, Cursor: cursor})
	require.Equal(t, ids, got, "within the lookback everything is re-read")
	require.NoError(t, app.Update(conn.ID, models.ObjectNotes, ids[1], json.RawMessage(`{"body":"y"}`)))
	pages, got = list(connectors.ListRequest{Object: models.ObjectNotes, Cursor: cursor})
	require.Equal(t, []string{ids[0], ids[2], ids[3], ids[4], ids[1]}, got)
	next := pages[len(pages)-1].Cursor
	app.Advance(2 * sandbox.Lookback)
	require.NoError(t, app.Delete(conn.ID, models.ObjectNotes, ids[3]))
	pages, got = list(connectors.ListRequest{Object: models.ObjectNotes, Cursor: next})
	require.Equal(t, []string{ids[1], ids[3]}, got, "only the lookback window and later")
	require.True(t, pages[0].Records[1].Deleted, "a deletion is listed as a deleted record")
	require.True(t, pages[0].Records[1].Data.(*models.Note).RemoteDeleted)

	// A full scan lists live records only and ends at the newest change.
	pages, got = list(connectors.ListRequest{Object: models.ObjectNotes, FullScan: true, PageSize: 3})
	require.ElementsMatch(t, []string{ids[0], ids[1], ids[2], ids[4]}, got)
	require.Equal(t, pages[len(pages)-1].Cursor, pagesCursor(t, c, conn, next))
	_, err := c.FetchRecords(t.Context(), conn, "tickets", []string{"x"})
	require.ErrorIs(t, err, connectors.ErrUnsupportedObject)
	err = c.ListChanges(t.Context(), conn, connectors.ListRequest{Object: models.ObjectNotes, Cursor: "garbage"}, func(connectors.Page) error { return nil })
	require.Error(t, err)

	recs, err := c.FetchRecords(t.Context(), conn, models.ObjectNotes, []string{ids[3], ids[0], "sbx_missing"})
	require.NoError(t, err)
	require.Len(t, recs, 2)
}

// pagesCursor is the cursor an incremental listing from cursor ends with.
func pagesCursor(t *testing.T, c *sandbox.Connector, conn *connectors.Conn, cursor string) string {
	last := cursor
	require.NoError(t, c.ListChanges(t.Context(), conn, connectors.ListRequest{Object: models.ObjectNotes, Cursor: cursor}, func(p connectors.Page) error {
		last = p.Cursor
		return nil
	}))
	return last
}

func TestValidateAndMergeFields(t *testing.T) {
	for _, tc := range []struct {
		name, object, body string
		code, field        string
	}{
		{"ok", "contacts", `{"first_name":"Ada","mailing_address":{"city":"London"}}`, "", ""},
		{"null clears", "contacts", `{"first_name":null}`, "", ""},
		{"unknown object", "tickets", `{}`, models.ErrCodeNotFound, ""},
		{"not an object", "contacts", `[1]`, models.ErrCodeInvalid, ""},
		{"unified name", "contacts", `{"firstName":"Ada"}`, models.ErrCodeUnprocessable, "firstName"},
		{"read-only id", "contacts", `{"id":"x"}`, models.ErrCodeUnprocessable, "id"},
		{"wrong type", "accounts", `{"employee_count":"many"}`, models.ErrCodeUnprocessable, "employee_count"},
		{"bad money", "orders", `{"total_price":"ten"}`, models.ErrCodeUnprocessable, "total_price"},
		{"nested unknown", "orders", `{"line_items":[{"qty":1}]}`, models.ErrCodeUnprocessable, "line_items"},
		{"money as number", "orders", `{"total_price":10.5,"order_number":7}`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := sandbox.ValidateFields(tc.object, []byte(tc.body))
			if tc.code == "" {
				require.NoError(t, err)
				return
			}
			var e *models.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tc.code, e.Code)
			require.Equal(t, tc.field, e.Field)
		})
	}
	merged, changed, err := sandbox.MergeFields("contacts", []byte(`{"email":"a@x","first_name":"A"}`), []byte(`{"first_name":null,"title":"CTO"}`))
	require.NoError(t, err)
	require.True(t, changed)
	require.JSONEq(t, `{"email":"a@x","title":"CTO"}`, string(merged))
	_, changed, err = sandbox.MergeFields("contacts", merged, []byte(`{"title": "CTO"}`))
	require.NoError(t, err)
	require.False(t, changed, "same values are no change")
}

func TestWebhookHeadersOnTheWire(t *testing.T) {
	w := &sandbox.Webhook{EventID: "sbx_1.v2", Account: "con_1", Object: "orders", Action: "updated", Record: json.RawMessage(`{"id":"sbx_1"}`)}
	body, h, err := w.Sign([]byte("k"))
	require.NoError(t, err)
	require.Equal(t, "application/json", h.Get("Content-Type"))
	require.Equal(t, sandbox.Signature([]byte("k"), body), h.Get("X-Sandbox-Signature"))
	require.Equal(t, "sbx_1.v2", h.Get(http.CanonicalHeaderKey("x-sandbox-event-id")))
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	require.ElementsMatch(t, []string{"eventId", "account", "object", "action", "occurredAt", "record"}, keys(m))
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
