package sandboxapp_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/conformance"
	"github.com/tributary/tributary/connectors/sandbox"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// records are a small valid record of each object and the field an update changes.
var records = map[string]struct{ create, field string }{
	models.ObjectContacts:      {`{"first_name":"Ada","last_name":"Lovelace","email":"ada@example.com"}`, "first_name"},
	models.ObjectAccounts:      {`{"name":"Acme","employee_count":12}`, "name"},
	models.ObjectLeads:         {`{"first_name":"Grace","company_name":"Navy"}`, "company_name"},
	models.ObjectOpportunities: {`{"name":"Renewal","amount":1500.5,"state":"open"}`, "name"},
	models.ObjectStages:        {`{"label":"Qualified","position":2,"win_probability":20}`, "label"},
	models.ObjectNotes:         {`{"body":"Called Ada."}`, "body"},
	models.ObjectTasks:         {`{"subject":"Send quote","due_on":"2026-12-01"}`, "subject"},
	models.ObjectUsers:         {`{"first_name":"Gregg","email":"gregg@example.com"}`, "email"},
	models.ObjectOrders:        {`{"order_number":1001,"total_price":"99.90","line_items":[{"sku":"A-1","quantity":1,"unit_price":99.9}]}`, "financial_status"},
	models.ObjectCustomers:     {`{"first_name":"Bob","tags":["vip"]}`, "first_name"},
	models.ObjectProducts:      {`{"title":"Anvil","variants":[{"id":"v1","price":"99.90"}]}`, "title"},
}

// TestConformance runs the shared connector suite against the real app on
// both databases, webhooks going over HTTP to a verifying inbound endpoint.
func TestConformance(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		n := 0
		conformance.Run(t, conformance.Harness{
			Connector: b.conn,
			Objects:   sandbox.Objects(),
			NewConn: func(t *testing.T) *connectors.Conn {
				return b.newConnection(t, "acc_1", sandbox.AppName, sandbox.ModeWebhook)
			},
			Create: func(t *testing.T, c *connectors.Conn, object string) string {
				id, err := b.svc.Create(t.Context(), "acc_1", c.ID, object, raw(records[object].create))
				require.NoError(t, err)
				return id
			},
			Update: func(t *testing.T, c *connectors.Conn, object, id string) {
				n++
				v, _ := json.Marshal(fmt.Sprint("changed ", n))
				require.NoError(t, b.svc.Update(t.Context(), "acc_1", c.ID, object, id, raw(`{"`+records[object].field+`":`+string(v)+`}`)))
			},
			Delete: func(t *testing.T, c *connectors.Conn, object, id string) {
				require.NoError(t, b.svc.Delete(t.Context(), "acc_1", c.ID, object, id))
			},
			Advance:  b.clock.Advance,
			Webhooks: func(t *testing.T, c *connectors.Conn) []*connectors.InboundRequest { return b.in.take(c.ID) },
			PageSize: 2,
		})
	})
}
