package inbound

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/sandbox"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
)

// The sandbox app's webhooks (contracts §5) route by the connection id and
// carry full records: created, updated with its changed fields, deleted.
func TestSandboxWebhooks(t *testing.T) {
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		b := setup(t, db)
		secret := []byte("sandbox-secret")
		app := sandbox.New(nil, secret)
		b.recv.Apps = connectors.NewRegistry(app)
		b.proc.Apps = b.recv.Apps
		conn := b.connection(t, sandbox.AppName, "")
		require.NoError(t, db.Model(conn).Update("external_id", conn.ID).Error)

		send := func(version int64, deleted bool, data string) *connectors.InboundRequest {
			at := b.clock.Now().Add(time.Duration(version) * time.Second)
			w, err := sandbox.WebhookFor(conn.ID, models.ObjectContacts, sandbox.StoredRecord{RemoteID: "c1",
				Data: json.RawMessage(data), Deleted: deleted, Version: version, ModifiedAt: at, CreatedAt: b.clock.Now()})
			require.NoError(t, err)
			body, h, err := w.Sign(secret)
			require.NoError(t, err)
			return &connectors.InboundRequest{Method: http.MethodPost, URL: "http://127.0.0.1:8080/inbound/sandbox", Header: h, Body: body}
		}
		v1 := send(1, false, `{"first_name":"Ada","email":"ada@example.com"}`)
		b.receiveAll(t, sandbox.AppName, []*connectors.InboundRequest{v1, v1})
		b.receiveAll(t, sandbox.AppName, []*connectors.InboundRequest{send(2, false, `{"first_name":"Ada","email":"ada@new.example.com"}`)})
		b.receiveAll(t, sandbox.AppName, []*connectors.InboundRequest{send(3, true, `{"first_name":"Ada","email":"ada@new.example.com"}`)})
		require.Len(t, b.inbox(t), 3)
		require.Equal(t, "c1.v1", b.inbox(t)[0].DedupKey)

		require.Equal(t, 3, b.process(t))
		evs := b.events(t)
		require.Equal(t, []string{"crm/contacts created", "crm/contacts updated", "crm/contacts deleted"}, kinds(evs))
		require.Equal(t, []string{"email"}, evs[1].ChangedFields)
		require.Equal(t, "Sandbox", evs[0].Name)
		require.Equal(t, conn.ID, evs[2].ConnectionID)

		bad := send(4, false, `{"first_name":"Eve"}`)
		bad.Header.Set(sandbox.HeaderSignature, sandbox.Signature([]byte("wrong"), bad.Body))
		err := b.recv.Receive(t.Context(), sandbox.AppName, bad)
		require.Equal(t, models.ErrCodeUnauthorized, models.ErrorCode(err))
		require.Len(t, b.inbox(t), 3)
	})
}
