// Package api serves the REST API the portal's webhook screen calls: the webhook
// registry, the event catalogue, test deliveries and the delivery log. Every
// /webhooks route is scoped to the authenticated user.
package api

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/uptrace/bun"
	"go.temporal.io/sdk/client"

	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/secrets"
)

// Config holds the API's limits.
type Config struct {
	JWTSecret          []byte
	MaxBodyBytes       int64
	MaxWebhooksPerUser int
	TaskQueue          string
	TestTimeout        time.Duration
	TemporalTimeout    time.Duration
	SecretGrace        time.Duration
	RateLimit          float64
	RateBurst          int
	// ListCacheBytes caps the rendered webhook lists kept in memory; 0 keeps none.
	ListCacheBytes int
	// MaxHeaders and MaxHeaderBytes bound a webhook's custom headers (0 headers: none
	// allowed); FilterMaxBytes and FilterCostLimit its payload filter (0 bytes: none).
	MaxHeaders      int
	MaxHeaderBytes  int
	FilterMaxBytes  int
	FilterCostLimit uint64
	// The portal (PORTAL_*): how long a session lasts and how long its link may wait to
	// be opened (0: 1h and 2m), who may frame it ("": 'self'), the URL its links start
	// with ("": the scheme and host the request reached), and the Temporal Web UI that
	// delivery pages link to ("": no links) with the namespace its workflows are in.
	PortalSessionTTL     time.Duration
	PortalLinkTTL        time.Duration
	PortalFrameAncestors string
	PortalPublicURL      string
	PortalTemporalUIURL  string
	TemporalNamespace    string
	// RecoverMaxWindow is the longest window a recovery, or a stats request, may cover
	// (WEBHOOK_RECOVER_MAX_WINDOW, by default the delivery log's retention); 0: no limit.
	RecoverMaxWindow time.Duration
}

// Deps are the API's collaborators.
type Deps struct {
	DB       *bun.DB
	Temporal client.Client // a lazy client: the registry works while Temporal is down
	Box      *secrets.Box
	Policy   *netguard.Policy
	Config   Config
	Logger   *slog.Logger
	Registry *prometheus.Registry // nil: metrics are not exposed
}

// NewRouter builds the gin engine with every route.
func NewRouter(d Deps) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	r.Use(recovery(d.Logger), requestLog(d.Logger))
	if d.Registry != nil {
		r.Use(httpMetrics(d.Registry))
		r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(d.Registry, promhttp.HandlerOpts{})))
	}
	r.Use(limitBody(d.Config.MaxBodyBytes), errorMiddleware(d.Logger))
	pt := newPortalHandler(d)
	// The portal's files are not API routes: they are served where no route matches.
	r.NoRoute(pt.serveFiles, func(c *gin.Context) { writeError(c, http.StatusNotFound, "not_found", "no such route") })
	r.NoMethod(func(c *gin.Context) {
		writeError(c, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed on this route")
	})

	health := &healthHandler{db: d.DB, temporal: d.Temporal, timeout: d.Config.TemporalTimeout}
	r.GET("/healthz", health.live)
	r.GET("/readyz", health.ready)
	r.GET("/openapi.yaml", func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", OpenAPISpec) })

	limit := rateLimit(d.Config.RateLimit, d.Config.RateBurst)
	// A portal session stands in for the JWT on /webhooks and /events only; it can
	// neither open another session nor reach any other route.
	r.POST("/portal/sessions", authenticate(d.Config.JWTSecret), limit, pt.createSession)
	r.POST("/portal/exchange", pt.authenticateLink, limit, pt.exchange)

	authed := r.Group("/", pt.acceptSessions(authenticate(d.Config.JWTSecret)), limit)
	authed.GET("/events", listEvents)

	wh := NewWebhookHandler(d)
	authed.POST("/webhooks", wh.create)
	authed.GET("/webhooks", wh.list)
	authed.GET("/webhooks/:id", wh.get)
	authed.PATCH("/webhooks/:id", wh.update)
	authed.DELETE("/webhooks/:id", wh.delete)
	authed.POST("/webhooks/:id/rotate-secret", wh.rotateSecret)

	dh := NewDeliveryHandler(d)
	authed.POST("/webhooks/:id/test", dh.test)
	authed.GET("/webhooks/:id/deliveries", dh.list)
	authed.GET("/webhooks/:id/deliveries/:deliveryId", dh.get)
	authed.POST("/webhooks/:id/deliveries/:deliveryId/redeliver", dh.redeliver)
	authed.GET("/webhooks/:id/deliveries/:deliveryId/body", dh.body)

	rh := NewRecoveryHandler(d)
	authed.POST("/webhooks/:id/recover", rh.create)
	authed.GET("/webhooks/:id/recoveries/:recoveryId", rh.get)
	authed.DELETE("/webhooks/:id/recoveries/:recoveryId", rh.cancel)
	authed.GET("/webhooks/:id/stats", NewStatsHandler(d).stats)
	// Apart from /events, whose list is what webhooks subscribe to.
	authed.GET("/events/operational", listOperationalEvents)
	return r
}

// limitBody caps request bodies; reading past the cap fails and the handler answers 413.
func limitBody(maxBytes int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.Body != nil {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, maxBytes)
		}
		c.Next()
	}
}

// requestLog logs one line per request; never headers (Authorization) nor bodies.
func requestLog(logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		logger.InfoContext(c.Request.Context(), "request",
			"method", c.Request.Method,
			"route", c.FullPath(),
			"status", c.Writer.Status(),
			"duration_ms", time.Since(start).Milliseconds(),
			"user_id", userID(c),
		)
	}
}
