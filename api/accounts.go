package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/models"
)

// AccountAdmin is what the admin account routes need.
type AccountAdmin interface {
	Create(ctx context.Context, name string) (*models.Account, string, error)
	Update(ctx context.Context, id string, u accounts.Update) (*models.Account, error)
	Get(ctx context.Context, id string) (*models.Account, error)
	List(ctx context.Context, limit int, cursor string) ([]models.Account, string, error)
}

func (s *Server) accountRoutes(admin *gin.RouterGroup) {
	admin.POST("/accounts", s.createAccount)
	admin.GET("/accounts", s.listAccounts)
	admin.GET("/accounts/:id", s.getAccount)
	admin.PATCH("/accounts/:id", s.updateAccount)
}

func (s *Server) listAccounts(c *gin.Context) {
	p, err := pageParams(c)
	if err != nil {
		fail(c, err)
		return
	}
	rows, next, err := s.deps.Accounts.List(c.Request.Context(), p.Limit, p.Cursor)
	if err != nil {
		fail(c, err)
		return
	}
	out := make([]gin.H, 0, len(rows))
	for i := range rows {
		out = append(out, accountJSON(&rows[i]))
	}
	c.JSON(http.StatusOK, listBody(out, next))
}

func (s *Server) getAccount(c *gin.Context) {
	acc, err := s.deps.Accounts.Get(c.Request.Context(), c.Param("id"))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, accountJSON(acc))
}

func (s *Server) createAccount(c *gin.Context) {
	var req struct {
		Name string `json:"name"`
	}
	if err := bindJSON(c, &req); err != nil {
		fail(c, err)
		return
	}
	acc, key, err := s.deps.Accounts.Create(c.Request.Context(), req.Name)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"accountId": acc.ID, "apiKey": key, "name": acc.Name})
}

func (s *Server) updateAccount(c *gin.Context) {
	var req struct {
		DefaultPollInterval    *string   `json:"defaultPollInterval"`
		MinPollInterval        *string   `json:"minPollInterval"`
		AllowedRedirectOrigins *[]string `json:"allowedRedirectOrigins"`
	}
	if err := bindJSON(c, &req); err != nil {
		fail(c, err)
		return
	}
	u := accounts.Update{AllowedRedirectOrigins: req.AllowedRedirectOrigins}
	var err error
	if u.DefaultPollInterval, err = parseDuration("defaultPollInterval", req.DefaultPollInterval); err != nil {
		fail(c, err)
		return
	}
	if u.MinPollInterval, err = parseDuration("minPollInterval", req.MinPollInterval); err != nil {
		fail(c, err)
		return
	}
	acc, err := s.deps.Accounts.Update(c.Request.Context(), c.Param("id"), u)
	if err != nil {
		fail(c, err)
		return
	}
	// New poll settings apply to the account's connections now, not after
	// each one's next poll.
	if s.deps.Connections != nil && (u.DefaultPollInterval != nil || u.MinPollInterval != nil) {
		if _, err := s.deps.Connections.RescheduleAccount(c.Request.Context(), acc.ID); err != nil {
			fail(c, err)
			return
		}
	}
	c.JSON(http.StatusOK, accountJSON(acc))
}

func accountJSON(a *models.Account) gin.H {
	return gin.H{"id": a.ID, "name": a.Name, "defaultPollInterval": durationString(a.DefaultPollInterval),
		"minPollInterval": durationString(a.MinPollInterval), "allowedRedirectOrigins": accounts.RedirectOrigins(a),
		"createdAt": a.CreatedAt.UTC()}
}

// parseDuration reads an optional Go duration ("12h", "15m") from a JSON field.
func parseDuration(field string, s *string) (*time.Duration, error) {
	if s == nil {
		return nil, nil
	}
	d, err := time.ParseDuration(*s)
	if err != nil {
		return nil, models.FieldError(field, "%s must be a duration like \"15m\" or \"12h\"", field)
	}
	return &d, nil
}

// durationString renders a duration as the API writes them ("12h0m0s" → "12h").
func durationString(d time.Duration) any {
	if d == 0 {
		return nil
	}
	s := d.String()
	for _, suf := range []string{"m0s", "h0m"} {
		if len(s) > len(suf) && s[len(s)-len(suf):] == suf {
			s = s[:len(s)-len(suf)+1]
		}
	}
	return s
}
