package api

import "github.com/gin-gonic/gin"

// Forwarding is what the webhooks, deliveries, dead-letters, events and
// signing-keys routes need of package forwarding.
type Forwarding interface{}

func (s *Server) forwardingRoutes(public *gin.Engine, isv *gin.RouterGroup) {}
