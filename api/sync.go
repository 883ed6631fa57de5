package api

import "github.com/gin-gonic/gin"

// Sync is what the apps, connections, connect-sessions, sandbox, inbound and
// OAuth callback routes need of the sync packages.
type Sync interface{}

func (s *Server) syncRoutes(public *gin.Engine, isv, admin *gin.RouterGroup) {}
