// Package dispatch is how Go code hands AssetsUp events to webhook delivery: it starts
// the DispatchEvent workflow, the same one the NestJS backend starts from TypeScript.
package dispatch

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/workflows"
)

// WebhookDispatchService starts deliveries of events to users' webhooks.
type WebhookDispatchService struct {
	client    client.Client
	taskQueue string
	newID     func() string
}

// NewWebhookDispatchService returns a service starting workflows on taskQueue. Build c
// with temporalclient (from config.Load(config.RoleDispatch)) so the event is sealed with
// the service's payload key, when it has one, before it leaves the process.
func NewWebhookDispatchService(c client.Client, taskQueue string) *WebhookDispatchService {
	return &WebhookDispatchService{client: c, taskQueue: taskQueue, newID: newEventID}
}

// Event is one event handed to delivery, apart from its NotificationEvent name. ID is
// the idempotency key: give the same ID for the same event and it is delivered once per
// webhook however often it is triggered. Receivers get Data inside an events.Payload.
type Event struct {
	ID         string
	UserID     string
	Data       any
	OccurredAt time.Time
}

// Trigger starts DispatchEvent for the event and returns its id (generated when
// e.ID is empty). It returns once Temporal has the event durably; delivery
// happens in the background.
//
// An id handed over before is a success only when that dispatch is running or has
// completed, since both end in delivery: a dispatch retries our own failures (database,
// Temporal) for as long as they last and never fails for them. A dispatch that failed,
// was terminated or timed out does not block its id: Trigger starts it again, and the
// new run sends nothing that the old one delivered (workflows.DispatchIDReusePolicy).
// An error means Temporal may not have the event: call Trigger again with the same id.
func (s *WebhookDispatchService) Trigger(ctx context.Context, event events.NotificationEvent, e Event) (string, error) {
	if e.ID == "" {
		e.ID = s.newID()
	}
	if e.OccurredAt.IsZero() {
		e.OccurredAt = time.Now().UTC()
	}
	data := json.RawMessage(`{}`)
	if e.Data != nil {
		b, err := json.Marshal(e.Data)
		if err != nil {
			return "", fmt.Errorf("encode event data: %w", err)
		}
		data = b
	}
	in := workflows.DispatchEventInput{
		ID: e.ID, Event: event, UserID: e.UserID, Data: data, OccurredAt: e.OccurredAt,
	}
	// Checked here too so a caller learns of a bad event at once, not from a failed workflow.
	if err := in.Validate(1 << 30); err != nil {
		return "", fmt.Errorf("invalid event: %w", err)
	}
	_, err := s.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                    workflows.DispatchWorkflowID(e.ID),
		TaskQueue:             s.taskQueue,
		WorkflowIDReusePolicy: workflows.DispatchIDReusePolicy,
	}, workflows.DispatchEventName, in)
	// Refused only when the earlier dispatch completed: delivered, nothing to do. A
	// running one is returned without an error.
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &started) {
		return "", fmt.Errorf("start dispatch: %w", err)
	}
	return e.ID, nil
}

// Notification mirrors the NestJS NotificationDispatchService's input.
type Notification struct {
	// ID, when set (the notification's own id), makes Dispatch safe to retry: the same
	// id is delivered once per webhook. Empty generates a new event id on every call.
	ID         string
	UserID     string
	Event      events.NotificationEvent
	Title      string
	Message    string
	EntityType string
	EntityID   string
	Metadata   map[string]any
}

// notificationData is the data receivers get for a notification.
type notificationData struct {
	Title      string         `json:"title,omitempty"`
	Message    string         `json:"message,omitempty"`
	EntityType string         `json:"entityType,omitempty"`
	EntityID   string         `json:"entityId,omitempty"`
	Metadata   map[string]any `json:"metadata,omitempty"`
}

// NotificationDispatchService is the Go counterpart of the backend's service of that
// name: every notification it dispatches also reaches the user's webhooks.
type NotificationDispatchService struct {
	webhooks *WebhookDispatchService
}

// NewNotificationDispatchService wires notifications to webhook delivery.
func NewNotificationDispatchService(w *WebhookDispatchService) *NotificationDispatchService {
	return &NotificationDispatchService{webhooks: w}
}

// Dispatch hands the notification to webhook delivery and returns the event id.
func (s *NotificationDispatchService) Dispatch(ctx context.Context, n Notification) (string, error) {
	return s.webhooks.Trigger(ctx, n.Event, Event{
		ID:     n.ID,
		UserID: n.UserID,
		Data: notificationData{
			Title: n.Title, Message: n.Message, EntityType: n.EntityType, EntityID: n.EntityID, Metadata: n.Metadata,
		},
	})
}

func newEventID() string {
	return "evt_" + uuidNoDashes()
}

func uuidNoDashes() string {
	id := uuid.New()
	return hex.EncodeToString(id[:])
}
