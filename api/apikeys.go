package api

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/tributary/tributary/accounts"
)

// APIKeys is what the /v1/api-keys routes need of package accounts.
type APIKeys interface {
	CreateKey(ctx context.Context, accountID, name string) (accounts.Key, string, error)
	ListKeys(ctx context.Context, accountID string, limit int, cursor string) ([]accounts.Key, string, error)
	RevokeKey(ctx context.Context, accountID, keyID string) (accounts.Key, error)
}

func (s *Server) apiKeyRoutes(isv *gin.RouterGroup) {
	isv.GET("/api-keys", s.listAPIKeys)
	isv.POST("/api-keys", s.createAPIKey)
	isv.DELETE("/api-keys/:id", s.revokeAPIKey)
}

func (s *Server) listAPIKeys(c *gin.Context) {
	p, err := pageParams(c)
	if err != nil {
		fail(c, err)
		return
	}
	keys, next, err := s.deps.Accounts.ListKeys(c.Request.Context(), accountID(c), p.Limit, p.Cursor)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, listBody(keys, next))
}

// createAPIKey answers the new key with its secret as apiKey — the only time
// it is shown.
func (s *Server) createAPIKey(c *gin.Context) {
	var req struct {
		Name string `json:"name"`
	}
	if c.Request.ContentLength != 0 {
		if err := bindJSON(c, &req); err != nil {
			fail(c, err)
			return
		}
	}
	k, secret, err := s.deps.Accounts.CreateKey(c.Request.Context(), accountID(c), req.Name)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"id": k.ID, "name": k.Name, "prefix": k.Prefix, "createdAt": k.CreatedAt,
		"lastUsedAt": k.LastUsedAt, "apiKey": secret})
}

func (s *Server) revokeAPIKey(c *gin.Context) {
	if _, err := s.deps.Accounts.RevokeKey(c.Request.Context(), accountID(c), c.Param("id")); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
