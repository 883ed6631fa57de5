package fake

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"time"
)

// SandboxPortalID is the portal seeded by Seed and ListenAndServe.
const SandboxPortalID = 62515

// SandboxAccessToken is a long-lived access token of the seeded portal, for
// curl: Authorization: Bearer <SandboxAccessToken>.
const SandboxAccessToken = "sandbox-hubspot-access-token"

// Seed creates the sandbox portal with a few owners, companies, contacts,
// deals, a note and a task, and a long-lived access token.
func (s *Server) Seed() int64 {
	s.mu.Lock()
	id := int64(SandboxPortalID)
	if s.portals[id] == nil {
		s.createPortalLocked(id)
	}
	s.tokens[SandboxAccessToken] = &token{portal: id, expires: s.nowLocked().Add(10 * 365 * 24 * time.Hour)}
	s.mu.Unlock()

	owner, _ := s.CreateOwner(id, "gregg@example.com", "Gregg", "Owner")
	_, _ = s.CreateOwner(id, "ana@example.com", "Ana", "Seller")
	acme, _ := s.Create(id, "companies", map[string]string{"name": "Acme Corp", "domain": "acme.example", "industry": "MANUFACTURING", "hubspot_owner_id": owner})
	_, _ = s.Create(id, "companies", map[string]string{"name": "Biglytics", "domain": "biglytics.net", "city": "Cambridge"})
	_, _ = s.Create(id, "contacts", map[string]string{"firstname": "Bryan", "lastname": "Cooper", "email": "bcooper@biglytics.net", "jobtitle": "CTO"})
	maria, _ := s.Create(id, "contacts", map[string]string{"firstname": "Maria", "lastname": "Johnson", "email": "maria@acme.example", "associatedcompanyid": acme, "hubspot_owner_id": owner})
	_, _ = s.Create(id, "contacts", map[string]string{"firstname": "Sam", "lastname": "Lee", "email": "sam@example.org", "phone": "+1 555 0100"})
	renewal, _ := s.Create(id, "deals", map[string]string{"dealname": "Acme renewal", "amount": "12000", "dealstage": "qualifiedtobuy", "pipeline": "default", "closedate": "2026-03-31T00:00:00.000Z", "hubspot_owner_id": owner})
	_, _ = s.Create(id, "deals", map[string]string{"dealname": "Biglytics pilot", "amount": "4500", "dealstage": "closedwon", "pipeline": "default", "hs_is_closed": "true", "hs_is_closed_won": "true"})
	note, _ := s.Create(id, "notes", map[string]string{"hs_note_body": "Called Maria about the renewal.", "hubspot_owner_id": owner})
	task, _ := s.Create(id, "tasks", map[string]string{"hs_task_subject": "Send renewal quote", "hs_task_status": "NOT_STARTED", "hs_task_priority": "HIGH"})
	_ = s.Associate(id, "deals", renewal, "companies", acme, true)
	_ = s.Associate(id, "notes", note, "contacts", maria, false)
	_ = s.Associate(id, "notes", note, "deals", renewal, false)
	_ = s.Associate(id, "tasks", task, "deals", renewal, false)
	_ = s.Webhooks(id) // seeding is not news
	return id
}

// ListenAndServe serves a seeded fake on addr with the real clock until ctx
// ends. Point the connector at it with BaseURL=http://<addr>,
// AuthURL=http://<addr>/oauth/authorize, TokenURL=http://<addr>/oauth/2026-03/token.
func ListenAndServe(ctx context.Context, addr string, opts ...Option) error {
	s := New(append([]Option{WithClock(time.Now)}, opts...)...)
	s.Seed()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Printf("hubspot fake on http://%s: portal %d, client_id %q, access token %q",
		ln.Addr(), SandboxPortalID, s.clientID, SandboxAccessToken)
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
