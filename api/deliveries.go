package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"go.temporal.io/sdk/client"

	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/workflows"
)

// DeliveryHandler serves test deliveries, the delivery log and redelivery.
type DeliveryHandler struct {
	db       *bun.DB
	temporal client.Client
	cfg      Config
	hooks    *WebhookHandler
}

// NewDeliveryHandler builds the delivery handler.
func NewDeliveryHandler(d Deps) *DeliveryHandler {
	return &DeliveryHandler{db: d.DB, temporal: d.Temporal, cfg: d.Config, hooks: NewWebhookHandler(d)}
}

// TestResult answers POST /webhooks/:id/test.
type TestResult struct {
	DeliveryID string  `json:"deliveryId"`
	Delivered  *bool   `json:"delivered,omitempty"`
	StatusCode *int    `json:"statusCode,omitempty"`
	DurationMS *int64  `json:"durationMs,omitempty"`
	Error      *string `json:"error,omitempty"`
	WorkflowID string  `json:"workflowId"`
}

// Delivery is the API's view of one delivery.
type Delivery struct {
	ID              string           `json:"id"`
	WebhookID       string           `json:"webhookId"`
	EventID         string           `json:"eventId"`
	Event           string           `json:"event"`
	Kind            delivery.Kind    `json:"kind"`
	RedeliveryOf    *string          `json:"redeliveryOf"`
	Status          delivery.Outcome `json:"status"`
	Attempts        int              `json:"attempts"`
	LastStatusCode  *int             `json:"lastStatusCode"`
	LastError       *string          `json:"lastError"`
	ResponseExcerpt *string          `json:"responseExcerpt"`
	DurationMS      *int             `json:"durationMs"`
	WorkflowID      string           `json:"workflowId"`
	RunID           string           `json:"runId"`
	CreatedAt       time.Time        `json:"createdAt"`
	CompletedAt     *time.Time       `json:"completedAt"`
	// AttemptLog is every attempt the receiver answered, first to last; only the view of
	// one delivery carries it.
	AttemptLog []DeliveryAttempt `json:"attemptLog,omitempty"`
}

// DeliveryAttempt is one attempt of a delivery as the receiver answered it.
type DeliveryAttempt struct {
	Attempt         int       `json:"attempt"`
	Succeeded       bool      `json:"succeeded"`
	StatusCode      *int      `json:"statusCode"`
	Error           *string   `json:"error"`
	ResponseExcerpt *string   `json:"responseExcerpt"`
	DurationMS      int       `json:"durationMs"`
	RecordedAt      time.Time `json:"recordedAt"`
}

// DeliveryPage is one page of the delivery log.
type DeliveryPage struct {
	Deliveries []Delivery `json:"deliveries"`
	NextCursor *string    `json:"nextCursor"`
}

func toDelivery(d *models.Delivery) Delivery {
	return Delivery{
		ID: d.ID, WebhookID: d.WebhookID, EventID: d.EventID, Event: d.Event, Kind: d.Kind,
		RedeliveryOf: d.RedeliveryOf, Status: d.Status, Attempts: d.Attempts, LastStatusCode: d.LastStatusCode,
		LastError: d.LastError, ResponseExcerpt: d.ResponseExcerpt, DurationMS: d.DurationMS,
		WorkflowID: d.WorkflowID, RunID: d.RunID, CreatedAt: d.CreatedAt, CompletedAt: d.CompletedAt,
	}
}

// test sends a webhook.test event once, through the same workflow as real events but
// without touching the failure streak, and waits up to WEBHOOK_TEST_TIMEOUT for it.
func (h *DeliveryHandler) test(c *gin.Context) {
	w, err := h.hooks.load(c)
	if err != nil {
		_ = c.Error(err)
		return
	}
	deliveryID := uuid.NewString()
	in := workflows.DeliverWebhookInput{
		Identity:    delivery.Identity{DeliveryID: deliveryID, WebhookID: w.ID, Kind: delivery.KindTest},
		UserID:      w.UserID,
		Payload:     events.Payload{Event: events.Test, Timestamp: time.Now().UTC().Format(time.RFC3339)},
		MaxAttempts: 1,
	}
	run, err := h.start(c.Request.Context(), workflows.TestWorkflowID(w.ID, deliveryID), w, events.Test, in)
	if err != nil {
		_ = c.Error(err)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), h.cfg.TestTimeout)
	defer cancel()
	var value workflows.DeliverWebhookResult
	res, err := workflows.DeliveryResultOf(run.Get(ctx, &value), value)
	if err != nil {
		// Still running (or the wait failed): the delivery goes on; report where to find it.
		c.JSON(http.StatusAccepted, TestResult{DeliveryID: deliveryID, WorkflowID: run.GetID()})
		return
	}
	delivered := res.Outcome == delivery.OutcomeSucceeded
	out := TestResult{DeliveryID: deliveryID, WorkflowID: run.GetID(), Delivered: &delivered, DurationMS: &res.DurationMS}
	if res.StatusCode != 0 {
		out.StatusCode = &res.StatusCode
	}
	if res.Error != "" {
		out.Error = &res.Error
	}
	c.JSON(http.StatusOK, out)
}

// start begins a DeliverWebhook run; Temporal being unreachable is a 503, not a 500.
func (h *DeliveryHandler) start(ctx context.Context, workflowID string, w *models.Webhook, event events.NotificationEvent, in workflows.DeliverWebhookInput) (client.WorkflowRun, error) {
	if h.temporal == nil {
		return nil, temporalUnavailable()
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.TemporalTimeout)
	defer cancel()
	run, err := h.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    workflowID,
		TaskQueue:             h.cfg.TaskQueue,
		TypedSearchAttributes: workflows.DeliverySearchAttributes(w.ID, event, w.UserID),
		Memo:                  workflows.DeliveryMemo(w.Name, models.URLHost(w.URL)),
	}, workflows.DeliverWebhookName, in)
	if err != nil {
		return nil, errors.Join(temporalUnavailable(), err)
	}
	return run, nil
}

func temporalUnavailable() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: "temporal_unavailable",
		Message: "delivery service is unavailable; try again shortly"}
}

func (h *DeliveryHandler) list(c *gin.Context) {
	w, err := h.hooks.load(c)
	if err != nil {
		_ = c.Error(err)
		return
	}
	status := delivery.Outcome(c.Query("status"))
	switch status {
	case "", delivery.OutcomePending, delivery.OutcomeSucceeded, delivery.OutcomeFailed, delivery.OutcomeSkipped,
		delivery.OutcomeFiltered, delivery.OutcomeMissed:
	default:
		_ = c.Error(badRequest("invalid_status", "status must be pending, succeeded, failed, skipped, filtered or missed"))
		return
	}
	event := c.Query("event")
	if len(event) > 100 {
		_ = c.Error(badRequest("invalid_event", "event must be an event name of at most 100 characters"))
		return
	}
	limit := 20
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			_ = c.Error(badRequest("invalid_limit", "limit must be a whole number from 1 to 100"))
			return
		}
		limit = n
	}
	var after *models.DeliveryCursor
	if v := c.Query("cursor"); v != "" {
		cur, err := decodeCursor(v)
		if err != nil {
			_ = c.Error(badRequest("invalid_cursor", "cursor is not one this API returned"))
			return
		}
		after = cur
	}
	ds, err := models.ListDeliveries(c.Request.Context(), h.db, w.ID, status, event, limit, after)
	if err != nil {
		_ = c.Error(err)
		return
	}
	page := DeliveryPage{Deliveries: make([]Delivery, len(ds))}
	for i := range ds {
		page.Deliveries[i] = toDelivery(&ds[i])
	}
	if len(ds) == limit {
		next := encodeCursor(models.DeliveryCursor{CreatedAt: ds[len(ds)-1].CreatedAt, ID: ds[len(ds)-1].ID})
		page.NextCursor = &next
	}
	c.JSON(http.StatusOK, page)
}

func (h *DeliveryHandler) loadDelivery(c *gin.Context) (*models.Webhook, *models.Delivery, error) {
	w, err := h.hooks.load(c)
	if err != nil {
		return nil, nil, err
	}
	id, err := uuid.Parse(c.Param("deliveryId"))
	if err != nil {
		return nil, nil, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "delivery not found"}
	}
	d, err := models.GetDelivery(c.Request.Context(), h.db, w.ID, id.String())
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "delivery not found"}
	}
	return w, d, err
}

// get answers one delivery with every attempt the receiver answered (attemptLog).
func (h *DeliveryHandler) get(c *gin.Context) {
	_, d, err := h.loadDelivery(c)
	if err != nil {
		_ = c.Error(err)
		return
	}
	as, err := models.ListAttempts(c.Request.Context(), h.db, d.ID)
	if err != nil {
		_ = c.Error(err)
		return
	}
	out := toDelivery(d)
	out.AttemptLog = make([]DeliveryAttempt, len(as))
	for i, a := range as {
		out.AttemptLog[i] = DeliveryAttempt{
			Attempt: a.Attempt, Succeeded: a.Succeeded, StatusCode: a.StatusCode, Error: a.Error,
			ResponseExcerpt: a.ResponseExcerpt, DurationMS: a.DurationMS, RecordedAt: a.RecordedAt,
		}
	}
	c.JSON(http.StatusOK, out)
}

// redeliver sends the original body again as a new delivery linked to the original,
// whatever the original's outcome.
func (h *DeliveryHandler) redeliver(c *gin.Context) {
	w, d, err := h.loadDelivery(c)
	if err != nil {
		_ = c.Error(err)
		return
	}
	var payload events.Payload
	if len(d.RequestBody) == 0 || json.Unmarshal(d.RequestBody, &payload) != nil {
		_ = c.Error(&Error{Status: http.StatusConflict, Code: "body_unavailable", Message: "the original body was not recorded, so it cannot be sent again"})
		return
	}
	deliveryID := uuid.NewString()
	in := workflows.DeliverWebhookInput{
		Identity: delivery.Identity{DeliveryID: deliveryID, WebhookID: w.ID, Kind: delivery.KindRedelivery, RedeliveryOf: d.ID},
		UserID:   w.UserID,
		Payload:  payload,
	}
	run, err := h.start(c.Request.Context(), workflows.RedeliveryWorkflowID(w.ID, deliveryID), w, payload.Event, in)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"deliveryId": deliveryID, "redeliveryOf": d.ID, "workflowId": run.GetID()})
}

func encodeCursor(cur models.DeliveryCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cur.CreatedAt.UTC().Format(time.RFC3339Nano) + "|" + cur.ID))
}

// Cursor times outside these bounds cannot name a delivery row, so they are not cursors
// this API returned. PostgreSQL would reject some outright (it has no year 0), which
// must be a 400, not a 500.
var (
	cursorMinTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	cursorMaxTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
)

func decodeCursor(s string) (*models.DeliveryCursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decode cursor: %w", err)
	}
	ts, rawID, ok := strings.Cut(string(b), "|")
	if !ok {
		return nil, errors.New("cursor has no separator")
	}
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return nil, fmt.Errorf("cursor time: %w", err)
	}
	// An offset can carry a time across a bound, so compare in UTC.
	if at = at.UTC(); at.Before(cursorMinTime) || !at.Before(cursorMaxTime) {
		return nil, errors.New("cursor time out of range")
	}
	id, err := uuid.Parse(rawID)
	if err != nil {
		return nil, fmt.Errorf("cursor id: %w", err)
	}
	// uuid.Parse also takes forms PostgreSQL does not (urn:uuid:...): pass on the canonical one.
	return &models.DeliveryCursor{CreatedAt: at, ID: id.String()}, nil
}
