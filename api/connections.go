package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tributary/tributary/models"
	"github.com/tributary/tributary/sync/connections"
)

// Connections is what the connections, connect-sessions, OAuth callback and
// admin connection routes need of sync/connections.
type Connections interface {
	Create(ctx context.Context, accountID string, in connections.CreateInput) (connections.View, error)
	List(ctx context.Context, accountID, userID string, limit int, cursor string) ([]connections.View, string, error)
	View(ctx context.Context, accountID, id string) (connections.View, error)
	UpdatePollInterval(ctx context.Context, accountID, id, interval string) (connections.View, error)
	AdminUpdatePollInterval(ctx context.Context, id, interval string) (connections.View, error)
	RescheduleAccount(ctx context.Context, accountID string) (int, error)
	SyncNow(ctx context.Context, accountID, id string) error
	Delete(ctx context.Context, accountID, id string) error
	CreateSession(ctx context.Context, accountID string, in connections.SessionInput) (connections.Session, error)
	BrowserCallback(ctx context.Context, state, code, providerError, browserNonce string) (redirect string, err error)
	Start(ctx context.Context, token string) (authorizeURL, cookieName, browserNonce string, err error)
}

func (s *Server) connectionRoutes(public *gin.Engine, isv, admin *gin.RouterGroup) {
	isv.POST("/connections", s.withConnections(s.createConnection))
	isv.GET("/connections", s.withConnections(s.listConnections))
	isv.GET("/connections/:id", s.withConnections(s.getConnection))
	isv.PATCH("/connections/:id", s.withConnections(s.patchConnection))
	isv.DELETE("/connections/:id", s.withConnections(s.deleteConnection))
	isv.POST("/connections/:id/sync", s.withConnections(s.syncConnection))
	isv.POST("/connect-sessions", s.withConnections(s.createConnectSession))
	public.GET("/oauth/callback", s.withConnections(s.oauthCallback))
	public.GET("/oauth/start/:token", s.withConnections(s.oauthStart))
	admin.PATCH("/connections/:id", s.withConnections(s.adminPatchConnection))
}

// withConnections answers 503 on a process without the connections service.
func (s *Server) withConnections(h gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.deps.Connections == nil {
			unavailable(c, "connections")
			return
		}
		h(c)
	}
}

func (s *Server) createConnection(c *gin.Context) {
	var req struct {
		App          string            `json:"app"`
		UserID       string            `json:"userId"`
		UserName     string            `json:"userName"`
		Credentials  map[string]string `json:"credentials"`
		PollInterval string            `json:"pollInterval"`
		EmitBackfill bool              `json:"emitBackfill"`
		IncludeRaw   bool              `json:"includeRaw"`
	}
	if err := bindJSON(c, &req); err != nil {
		fail(c, err)
		return
	}
	v, err := s.deps.Connections.Create(c.Request.Context(), accountID(c), connections.CreateInput{
		App: req.App, UserID: req.UserID, UserName: req.UserName, Credentials: req.Credentials,
		PollInterval: req.PollInterval, EmitBackfill: req.EmitBackfill, IncludeRaw: req.IncludeRaw,
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, v)
}

func (s *Server) listConnections(c *gin.Context) {
	p, err := pageParams(c)
	if err != nil {
		fail(c, err)
		return
	}
	views, next, err := s.deps.Connections.List(c.Request.Context(), accountID(c), c.Query("userId"), p.Limit, p.Cursor)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, listBody(views, next))
}

func (s *Server) getConnection(c *gin.Context) {
	v, err := s.deps.Connections.View(c.Request.Context(), accountID(c), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// pollIntervalBody is the PATCH body of both connection routes; "" clears
// the override.
type pollIntervalBody struct {
	PollInterval *string `json:"pollInterval"`
}

func bindPollInterval(c *gin.Context) (string, error) {
	var req pollIntervalBody
	if err := bindJSON(c, &req); err != nil {
		return "", err
	}
	if req.PollInterval == nil {
		return "", models.FieldError("pollInterval", "pollInterval is required (\"\" returns to the account default)")
	}
	return *req.PollInterval, nil
}

func (s *Server) patchConnection(c *gin.Context) {
	interval, err := bindPollInterval(c)
	if err != nil {
		fail(c, err)
		return
	}
	v, err := s.deps.Connections.UpdatePollInterval(c.Request.Context(), accountID(c), c.Param("id"), interval)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

func (s *Server) adminPatchConnection(c *gin.Context) {
	interval, err := bindPollInterval(c)
	if err != nil {
		fail(c, err)
		return
	}
	v, err := s.deps.Connections.AdminUpdatePollInterval(c.Request.Context(), c.Param("id"), interval)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

func (s *Server) deleteConnection(c *gin.Context) {
	if err := s.deps.Connections.Delete(c.Request.Context(), accountID(c), c.Param("id")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// syncConnection makes the connection due now and answers 202 with it.
func (s *Server) syncConnection(c *gin.Context) {
	ctx, acc, id := c.Request.Context(), accountID(c), c.Param("id")
	if err := s.deps.Connections.SyncNow(ctx, acc, id); err != nil {
		fail(c, err)
		return
	}
	v, err := s.deps.Connections.View(ctx, acc, id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, v)
}

func (s *Server) createConnectSession(c *gin.Context) {
	var req struct {
		App         string            `json:"app"`
		UserID      string            `json:"userId"`
		UserName    string            `json:"userName"`
		RedirectURL string            `json:"redirectUrl"`
		Params      map[string]string `json:"params"`
	}
	if err := bindJSON(c, &req); err != nil {
		fail(c, err)
		return
	}
	sess, err := s.deps.Connections.CreateSession(c.Request.Context(), accountID(c), connections.SessionInput{
		App: req.App, UserID: req.UserID, UserName: req.UserName, RedirectURL: req.RedirectURL, Params: req.Params,
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, sess)
}

// oauthCallback is the provider's redirect target: it completes the connect
// session and sends the end user on to the ISV's redirectUrl.
// It completes only in the browser that opened the session's connectUrl
// (the cookie oauthStart set), when the flow was started there.
func (s *Server) oauthCallback(c *gin.Context) {
	state := c.Query("state")
	nonce, _ := c.Cookie(connections.BrowserCookieName(state))
	redirect, err := s.deps.Connections.BrowserCallback(c.Request.Context(), state, c.Query("code"), c.Query("error"), nonce)
	if err != nil {
		fail(c, err)
		return
	}
	s.setConnectCookie(c, connections.BrowserCookieName(state), "", -1)
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusFound, redirect)
}

// oauthStart is a session's connectUrl: it binds the flow to this browser
// with a cookie and forwards to the provider's authorize URL.
func (s *Server) oauthStart(c *gin.Context) {
	authorize, name, nonce, err := s.deps.Connections.Start(c.Request.Context(), c.Param("token"))
	if err != nil {
		fail(c, err)
		return
	}
	s.setConnectCookie(c, name, nonce, int(connections.SessionLifetime.Seconds()))
	c.Redirect(http.StatusFound, authorize)
}

// setConnectCookie sets (or with maxAge < 0 clears) a connect-flow cookie:
// HttpOnly, SameSite=Lax (sent on the provider's top-level redirect back),
// Secure when the public URL is https, scoped to /oauth.
func (s *Server) setConnectCookie(c *gin.Context, name, value string, maxAge int) {
	secure := strings.HasPrefix(s.deps.Config.ExternalURL(), "https://")
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: value, Path: "/oauth", MaxAge: maxAge,
		HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
}
