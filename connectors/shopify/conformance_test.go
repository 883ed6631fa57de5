package shopify

import (
	"testing"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/conformance"
	"github.com/tributary/tributary/models"
)

func TestConformance(t *testing.T) {
	b := setup(t)
	h := b.harness()
	conformance.Run(t, conformance.Harness{
		Connector: b.conn,
		Objects:   []string{models.ObjectOrders, models.ObjectCustomers, models.ObjectProducts},
		NewConn:   b.newConn,
		Create:    h.create,
		Update:    h.update,
		Delete:    h.delete,
		Advance:   b.clock.Advance,
		FailNext: func(t *testing.T, c *connectors.Conn, kind string, n int) {
			b.fake.FailNext(c.ExternalID, kind, n)
		},
		Webhooks: h.webhooks,
		PageSize: 2,
	})
}
