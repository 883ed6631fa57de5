package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/tributary/tributary/connectors"
)

// Apps lists the connectors this deployment offers.
type Apps interface {
	List() []connectors.Info
}

// Sync is what the connections, connect-sessions, sandbox, inbound and OAuth
// callback routes need of the sync packages (not wired yet).
type Sync interface{}

func (s *Server) syncRoutes(public *gin.Engine, isv, admin *gin.RouterGroup) {
	isv.GET("/apps", s.listApps)
}

func (s *Server) listApps(c *gin.Context) {
	if s.deps.Apps == nil {
		c.JSON(http.StatusOK, listBody([]connectors.Info{}, ""))
		return
	}
	c.JSON(http.StatusOK, listBody(s.deps.Apps.List(), ""))
}
