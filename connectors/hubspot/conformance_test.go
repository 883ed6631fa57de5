package hubspot_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/conformance"
	"github.com/tributary/tributary/connectors/hubspot"
	"github.com/tributary/tributary/models"
)

func TestConformance(t *testing.T) {
	b := setup(t)
	conformance.Run(t, conformance.Harness{
		Connector: b.conn,
		// Stages are left out: HubSpot has no archived-stage listing, so
		// ListDeleted answers ErrWindowExpired and sync relies on the full
		// listing; TestStagesLifecycle covers them.
		Objects: []string{
			models.ObjectContacts, models.ObjectAccounts, models.ObjectOpportunities,
			models.ObjectNotes, models.ObjectTasks, models.ObjectUsers,
		},
		NewConn: b.newConn,
		Create:  b.create,
		Update:  b.update,
		Delete:  b.remove,
		Advance: b.fake.Advance,
		FailNext: func(t *testing.T, c *connectors.Conn, kind string, n int) {
			require.NoError(t, b.fake.FailNext(portalOf(t, c), kind, n))
		},
		Webhooks: func(t *testing.T, c *connectors.Conn) []*connectors.InboundRequest {
			return b.fake.Webhooks(portalOf(t, c))
		},
		WebhookObjects: hubspot.WebhookObjects(),
		PageSize:       2,
	})
}
