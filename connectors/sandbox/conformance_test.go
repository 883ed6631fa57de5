package sandbox_test

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/conformance"
	"github.com/tributary/tributary/connectors/sandbox"
	"github.com/tributary/tributary/connectors/sandbox/fake"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/sync/synctest"
)

var testSecret = []byte("sandbox-test-secret")

// createFields are a small valid record of each object; updateField names a
// field the unified model carries.
var createFields = map[string]string{
	models.ObjectContacts:      `{"first_name":"Ada","last_name":"Lovelace","email":"ada@example.com"}`,
	models.ObjectAccounts:      `{"name":"Acme","domain":"acme.example","employee_count":12}`,
	models.ObjectLeads:         `{"first_name":"Grace","company_name":"Navy","lead_status":"new"}`,
	models.ObjectOpportunities: `{"name":"Renewal","amount":1500.5,"currency":"usd","state":"open","probability":40}`,
	models.ObjectStages:        `{"label":"Qualified","pipeline":"sales","position":2,"win_probability":20}`,
	models.ObjectNotes:         `{"title":"Call","body":"Called Ada."}`,
	models.ObjectTasks:         `{"subject":"Send quote","status":"open","priority":"high","due_on":"2026-12-01"}`,
	models.ObjectUsers:         `{"first_name":"Gregg","last_name":"Owner","email":"gregg@example.com"}`,
	models.ObjectOrders:        `{"order_number":1001,"currency":"eur","total_price":"99.90","line_items":[{"sku":"A-1","name":"Anvil","quantity":1,"unit_price":99.9}]}`,
	models.ObjectCustomers:     `{"first_name":"Bob","email":"bob@example.com","orders_count":1,"tags":["vip"]}`,
	models.ObjectProducts:      `{"title":"Anvil","vendor":"Acme","variants":[{"id":"v1","sku":"A-1","price":"99.90"}]}`,
}

var updateField = map[string]string{
	models.ObjectContacts: "first_name", models.ObjectAccounts: "name", models.ObjectLeads: "first_name",
	models.ObjectOpportunities: "name", models.ObjectStages: "label", models.ObjectNotes: "body",
	models.ObjectTasks: "subject", models.ObjectUsers: "email", models.ObjectOrders: "financial_status",
	models.ObjectCustomers: "first_name", models.ObjectProducts: "title",
}

// TestConformance runs the shared suite against the in-memory fake app, then
// the same harness through the real sync path on SQLite and PostgreSQL.
func TestConformance(t *testing.T) {
	app := fake.New(testSecret)
	conn := sandbox.New(app, testSecret)
	t.Run("golden_files", func(t *testing.T) { conformance.RequireGoldenFiles(t, conn) })
	var seq atomic.Int64
	h := conformance.Harness{
		Connector: conn,
		Objects:   sandbox.Objects(),
		NewConn: func(t *testing.T) *connectors.Conn {
			ext, meta, err := conn.ValidateCredentials(t.Context(), map[string]string{"mode": "webhook"})
			require.NoError(t, err)
			require.Empty(t, ext)
			id := fmt.Sprintf("con_%d", seq.Add(1))
			app.SetMode(id, meta["mode"])
			return &connectors.Conn{ID: id, ExternalID: id, Metadata: meta}
		},
		Create: func(t *testing.T, c *connectors.Conn, object string) string {
			id, err := app.Create(c.ID, object, json.RawMessage(createFields[object]))
			require.NoError(t, err)
			return id
		},
		Update: func(t *testing.T, c *connectors.Conn, object, id string) {
			v, _ := json.Marshal(fmt.Sprint("changed ", seq.Add(1)))
			require.NoError(t, app.Update(c.ID, object, id, json.RawMessage(`{"`+updateField[object]+`":`+string(v)+`}`)))
		},
		Delete: func(t *testing.T, c *connectors.Conn, object, id string) {
			require.NoError(t, app.Delete(c.ID, object, id))
		},
		Advance:  app.Advance,
		Now:      app.Now,
		Webhooks: func(t *testing.T, c *connectors.Conn) []*connectors.InboundRequest { return app.Webhooks(c.ID) },
		PageSize: 2,
	}
	conformance.Run(t, h)
	t.Run("sync", func(t *testing.T) { synctest.Run(t, h) })
}
