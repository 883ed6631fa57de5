package api

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/models"
)

// Inbound is what POST /inbound/{app} needs of sync/inbound: verify the
// provider's signature on the raw request and store it durably (a repeated
// delivery is accepted and ignored).
type Inbound interface {
	Receive(ctx context.Context, app string, r *connectors.InboundRequest) error
}

// inboundRoutes registers the public provider webhook endpoint. It carries no
// bearer key: the provider's signature authenticates it.
func (s *Server) inboundRoutes(public *gin.Engine) {
	public.POST("/inbound/:app", s.inboundGate, s.receiveInbound)
}

// receiveInbound reads the raw body (within api.max_body_bytes), hands the
// request exactly as received to Receive and answers 200 once it is stored;
// processing is asynchronous.
func (s *Server) receiveInbound(c *gin.Context) {
	if s.deps.Inbound == nil {
		unavailable(c, "inbound webhooks")
		return
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			fail(c, models.Errorf(models.ErrCodeTooLarge, "request body exceeds %d bytes", mbe.Limit))
			return
		}
		fail(c, models.Errorf(models.ErrCodeInvalid, "cannot read request body: %v", err))
		return
	}
	req := &connectors.InboundRequest{
		Method: c.Request.Method,
		// The URL the provider called, as it signed it (HubSpot v3 signs it).
		URL:        s.deps.Config.ExternalURL() + cmp.Or(c.Request.RequestURI, c.Request.URL.RequestURI()),
		Header:     c.Request.Header.Clone(),
		Body:       body,
		ReceivedAt: time.Now().UTC(),
	}
	if err := s.deps.Inbound.Receive(c.Request.Context(), c.Param("app"), req); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"received": true})
}
