package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/tributary/tributary/models"
)

// Sandbox is what the /v1/sandbox routes need of the sandbox app
// (sync/sandboxapp). fields are a JSON object in the app's own shape.
type Sandbox interface {
	Create(ctx context.Context, accountID, connectionID, object string, fields json.RawMessage) (string, error)
	Update(ctx context.Context, accountID, connectionID, object, remoteID string, fields json.RawMessage) error
	Delete(ctx context.Context, accountID, connectionID, object, remoteID string) error
}

func (s *Server) sandboxRoutes(isv *gin.RouterGroup) {
	isv.POST("/sandbox/:connectionId/:object", s.withSandbox(s.createSandboxRecord))
	isv.PATCH("/sandbox/:connectionId/:object/:remoteId", s.withSandbox(s.updateSandboxRecord))
	isv.DELETE("/sandbox/:connectionId/:object/:remoteId", s.withSandbox(s.deleteSandboxRecord))
}

// withSandbox answers 503 on a process without the sandbox app.
func (s *Server) withSandbox(h gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if s.deps.Sandbox == nil {
			unavailable(c, "the sandbox app")
			return
		}
		h(c)
	}
}

// bindObject reads a free-form JSON object body strictly: malformed JSON,
// trailing data or anything but an object is a 400, an oversized body a 413.
func bindObject(c *gin.Context) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := bindJSON(c, &raw); err != nil {
		return nil, err
	}
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '{' {
		return nil, models.Errorf(models.ErrCodeInvalid, "request body must be a JSON object (a record in the sandbox app's own shape)")
	}
	return raw, nil
}

func (s *Server) createSandboxRecord(c *gin.Context) {
	fields, err := bindObject(c)
	if err != nil {
		fail(c, err)
		return
	}
	id, err := s.deps.Sandbox.Create(c.Request.Context(), accountID(c), c.Param("connectionId"), c.Param("object"), fields)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"remoteId": id})
}

func (s *Server) updateSandboxRecord(c *gin.Context) {
	fields, err := bindObject(c)
	if err != nil {
		fail(c, err)
		return
	}
	id := c.Param("remoteId")
	if err := s.deps.Sandbox.Update(c.Request.Context(), accountID(c), c.Param("connectionId"), c.Param("object"), id, fields); err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"remoteId": id})
}

func (s *Server) deleteSandboxRecord(c *gin.Context) {
	err := s.deps.Sandbox.Delete(c.Request.Context(), accountID(c), c.Param("connectionId"), c.Param("object"), c.Param("remoteId"))
	if err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
