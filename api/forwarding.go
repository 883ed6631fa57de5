package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tributary/tributary/forwarding"
	"github.com/tributary/tributary/forwarding/signing"
	"github.com/tributary/tributary/models"
)

// Forwarding is what the webhooks, deliveries, dead-letters, events and
// signing-keys routes need of package forwarding.
type Forwarding interface {
	CreateSubscription(ctx context.Context, accountID string, in forwarding.SubscriptionInput) (*forwarding.Subscription, error)
	UpdateSubscription(ctx context.Context, accountID, id string, in forwarding.SubscriptionInput) (*forwarding.Subscription, error)
	GetSubscription(ctx context.Context, accountID, id string) (*forwarding.Subscription, error)
	ListSubscriptions(ctx context.Context, accountID string, limit int, cursor string) ([]*forwarding.Subscription, string, error)
	DeleteSubscription(ctx context.Context, accountID, id string) error
	SendTest(ctx context.Context, accountID, webhookID, topic string) (*forwarding.AttemptView, string, error)
	ListDeliveries(ctx context.Context, accountID string, f forwarding.DeliveryFilter, limit int, cursor string) ([]forwarding.DeliveryView, string, error)
	SubscriptionStats(ctx context.Context, accountID, id string) (*forwarding.Stats, error)
	Resend(ctx context.Context, accountID, deliveryID string) (*forwarding.DeliveryView, error)
	DeadLetters(ctx context.Context, accountID, webhookID string, limit int, cursor string) ([]forwarding.DeliveryView, string, error)
	Replay(ctx context.Context, accountID, deliveryID string) error
	ReplayAll(ctx context.Context, accountID, webhookID string) (int64, error)
	ReplayRange(ctx context.Context, accountID, webhookID string, since, until time.Time) (int, error)
	Events(ctx context.Context, accountID string, f forwarding.EventFilter, limit int) ([]json.RawMessage, string, error)
	SigningKeys(ctx context.Context, accountID string) ([]forwarding.SigningKey, error)
	RotateSigningKey(ctx context.Context, accountID string) (forwarding.SigningKey, error)
	JWKS(ctx context.Context) (signing.JWKS, error)
	AccountJWKS(ctx context.Context, accountID string) (signing.JWKS, error)
	RotateSecret(ctx context.Context, accountID, id, newSecret string, overlap time.Duration) (*forwarding.Subscription, error)
}

func (s *Server) forwardingRoutes(public *gin.Engine, isv *gin.RouterGroup) {
	need := func(h gin.HandlerFunc) gin.HandlerFunc {
		return func(c *gin.Context) {
			if s.deps.Forwarding == nil {
				unavailable(c, "forwarding")
				return
			}
			h(c)
		}
	}
	public.GET("/.well-known/jwks.json", need(s.jwks))
	public.GET("/.well-known/jwks/:file", need(s.accountJWKS))
	isv.POST("/webhooks", need(s.createWebhook))
	isv.GET("/webhooks", need(s.listWebhooks))
	isv.GET("/webhooks/:id", need(s.getWebhook))
	isv.PATCH("/webhooks/:id", need(s.updateWebhook))
	isv.DELETE("/webhooks/:id", need(s.deleteWebhook))
	isv.POST("/webhooks/:id/test", need(s.testWebhook))
	isv.POST("/webhooks/:id/rotate-secret", need(s.rotateWebhookSecret))
	isv.POST("/webhooks/:id/replay", need(s.replayWebhook))
	isv.GET("/webhooks/:id/deliveries", need(s.listDeliveries))
	isv.GET("/webhooks/:id/stats", need(s.webhookStats))
	isv.GET("/deliveries", need(s.listDeliveries))
	isv.POST("/deliveries/:id/resend", need(s.resend))
	isv.GET("/dead-letters", need(s.deadLetters))
	isv.POST("/dead-letters/replay", need(s.replayAll))
	isv.POST("/dead-letters/:id/replay", need(s.replayOne))
	isv.GET("/events", need(s.listEvents))
	isv.GET("/signing-keys", need(s.signingKeys))
	isv.POST("/signing-keys/rotate", need(s.rotateSigningKey))
}

func (s *Server) jwks(c *gin.Context) {
	set, err := s.deps.Forwarding.JWKS(c.Request.Context())
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "public, max-age=300")
	c.JSON(http.StatusOK, set)
}

// accountJWKS serves GET /.well-known/jwks/{accountId}.json: the one key set
// a receiver of that account should trust.
func (s *Server) accountJWKS(c *gin.Context) {
	id, ok := strings.CutSuffix(c.Param("file"), ".json")
	if !ok || !strings.HasPrefix(id, models.PrefixAccount+"_") || len(id) > 40 {
		fail(c, models.Errorf(models.ErrCodeNotFound, "no such key set: use /.well-known/jwks/{accountId}.json"))
		return
	}
	// Only an existing account gets a key made for it.
	if _, err := s.deps.Accounts.Get(c.Request.Context(), id); err != nil {
		fail(c, err)
		return
	}
	set, err := s.deps.Forwarding.AccountJWKS(c.Request.Context(), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "public, max-age=300")
	c.JSON(http.StatusOK, set)
}

func (s *Server) createWebhook(c *gin.Context) {
	var in forwarding.SubscriptionInput
	if err := bindJSON(c, &in); err != nil {
		fail(c, err)
		return
	}
	sub, err := s.deps.Forwarding.CreateSubscription(c.Request.Context(), accountID(c), in)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, sub)
}

func (s *Server) listWebhooks(c *gin.Context) {
	p, err := pageParams(c)
	if err != nil {
		fail(c, err)
		return
	}
	subs, next, err := s.deps.Forwarding.ListSubscriptions(c.Request.Context(), accountID(c), p.Limit, p.Cursor)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, listBody(subs, next))
}

func (s *Server) getWebhook(c *gin.Context) {
	sub, err := s.deps.Forwarding.GetSubscription(c.Request.Context(), accountID(c), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, sub)
}

func (s *Server) updateWebhook(c *gin.Context) {
	var in forwarding.SubscriptionInput
	if err := bindJSON(c, &in); err != nil {
		fail(c, err)
		return
	}
	sub, err := s.deps.Forwarding.UpdateSubscription(c.Request.Context(), accountID(c), c.Param("id"), in)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, sub)
}

func (s *Server) deleteWebhook(c *gin.Context) {
	if err := s.deps.Forwarding.DeleteSubscription(c.Request.Context(), accountID(c), c.Param("id")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// rotateWebhookSecret gives a standard/hmac webhook a new secret (given or
// generated) and keeps the old one signing beside it for overlap (default
// signing.secret_overlap).
func (s *Server) rotateWebhookSecret(c *gin.Context) {
	var req struct {
		Secret  string  `json:"secret"`
		Overlap *string `json:"overlap"`
	}
	if c.Request.ContentLength != 0 {
		if err := bindJSON(c, &req); err != nil {
			fail(c, err)
			return
		}
	}
	overlap, err := parseDuration("overlap", req.Overlap)
	if err != nil {
		fail(c, err)
		return
	}
	var d time.Duration
	if overlap != nil {
		d = *overlap
	}
	sub, err := s.deps.Forwarding.RotateSecret(c.Request.Context(), accountID(c), c.Param("id"), req.Secret, d)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, sub)
}

func (s *Server) testWebhook(c *gin.Context) {
	var req struct {
		Topic string `json:"topic"`
	}
	if c.Request.ContentLength != 0 {
		if err := bindJSON(c, &req); err != nil {
			fail(c, err)
			return
		}
	}
	att, eventID, err := s.deps.Forwarding.SendTest(c.Request.Context(), accountID(c), c.Param("id"), req.Topic)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"eventId": eventID, "attempt": att, "statusCode": att.StatusCode,
		"responseTimeMs": att.ResponseTimeMs, "error": att.Error})
}

func (s *Server) listDeliveries(c *gin.Context) {
	p, err := pageParams(c)
	if err != nil {
		fail(c, err)
		return
	}
	f := forwarding.DeliveryFilter{WebhookID: c.Param("id"), Status: c.Query("status"),
		EventID: c.Query("eventId"), Topic: c.Query("topic"), ConnectionID: c.Query("connectionId")}
	for _, b := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := c.Query(b.name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				fail(c, models.FieldError(b.name, "%s must be an RFC 3339 time like 2026-11-30T10:00:00Z", b.name))
				return
			}
			*b.dst = t
		}
	}
	if f.WebhookID == "" {
		f.WebhookID = c.Query("webhookId")
	}
	list, next, err := s.deps.Forwarding.ListDeliveries(c.Request.Context(), accountID(c), f, p.Limit, p.Cursor)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, listBody(list, next))
}

func (s *Server) webhookStats(c *gin.Context) {
	st, err := s.deps.Forwarding.SubscriptionStats(c.Request.Context(), accountID(c), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

func (s *Server) resend(c *gin.Context) {
	d, err := s.deps.Forwarding.Resend(c.Request.Context(), accountID(c), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, d)
}

func (s *Server) deadLetters(c *gin.Context) {
	p, err := pageParams(c)
	if err != nil {
		fail(c, err)
		return
	}
	list, next, err := s.deps.Forwarding.DeadLetters(c.Request.Context(), accountID(c), c.Query("webhookId"), p.Limit, p.Cursor)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, listBody(list, next))
}

func (s *Server) replayOne(c *gin.Context) {
	if err := s.deps.Forwarding.Replay(c.Request.Context(), accountID(c), c.Param("id")); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"replayed": 1})
}

func (s *Server) replayAll(c *gin.Context) {
	var req struct {
		WebhookID string `json:"webhookId"`
	}
	if c.Request.ContentLength != 0 {
		if err := bindJSON(c, &req); err != nil {
			fail(c, err)
			return
		}
	}
	n, err := s.deps.Forwarding.ReplayAll(c.Request.Context(), accountID(c), req.WebhookID)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"replayed": n})
}

// replayWebhook re-delivers the account's events recorded in
// [since, until) that the webhook would receive, as new deliveries.
func (s *Server) replayWebhook(c *gin.Context) {
	var req struct {
		Since string `json:"since"`
		Until string `json:"until"`
	}
	if err := bindJSON(c, &req); err != nil {
		fail(c, err)
		return
	}
	var since, until time.Time
	for _, b := range []struct {
		name, v string
		dst     *time.Time
	}{{"since", req.Since, &since}, {"until", req.Until, &until}} {
		if b.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, b.v)
		if err != nil {
			fail(c, models.FieldError(b.name, "%s must be an RFC 3339 time like 2026-11-30T10:00:00Z", b.name))
			return
		}
		*b.dst = t
	}
	n, err := s.deps.Forwarding.ReplayRange(c.Request.Context(), accountID(c), c.Param("id"), since, until)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"replayed": n})
}

func (s *Server) listEvents(c *gin.Context) {
	p, err := pageParams(c)
	if err != nil {
		fail(c, err)
		return
	}
	after := c.Query("after")
	if after == "" {
		after = p.Cursor
	}
	evs, next, err := s.deps.Forwarding.Events(c.Request.Context(), accountID(c),
		forwarding.EventFilter{After: after, Topic: c.Query("topic"), ConnectionID: c.Query("connectionId")}, p.Limit)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, listBody(evs, next))
}

func (s *Server) signingKeys(c *gin.Context) {
	keys, err := s.deps.Forwarding.SigningKeys(c.Request.Context(), accountID(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, listBody(keys, ""))
}

func (s *Server) rotateSigningKey(c *gin.Context) {
	k, err := s.deps.Forwarding.RotateSigningKey(c.Request.Context(), accountID(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, k)
}
