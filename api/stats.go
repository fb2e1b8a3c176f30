package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/uptrace/bun"

	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/operational"
)

// StatsHandler serves a webhook's endpoint health.
type StatsHandler struct {
	db    *bun.DB
	cfg   Config
	hooks *WebhookHandler
}

// NewStatsHandler builds the stats handler.
func NewStatsHandler(d Deps) *StatsHandler {
	return &StatsHandler{db: d.DB, cfg: d.Config, hooks: NewWebhookHandler(d)}
}

// Stats is a webhook's health over a window of its delivery log (test deliveries left out).
type Stats struct {
	WebhookID string    `json:"webhookId"`
	Window    string    `json:"window"`
	Since     time.Time `json:"since"`
	Until     time.Time `json:"until"`
	// Deliveries counts them by where they stand; Total is all of them.
	Deliveries DeliveryCounts `json:"deliveries"`
	// SuccessRate is succeeded / (succeeded + failed): null when none finished either way.
	SuccessRate *float64 `json:"successRate"`
	// AttemptsPerDelivery is the mean number of HTTP attempts of the succeeded and
	// failed deliveries.
	AttemptsPerDelivery *float64 `json:"attemptsPerDelivery"`
	// ResponseTimeMS are percentiles of the receiver's response time (each finished
	// delivery's last attempt), estimated within a bucket of the histogram kept.
	ResponseTimeMS Percentiles `json:"responseTimeMs"`
	LastError      *LastError  `json:"lastError"`
	// FailureStreak is the current run of consecutive failed deliveries; null while the
	// last one succeeded.
	FailureStreak  *FailureStreak `json:"failureStreak"`
	IsActive       bool           `json:"isActive"`
	DisabledAt     *time.Time     `json:"disabledAt"`
	DisabledReason *string        `json:"disabledReason"`
}

// DeliveryCounts counts deliveries by outcome.
type DeliveryCounts struct {
	models.OutcomeCounts
	Total int `json:"total"`
}

// Percentiles of a distribution, in milliseconds; null without data.
type Percentiles struct {
	P50 *int `json:"p50"`
	P95 *int `json:"p95"`
}

// LastError is the window's most recent failed delivery's error.
type LastError struct {
	Message *string   `json:"message"`
	At      time.Time `json:"at"`
}

// FailureStreak is the webhook's consecutive failed deliveries and when they began.
type FailureStreak struct {
	Failures int       `json:"failures"`
	Since    time.Time `json:"since"`
}

// defaultStatsWindow is the window of GET /webhooks/:id/stats without ?window.
const defaultStatsWindow = 24 * time.Hour

// stats answers with the webhook's health over ?window (a Go duration such as 1h or
// 24h; default 24h, at least 1m, at most RecoverMaxWindow).
func (h *StatsHandler) stats(c *gin.Context) {
	w, err := h.hooks.load(c)
	if err != nil {
		_ = c.Error(err)
		return
	}
	window := defaultStatsWindow
	if v := c.Query("window"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Minute || (h.cfg.RecoverMaxWindow > 0 && d > h.cfg.RecoverMaxWindow) {
			limit := "the delivery log's retention"
			if h.cfg.RecoverMaxWindow > 0 {
				limit = h.cfg.RecoverMaxWindow.String()
			}
			_ = c.Error(badRequest("invalid_window", fmt.Sprintf("window must be a duration such as 1h or 24h, from 1m to %s", limit)))
			return
		}
		window = d
	}
	st, err := models.GetWebhookStats(c.Request.Context(), h.db, w.ID, window)
	if err != nil {
		_ = c.Error(err)
		return
	}
	out := Stats{
		WebhookID: w.ID, Window: window.String(), Since: st.Since, Until: st.Until,
		Deliveries:     DeliveryCounts{OutcomeCounts: st.Outcomes, Total: st.Outcomes.Total()},
		ResponseTimeMS: Percentiles{P50: st.Percentile(0.5), P95: st.Percentile(0.95)},
		IsActive:       w.IsActive, DisabledAt: w.DisabledAt, DisabledReason: w.DisabledReason,
	}
	if done := st.Outcomes.Succeeded + st.Outcomes.Failed; done > 0 {
		rate := float64(st.Outcomes.Succeeded) / float64(done)
		out.SuccessRate = &rate
	}
	if st.Sent > 0 {
		mean := float64(st.Attempts) / float64(st.Sent)
		out.AttemptsPerDelivery = &mean
	}
	if st.LastErrorAt != nil {
		out.LastError = &LastError{Message: st.LastError, At: *st.LastErrorAt}
	}
	if st.FailingSince != nil && w.FailureCount > 0 {
		out.FailureStreak = &FailureStreak{Failures: w.FailureCount, Since: *st.FailingSince}
	}
	c.JSON(http.StatusOK, out)
}

// listOperationalEvents lists the operational events the service sends the AssetsUp
// backend: not subscribable, so apart from GET /events.
func listOperationalEvents(c *gin.Context) {
	c.JSON(http.StatusOK, operational.Catalogue())
}
