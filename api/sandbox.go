package api

import "github.com/gin-gonic/gin"

// Sandbox is what the /v1/sandbox routes need of the sandbox app.
type Sandbox interface{}

func (s *Server) sandboxRoutes(isv *gin.RouterGroup) {}
