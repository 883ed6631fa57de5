package sandboxapp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/tributary/tributary/connectors"
	"github.com/tributary/tributary/connectors/sandbox"
	"github.com/tributary/tributary/models"
)

// notify sends the record's change as a signed webhook when the connection
// is in webhook mode. The change is already committed: a failed webhook is
// reported (unavailable, naming the record) but not undone, and the next
// poll of the connection finds the change anyway.
func (s *Service) notify(ctx context.Context, conn *models.Connection, rec *models.SandboxRecord) error {
	if !webhookMode(conn) {
		return nil
	}
	if err := s.send(ctx, conn.ID, rec); err != nil {
		return models.Errorf(models.ErrCodeUnavailable,
			"sandbox %s %s was saved, but its webhook could not be delivered (%v); the next poll of connection %s will still find the change",
			rec.Object, rec.RemoteID, err, conn.ID)
	}
	return nil
}

func (s *Service) send(ctx context.Context, connectionID string, rec *models.SandboxRecord) error {
	if s.InboundURL == "" && s.Deliver == nil {
		return fmt.Errorf("no inbound URL configured")
	}
	w, err := sandbox.WebhookFor(connectionID, rec.Object, stored(rec))
	if err != nil {
		return err
	}
	body, h, err := w.Sign(s.Secret)
	if err != nil {
		return err
	}
	if s.Deliver != nil {
		return s.Deliver(context.WithoutCancel(ctx), &connectors.InboundRequest{Method: http.MethodPost, URL: s.InboundURL,
			Header: h, Body: body, ReceivedAt: s.now().UTC()})
	}
	// The caller hanging up must not cut a webhook for a committed change short.
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, s.InboundURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header = h
	resp, err := s.client().Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", s.InboundURL, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s answered %d: %s", s.InboundURL, resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}
