package api

import "github.com/gin-gonic/gin"

// Connections is what the connections, connect-sessions, OAuth callback and
// admin connection routes need of sync/connections.
type Connections interface{}

func (s *Server) connectionRoutes(public *gin.Engine, isv, admin *gin.RouterGroup) {}
