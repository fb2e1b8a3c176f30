package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/uptrace/bun"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/workflows"
)

// RecoveryHandler serves recoveries: POST /webhooks/:id/recover and the progress and
// cancellation of one.
type RecoveryHandler struct {
	hooks      *WebhookHandler
	recoveries *recoveries
}

// NewRecoveryHandler builds the recovery handler.
func NewRecoveryHandler(d Deps) *RecoveryHandler {
	return &RecoveryHandler{hooks: NewWebhookHandler(d), recoveries: newRecoveries(d)}
}

// Recovery is the API's view of a recovery.
type Recovery struct {
	ID        string    `json:"id"`
	WebhookID string    `json:"webhookId"`
	Since     time.Time `json:"since"`
	Until     time.Time `json:"until"`
	Status    []string  `json:"status"`
	// Reason is "requested" (POST /recover) or "missed" (re-enabled with recoverMissed).
	Reason string `json:"reason"`
	// State is running, canceling (cancelled, finishing the redelivery in flight),
	// completed, canceled or failed.
	State       string     `json:"state"`
	Matched     int        `json:"matched"`
	Skipped     int        `json:"skipped"`
	Redelivered int        `json:"redelivered"`
	Succeeded   int        `json:"succeeded"`
	Failed      int        `json:"failed"`
	Error       *string    `json:"error"`
	WorkflowID  string     `json:"workflowId"`
	CreatedAt   time.Time  `json:"createdAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
	CompletedAt *time.Time `json:"completedAt"`
}

func toRecovery(r *models.Recovery) Recovery {
	state := r.State
	if state == models.RecoveryRunning && r.CancelRequestedAt != nil {
		state = "canceling"
	}
	return Recovery{
		ID: r.ID, WebhookID: r.WebhookID, Since: r.WindowStart, Until: r.WindowEnd, Status: r.Statuses,
		Reason: r.Reason, State: state, Matched: r.Matched, Skipped: r.Skipped, Redelivered: r.Redelivered,
		Succeeded: r.Succeeded, Failed: r.Failed, Error: r.Error, WorkflowID: r.WorkflowID,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, CompletedAt: r.CompletedAt,
	}
}

type recoverRequest struct {
	Since  *string         `json:"since"`
	Until  *string         `json:"until"`
	Status json.RawMessage `json:"status"`
}

// recoverableStatuses are the statuses a recovery may redeliver.
var recoverableStatuses = []delivery.Outcome{delivery.OutcomeFailed, delivery.OutcomeMissed}

// create starts a recovery of the webhook's failed (or missed) deliveries in a window:
// 202 with its id. The same request again answers with the same recovery.
func (h *RecoveryHandler) create(c *gin.Context) {
	w, err := h.hooks.load(c)
	if err != nil {
		_ = c.Error(err)
		return
	}
	var req recoverRequest
	if err := decodeJSON(c, &req); err != nil {
		_ = c.Error(err)
		return
	}
	since, until, statuses, err := h.recoveries.validate(req, time.Now())
	if err != nil {
		_ = c.Error(err)
		return
	}
	if !w.IsActive {
		_ = c.Error(&Error{Status: http.StatusConflict, Code: "webhook_inactive",
			Message: "the webhook is switched off, so nothing would be sent: switch it on first (PATCH isActive: true, with recoverMissed: true to recover what it missed)"})
		return
	}
	r, err := h.recoveries.start(c.Request.Context(), w, since, until, statuses, models.RecoveryRequested)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusAccepted, toRecovery(r))
}

func (h *RecoveryHandler) load(c *gin.Context) (*models.Recovery, error) {
	w, err := h.hooks.load(c)
	if err != nil {
		return nil, err
	}
	notFound := &Error{Status: http.StatusNotFound, Code: "not_found", Message: "recovery not found"}
	id, err := uuid.Parse(c.Param("recoveryId"))
	if err != nil {
		return nil, notFound
	}
	r, err := models.GetRecovery(c.Request.Context(), h.recoveries.db, w.ID, id.String())
	if errors.Is(err, models.ErrNotFound) {
		return nil, notFound
	}
	return r, err
}

// get shows a recovery's progress: what matched, what was redelivered and how it went.
func (h *RecoveryHandler) get(c *gin.Context) {
	r, err := h.load(c)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusOK, toRecovery(r))
}

// cancel stops a running recovery: 202, and it ends as canceled once the redelivery in
// flight (if any) has finished.
func (h *RecoveryHandler) cancel(c *gin.Context) {
	r, err := h.load(c)
	if err != nil {
		_ = c.Error(err)
		return
	}
	if r.State != models.RecoveryRunning {
		_ = c.Error(&Error{Status: http.StatusConflict, Code: "recovery_finished", Message: "the recovery has already ended (" + r.State + ")"})
		return
	}
	if r, err = h.recoveries.cancel(c.Request.Context(), r); err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusAccepted, toRecovery(r))
}

// recoveries starts and stops RecoverDeliveries workflows for the recovery routes and
// for PATCH /webhooks/:id with recoverMissed.
type recoveries struct {
	db       *bun.DB
	temporal client.Client
	cfg      Config
	logger   *slog.Logger
}

func newRecoveries(d Deps) *recoveries {
	logger := d.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &recoveries{db: d.DB, temporal: d.Temporal, cfg: d.Config, logger: logger}
}

// validate reads a recovery request: since is required, until defaults to now, the
// window may not pass RecoverMaxWindow, and status defaults to failed.
func (s *recoveries) validate(req recoverRequest, now time.Time) (since, until time.Time, statuses []delivery.Outcome, err error) {
	if req.Since == nil {
		return since, until, nil, badRequest("invalid_since", "since is required: an RFC 3339 time, like 2026-12-01T00:00:00Z")
	}
	if since, err = time.Parse(time.RFC3339Nano, *req.Since); err != nil {
		return since, until, nil, badRequest("invalid_since", "since must be an RFC 3339 time, like 2026-12-01T00:00:00Z")
	}
	until = now
	if req.Until != nil {
		if until, err = time.Parse(time.RFC3339Nano, *req.Until); err != nil {
			return since, until, nil, badRequest("invalid_until", "until must be an RFC 3339 time, like 2026-12-02T00:00:00Z")
		}
	}
	// The log keeps microseconds: a window finer than that would name the same one twice.
	since, until = since.UTC().Truncate(time.Microsecond), until.UTC().Truncate(time.Microsecond)
	switch {
	case !since.Before(until):
		return since, until, nil, badRequest("invalid_window", "since must be before until")
	case s.cfg.RecoverMaxWindow > 0 && until.Sub(since) > s.cfg.RecoverMaxWindow:
		return since, until, nil, badRequest("invalid_window",
			fmt.Sprintf("the window may be at most %s (WEBHOOK_RECOVER_MAX_WINDOW); recover a longer one in parts", s.cfg.RecoverMaxWindow))
	}
	statuses, err = parseRecoverStatuses(req.Status)
	return since, until, statuses, err
}

// parseRecoverStatuses reads status: a list of failed and missed; absent, failed.
func parseRecoverStatuses(raw json.RawMessage) ([]delivery.Outcome, error) {
	if raw == nil || string(raw) == "null" {
		return []delivery.Outcome{delivery.OutcomeFailed}, nil
	}
	invalid := badRequest("invalid_status", `status must be a non-empty list of "failed" and "missed"`)
	var list []delivery.Outcome
	if err := json.Unmarshal(raw, &list); err != nil || len(list) == 0 {
		return nil, invalid
	}
	var out []delivery.Outcome
	for _, st := range list {
		if !slices.Contains(recoverableStatuses, st) {
			return nil, invalid
		}
		if !slices.Contains(out, st) {
			out = append(out, st)
		}
	}
	slices.Sort(out) // the same set names the same recovery
	return out, nil
}

// recoveryNamespace seeds recovery ids.
var recoveryNamespace = uuid.MustParse("9a7d4e2b-1c3f-4a8e-b5d6-0f2e7c9a1b34")

// recoveryID names a recovery by what it covers: the same webhook, window and statuses
// are the same recovery, whoever asks and however often.
func recoveryID(webhookID string, since, until time.Time, statuses []delivery.Outcome) string {
	parts := []string{webhookID, since.UTC().Format(time.RFC3339Nano), until.UTC().Format(time.RFC3339Nano)}
	for _, s := range statuses {
		parts = append(parts, string(s))
	}
	return uuid.NewSHA1(recoveryNamespace, []byte(strings.Join(parts, "\x00"))).String()
}

// start records the recovery and starts its workflow. The same recovery again returns
// the one stored (running or not: it ran once); another running recovery of the webhook
// is a 409. If the workflow cannot be started, the record is removed and the answer is
// a 503, so nothing holds the webhook's one running recovery.
func (s *recoveries) start(ctx context.Context, w *models.Webhook, since, until time.Time, statuses []delivery.Outcome, reason string) (*models.Recovery, error) {
	if s.temporal == nil {
		return nil, temporalUnavailable()
	}
	id := recoveryID(w.ID, since, until, statuses)
	st := make([]string, len(statuses))
	for i, x := range statuses {
		st[i] = string(x)
	}
	rec := &models.Recovery{
		ID: id, WebhookID: w.ID, UserID: w.UserID, WindowStart: since, WindowEnd: until, Statuses: st,
		Reason: reason, WorkflowID: workflows.RecoveryWorkflowID(w.ID, id),
	}
	r, created, err := models.CreateRecovery(ctx, s.db, rec)
	if errors.Is(err, models.ErrRecoveryRunning) && s.stale(ctx, r) {
		r, created, err = models.CreateRecovery(ctx, s.db, rec)
	}
	if errors.Is(err, models.ErrRecoveryRunning) {
		msg := "another recovery of this webhook is running"
		if r != nil {
			msg += " (" + r.ID + "): wait for it, or cancel it with DELETE /webhooks/" + w.ID + "/recoveries/" + r.ID
		}
		return nil, &Error{Status: http.StatusConflict, Code: "recovery_running", Message: msg}
	}
	if err != nil {
		return nil, err
	}
	if !created && r.State != models.RecoveryRunning {
		return r, nil
	}
	if err := s.startWorkflow(ctx, w, r, statuses); err != nil {
		if created {
			if delErr := models.DeleteRecovery(context.WithoutCancel(ctx), s.db, r.ID); delErr != nil {
				err = errors.Join(err, delErr)
			}
		}
		return nil, err
	}
	if !created && s.stale(ctx, r) {
		// The same recovery, whose workflow ran and was terminated: it is not run again.
		return models.GetRecovery(ctx, s.db, w.ID, r.ID)
	}
	return r, nil
}

// recoveryStartGrace is how long a recovery may be recorded before its workflow shows:
// the API records it, then starts the workflow. Younger, a missing workflow is starting.
const recoveryStartGrace = 30 * time.Second

// startWorkflow starts the recovery's workflow; one already started is left running.
func (s *recoveries) startWorkflow(ctx context.Context, w *models.Webhook, r *models.Recovery, statuses []delivery.Outcome) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.TemporalTimeout)
	defer cancel()
	_, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    r.WorkflowID,
		TaskQueue:             s.cfg.TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SearchAttrWebhookID.ValueSet(w.ID),
			workflows.SearchAttrUserID.ValueSet(w.UserID),
		),
		Memo: workflows.DeliveryMemo(w.Name, models.URLHost(w.URL)),
	}, workflows.RecoverDeliveriesName, workflows.RecoverDeliveriesInput{
		RecoveryID: r.ID, WebhookID: w.ID, UserID: w.UserID, Since: r.WindowStart, Until: r.WindowEnd, Statuses: statuses,
	})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &started) {
		return errors.Join(temporalUnavailable(), err)
	}
	return nil
}

// stale closes running, the webhook's running recovery, if its workflow is gone
// (terminated by an operator, or never started because the API stopped in between), so
// it no longer holds the slot, and says whether it did. nil (it ended meanwhile) is stale.
func (s *recoveries) stale(ctx context.Context, running *models.Recovery) bool {
	if running == nil {
		return true
	}
	if time.Since(running.CreatedAt) < recoveryStartGrace {
		return false
	}
	if live, err := s.workflowRunning(ctx, running); err != nil || live {
		return false
	}
	s.logger.WarnContext(ctx, "recovery without a running workflow closed", "recovery_id", running.ID, "webhook_id", running.WebhookID)
	_, _, err := models.FinishRecovery(ctx, s.db, running.ID, models.RecoveryFailed, progressOf(running), "its workflow is no longer running")
	return err == nil
}

func progressOf(r *models.Recovery) models.RecoveryProgress {
	return models.RecoveryProgress{Matched: r.Matched, Skipped: r.Skipped, Redelivered: r.Redelivered, Succeeded: r.Succeeded, Failed: r.Failed}
}

// workflowRunning says whether a recovery's workflow is running.
func (s *recoveries) workflowRunning(ctx context.Context, r *models.Recovery) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.TemporalTimeout)
	defer cancel()
	desc, err := s.temporal.DescribeWorkflowExecution(ctx, r.WorkflowID, "")
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		return false, nil
	case err != nil:
		return false, errors.Join(temporalUnavailable(), err)
	}
	return desc.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}

// running returns the webhook's running recovery, nil when none is, a record whose
// workflow is gone counting as none.
func (s *recoveries) running(ctx context.Context, webhookID string) (*models.Recovery, error) {
	r, err := models.RunningRecovery(ctx, s.db, webhookID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if time.Since(r.CreatedAt) < recoveryStartGrace {
		return r, nil
	}
	if live, err := s.workflowRunning(ctx, r); err != nil || live {
		return r, err
	}
	return nil, nil
}

// cancel asks the recovery's workflow to stop; one that is not running is recorded as
// canceled at once.
func (s *recoveries) cancel(ctx context.Context, r *models.Recovery) (*models.Recovery, error) {
	if s.temporal == nil {
		return nil, temporalUnavailable()
	}
	tctx, done := context.WithTimeout(ctx, s.cfg.TemporalTimeout)
	err := s.temporal.CancelWorkflow(tctx, r.WorkflowID, "")
	done()
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		r, _, err = models.FinishRecovery(ctx, s.db, r.ID, models.RecoveryCanceled, progressOf(r), "")
		return r, err
	case err != nil:
		return nil, errors.Join(temporalUnavailable(), err)
	}
	return models.RequestRecoveryCancel(ctx, s.db, r.WebhookID, r.ID)
}

// missedWindowPad extends a missed-deliveries recovery past the moment the webhook was
// switched on: a dispatch that read it as off just before may log its miss just after.
const missedWindowPad = time.Second

// startMissed starts the recovery of what before (the webhook as it was, switched off)
// missed until after (the same webhook switched on again): its missed deliveries since
// it went off, oldest first.
func (s *recoveries) startMissed(ctx context.Context, before, after *models.Webhook) (*models.Recovery, error) {
	until := after.UpdatedAt.Add(missedWindowPad).UTC().Truncate(time.Microsecond)
	since := after.CreatedAt
	if before.DisabledAt != nil {
		since = *before.DisabledAt
	}
	if max := s.cfg.RecoverMaxWindow; max > 0 && until.Sub(since) > max {
		since = until.Add(-max) // older rows are past the log's retention
	}
	since = since.UTC().Truncate(time.Microsecond)
	return s.start(ctx, after, since, until, []delivery.Outcome{delivery.OutcomeMissed}, models.RecoveryMissed)
}

// notifyRotationEnded starts, in the background, the durable timer that tells the
// AssetsUp backend when the secret a rotation replaced stops signing. The rotation stands
// without it and does not wait for it (the registry works while Temporal is down): a
// failure to start it is logged, not answered.
func (s *recoveries) notifyRotationEnded(ctx context.Context, w *models.Webhook, expiresAt time.Time) {
	if s.temporal == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.TemporalTimeout)
	go func() {
		defer cancel()
		s.startRotationEnded(ctx, w, expiresAt)
	}()
}

func (s *recoveries) startRotationEnded(ctx context.Context, w *models.Webhook, expiresAt time.Time) {
	_, err := s.temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:        workflows.RotationEndedWorkflowID(w.ID, expiresAt),
		TaskQueue: s.cfg.TaskQueue,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.SearchAttrWebhookID.ValueSet(w.ID),
			workflows.SearchAttrUserID.ValueSet(w.UserID),
		),
	}, workflows.NotifyRotationEndedName, workflows.NotifyRotationEndedInput{WebhookID: w.ID, ExpiresAt: expiresAt})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &started) {
		s.logger.WarnContext(ctx, "rotation end notice not scheduled", "webhook_id", w.ID, "error", err)
	}
}

// RecoveredWebhook answers PATCH /webhooks/:id with recoverMissed: the webhook, and the
// recovery of what it missed while off (null when it was not off).
type RecoveredWebhook struct {
	Webhook
	Recovery *Recovery `json:"recovery"`
}

// beforeRecoverMissed reads recoverMissed. When it is true it checks, before anything
// changes, that it can be done (isActive true, Temporal configured, no other recovery
// running) and returns the webhook as it is, to know what it missed; otherwise nil.
func (h *WebhookHandler) beforeRecoverMissed(c *gin.Context, id string, req updateRequest) (*models.Webhook, error) {
	if req.RecoverMissed == nil || string(req.RecoverMissed) == "null" {
		return nil, nil
	}
	var on bool
	if err := json.Unmarshal(req.RecoverMissed, &on); err != nil {
		return nil, badRequest("invalid_field", "recoverMissed must be true or false")
	}
	if !on {
		return nil, nil
	}
	if req.IsActive == nil || !*req.IsActive {
		return nil, badRequest("invalid_recover_missed", "recoverMissed comes with isActive: true: it recovers what the webhook missed while it was off")
	}
	w, err := models.GetWebhook(c.Request.Context(), h.db, userID(c), id)
	if err != nil || w.IsActive {
		return w, err
	}
	if h.recoveries.temporal == nil {
		return nil, temporalUnavailable()
	}
	running, err := h.recoveries.running(c.Request.Context(), w.ID)
	if err != nil {
		return nil, err
	}
	if running != nil {
		return nil, &Error{Status: http.StatusConflict, Code: "recovery_running",
			Message: "another recovery of this webhook is running (" + running.ID + "): wait for it, or cancel it, then switch the webhook on"}
	}
	return w, nil
}

// answerRecoverMissed starts the recovery of what before missed, now that after is on,
// and answers with both. The webhook is on whatever happens to the recovery; if it could
// not start, the error says how to start it by hand.
func (h *WebhookHandler) answerRecoverMissed(c *gin.Context, before, after *models.Webhook) {
	out := RecoveredWebhook{Webhook: toWebhook(after)}
	if before.IsActive {
		c.JSON(http.StatusOK, out) // it was on: nothing was missed
		return
	}
	r, err := h.recoveries.startMissed(c.Request.Context(), before, after)
	if err != nil {
		var apiErr *Error
		if errors.As(err, &apiErr) {
			apiErr.Message = "the webhook is switched on, but the recovery of what it missed did not start: " + apiErr.Message +
				`; start it with POST /webhooks/` + after.ID + `/recover {"status": ["missed"], "since": ...}`
		}
		_ = c.Error(err)
		return
	}
	v := toRecovery(r)
	out.Recovery = &v
	c.JSON(http.StatusOK, out)
}
