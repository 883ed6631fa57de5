package synctest

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/storage/storagetest"
	"github.com/tributary/tributary/sync/inbound"
)

// RunSignature feeds req — a webhook signed exactly as the provider's
// documentation or official libraries sign it (a published test vector) —
// through the real inbound.Receiver of app on both databases: it is
// accepted and stored once; the same request with its body or its signature
// altered, or with no headers, is refused as unauthorized and stores
// nothing. connector must be configured with the vector's secret (and a
// clock inside the provider's timestamp window).
func RunSignature(t *testing.T, connector connectors.Connector, req *connectors.InboundRequest, signatureHeader string) {
	t.Helper()
	app := connector.Info().Name
	storagetest.Each(t, func(t *testing.T, db *gorm.DB) {
		recv := &inbound.Receiver{DB: db, Apps: connectors.NewRegistry(connector), Logger: slog.New(slog.DiscardHandler)}
		count := func() int64 {
			var n int64
			require.NoError(t, db.Model(&models.InboxItem{}).Where("app = ?", app).Count(&n).Error)
			return n
		}
		body := *req
		body.Body = append([]byte(nil), req.Body...)
		body.Body[len(body.Body)/2] ^= 0x01
		sig := *req
		sig.Header = req.Header.Clone()
		v := []byte(sig.Header.Get(signatureHeader))
		require.NotEmpty(t, v, "the request carries no %s", signatureHeader)
		v[0] ^= 0x01
		sig.Header.Set(signatureHeader, string(v))
		bare := *req
		bare.Header = nil
		for name, r := range map[string]*connectors.InboundRequest{"body tampered": &body, "signature tampered": &sig, "unsigned": &bare} {
			err := recv.Receive(t.Context(), app, r)
			require.Error(t, err, name)
			require.Equal(t, models.ErrCodeUnauthorized, models.ErrorCode(err), "%s: %v", name, err)
		}
		require.Zero(t, count(), "a refused webhook stores nothing")
		require.NoError(t, recv.Receive(t.Context(), app, req), "a webhook signed as documented is accepted")
		require.NoError(t, recv.Receive(t.Context(), app, req), "a redelivery is accepted")
		require.Equal(t, int64(1), count(), "stored once")
	})
}
