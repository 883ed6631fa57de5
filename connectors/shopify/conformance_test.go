package shopify

import (
	"testing"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/conformance"
	"github.com/tributary/tributary/connectors/shopify/fake"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/sync/synctest"
)

// TestConformance runs the shared suite at the connector boundary, then the
// same harness through the real sync path on SQLite and PostgreSQL.
func TestConformance(t *testing.T) {
	t.Run("golden_files", func(t *testing.T) { conformance.RequireGoldenFiles(t, setup(t).conn) })
	b := setup(t)
	h := b.harness()
	ch := conformance.Harness{
		Connector: b.conn,
		Objects:   []string{models.ObjectOrders, models.ObjectCustomers, models.ObjectProducts},
		NewConn:   b.newConn,
		Create:    h.create,
		Update:    h.update,
		Delete:    h.delete,
		Advance:   b.clock.Advance,
		Now:       b.clock.Now,
		FailNext: func(t *testing.T, c *connectors.Conn, kind string, n int) {
			b.fake.FailNext(c.ExternalID, kind, n)
		},
		Webhooks:      h.webhooks,
		PageSize:      2,
		TokenLifetime: fake.AccessTokenTTL,
	}
	conformance.Run(t, ch)
	t.Run("sync", func(t *testing.T) { synctest.Run(t, ch) })
}
