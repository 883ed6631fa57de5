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

func (s *Server) syncRoutes(public *gin.Engine, isv, admin *gin.RouterGroup) {
	isv.GET("/apps", s.listApps)
	s.connectionRoutes(public, isv, admin)
	s.sandboxRoutes(isv)
	s.inboundRoutes(public)
}

func (s *Server) listApps(c *gin.Context) {
	if s.deps.Apps == nil {
		c.JSON(http.StatusOK, listBody([]connectors.Info{}, ""))
		return
	}
	c.JSON(http.StatusOK, listBody(s.deps.Apps.List(), ""))
}

// unavailable answers 503 for routes whose service this process lacks.
func unavailable(c *gin.Context, what string) {
	c.AbortWithStatusJSON(http.StatusServiceUnavailable, errorBody("unavailable", what+" is not enabled on this process"))
}
