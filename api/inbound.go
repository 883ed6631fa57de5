package api

import "github.com/gin-gonic/gin"

// Inbound is what POST /inbound/{app} needs of sync/inbound.
type Inbound interface{}

func (s *Server) inboundRoutes(public *gin.Engine) {}
