package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"
	"go.temporal.io/sdk/client"

	"github.com/assetsup/webhooks/events"
)

type healthHandler struct {
	db       *bun.DB
	temporal client.Client
	timeout  time.Duration
}

// live says the process serves HTTP; it checks nothing else, so a database outage
// does not get the API restarted.
func (h *healthHandler) live(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// ready says whether the API can do its work: database and Temporal reachable.
func (h *healthHandler) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), h.timeout)
	defer cancel()
	checks := gin.H{"database": "ok", "temporal": "ok"}
	status := http.StatusOK
	if err := h.db.PingContext(ctx); err != nil {
		checks["database"], status = "unreachable", http.StatusServiceUnavailable
	}
	if h.temporal == nil {
		checks["temporal"], status = "not configured", http.StatusServiceUnavailable
	} else if _, err := h.temporal.CheckHealth(ctx, &client.CheckHealthRequest{}); err != nil {
		checks["temporal"], status = "unreachable", http.StatusServiceUnavailable
	}
	state := "ok"
	if status != http.StatusOK {
		state = "unavailable"
	}
	c.JSON(status, gin.H{"status": state, "checks": checks})
}

func listEvents(c *gin.Context) {
	c.JSON(http.StatusOK, events.Catalogue())
}
