// Package api is Tributary's HTTP layer on gin: the ISV API, the admin API,
// the public endpoints (JWKS, inbound provider webhooks, OAuth callback) and
// operations (/healthz, /readyz, /metrics). It authenticates, limits, binds
// and renders; the work is done by domain services it reaches through small
// interfaces declared here, next to the handlers that use them.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tributary/tributary/accounts"
	"github.com/tributary/tributary/api/openapi"
	"github.com/tributary/tributary/config"
)

// Accounts is what the API needs of package accounts.
type Accounts interface {
	Authenticate(ctx context.Context, key string) (accounts.Principal, error)
	AccountAdmin
	APIKeys
}

// Deps are the services the API serves. Any service may be nil on a process
// without it (its routes then answer 503).
type Deps struct {
	Config   *config.Config
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Ready reports whether the database answers.
	Ready func(ctx context.Context) error

	// OpsOnly serves only /healthz, /readyz and /metrics: a process without
	// the api role answers 404 to everything else.
	OpsOnly bool

	Accounts    Accounts
	Apps        Apps
	Forwarding  Forwarding
	Connections Connections
	Sandbox     Sandbox
	Inbound     Inbound
	// Console serves /console (package api/console); nil answers 503.
	Console http.Handler
	// Connect serves the hosted connect page /connect/{token}; nil answers 503.
	Connect http.Handler
}

// Server is the HTTP API.
type Server struct {
	deps         Deps
	engine       *gin.Engine
	limiter      *buckets // per API key
	authFails    *authFailures
	inboundRate  *buckets // per source IP
	inboundSlots chan struct{}
	metrics      *httpMetrics
}

// New builds the server and its routes.
func New(d Deps) *Server {
	gin.SetMode(gin.ReleaseMode)
	a := d.Config.API
	s := &Server{deps: d, engine: gin.New(),
		limiter:      newBuckets(a.RateLimit, a.RateBurst),
		authFails:    &authFailures{buckets: newBuckets(a.AuthFailureRate, a.AuthFailureBurst)},
		inboundRate:  newBuckets(a.InboundRateLimit, a.InboundRateBurst),
		inboundSlots: make(chan struct{}, max(1, a.InboundConcurrency)),
		metrics:      newHTTPMetrics(d.Registry)}
	s.engine.HandleMethodNotAllowed = true
	s.engine.ContextWithFallback = true
	// Client IPs come from the peer address unless api.trusted_proxies names
	// the proxies whose X-Forwarded-For is believed.
	if err := s.engine.SetTrustedProxies(a.TrustedProxies); err != nil {
		d.Logger.Error("api.trusted_proxies ignored: trusting no proxy", "err", err)
		_ = s.engine.SetTrustedProxies(nil)
	}
	s.engine.Use(s.requestID, s.recover, s.logAndMeasure, s.securityHeaders, s.validInput, s.limitBody)
	s.engine.NoRoute(func(c *gin.Context) { fail(c, errNotFoundRoute) })
	s.engine.NoMethod(func(c *gin.Context) { fail(c, errMethod) })
	s.routes()
	return s
}

// Handler returns the http.Handler to serve.
func (s *Server) Handler() http.Handler { return s.engine }

// HTTPServer returns the http.Server for h with the read, header, write and
// idle timeouts of c: a client that sends slowly or never reads its answer
// holds a goroutine no longer than those.
func HTTPServer(c config.API, h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: c.ReadHeaderTimeout, ReadTimeout: c.ReadTimeout,
		WriteTimeout: c.WriteTimeout, IdleTimeout: c.IdleTimeout, MaxHeaderBytes: 64 << 10}
}

func (s *Server) routes() {
	e := s.engine
	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{Registry: s.deps.Registry})))
	if s.deps.OpsOnly {
		return
	}
	spec := openapi.MustJSON()
	e.GET("/openapi.json", func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=300")
		c.Data(http.StatusOK, "application/json", spec)
	})

	console := func(c *gin.Context) {
		if s.deps.Console == nil {
			unavailable(c, "the console")
			return
		}
		s.deps.Console.ServeHTTP(c.Writer, c.Request)
	}
	e.GET("/console", console)
	e.GET("/console/*path", console)
	e.POST("/console/*path", console)
	connect := func(c *gin.Context) {
		if s.deps.Connect == nil {
			unavailable(c, "the connect page")
			return
		}
		s.deps.Connect.ServeHTTP(c.Writer, c.Request)
	}
	e.GET("/connect/:token", connect)
	e.POST("/connect/:token", connect)

	isv := e.Group("/v1", s.authenticate(roleISV))
	admin := e.Group("/v1/admin", s.authenticate(roleAdmin))
	s.accountRoutes(admin)
	s.apiKeyRoutes(isv)
	s.forwardingRoutes(e, isv)
	s.syncRoutes(e, isv, admin)
}

func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.deps.Ready(ctx); err != nil {
		c.JSON(http.StatusServiceUnavailable, errorBody("unavailable", "database unreachable"))
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}
