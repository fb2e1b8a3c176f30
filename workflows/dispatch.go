package workflows

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/events"
)

// DispatchEventInput is what the AssetsUp backend hands over: one event for one user.
// JSON names are the cross-language contract.
type DispatchEventInput struct {
	// ID is the event's idempotency key: the same id is delivered once per webhook.
	ID         string                   `json:"id"`
	Event      events.NotificationEvent `json:"event"`
	UserID     string                   `json:"userId"`
	Data       json.RawMessage          `json:"data,omitempty"`
	OccurredAt time.Time                `json:"occurredAt"`

	// Progress carried across continue-as-new for a large fan-out; callers leave it empty.
	Cursor     string `json:"cursor,omitempty"`
	Started    int    `json:"started,omitempty"`
	Duplicates int    `json:"duplicates,omitempty"`
}

// DispatchEventResult counts the deliveries this dispatch started, and those that an
// earlier dispatch of the same event had already started. Delivery is set when the
// event's only delivery ran inline, in this workflow.
type DispatchEventResult struct {
	Started    int                   `json:"started"`
	Duplicates int                   `json:"duplicates"`
	Delivery   *DeliverWebhookResult `json:"delivery,omitempty"`
	// ForwardedTo is the event's canonical dispatch, when this one ran under another id
	// and handed the event over (Duplicates is 1 if that dispatch already existed).
	ForwardedTo string `json:"forwardedTo,omitempty"`
}

// eventIDPattern keeps event ids usable inside workflow ids and headers.
var eventIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:\-]{1,200}$`)

// Validate checks an event before anything is delivered; the error names the field.
func (in DispatchEventInput) Validate(maxDataBytes int) error {
	switch {
	case !eventIDPattern.MatchString(in.ID):
		return errors.New("id is required: 1 to 200 letters, digits, '.', '_', ':' or '-'")
	case !in.Event.Valid():
		return fmt.Errorf("event %q is not a NotificationEvent; valid events: %s", in.Event, events.Names())
	case in.UserID == "":
		return errors.New("userId is required: events are delivered to one user's webhooks")
	case len(in.Data) > maxDataBytes:
		return fmt.Errorf("data is %d bytes; the limit is %d", len(in.Data), maxDataBytes)
	}
	if d := bytes.TrimSpace(in.Data); len(d) > 0 && !bytes.Equal(d, []byte("null")) && d[0] != '{' {
		return errors.New("data must be a JSON object")
	}
	return nil
}

// DispatchEvent starts one DeliverWebhook per active webhook of the user subscribed to
// the event. Each delivery's workflow id comes from (event id, webhook id), so a second
// dispatch of the same event starts nothing new. Deliveries are abandoned children:
// they outlive this workflow, which waits only until each has started. A large fan-out
// pages through subscribers and continues as new to keep its history small.
//
// An event with exactly one subscriber is delivered by its canonical dispatch itself
// (see deliverInline): half the Temporal work per event, which is most events.
func (w *Workflows) DispatchEvent(ctx workflow.Context, in DispatchEventInput) (DispatchEventResult, error) {
	cfg := w.runConfig(ctx)
	if err := in.Validate(cfg.MaxEventDataBytes); err != nil {
		return DispatchEventResult{}, temporal.NewNonRetryableApplicationError("invalid event: "+err.Error(), ErrTypeInvalidEvent, nil)
	}
	if in.OccurredAt.IsZero() {
		in.OccurredAt = workflow.Now(ctx).UTC()
	}
	if d := bytes.TrimSpace(in.Data); len(d) == 0 || bytes.Equal(d, []byte("null")) {
		in.Data = json.RawMessage(`{}`)
	}
	inline := cfg.InlineSingleDelivery
	if cfg.legacy {
		inline = legacySetting(ctx, legacyInlineVersion, cfg.InlineSingleDelivery)
	}
	canonical := workflow.GetInfo(ctx).WorkflowExecution.ID == DispatchWorkflowID(in.ID)
	if !canonical && (inline || !cfg.legacy) {
		return forwardToCanonical(ctx, in)
	}
	payload := events.Payload{
		ID:        in.ID,
		Event:     in.Event,
		Timestamp: in.OccurredAt.UTC().Format(time.RFC3339),
		Data:      in.Data,
	}
	var a *activities.Delivery
	startedThisRun := 0
	for {
		var page activities.ListSubscribersResult
		// The payload lets the listing apply the subscribers' filters, so a filtered-out
		// delivery starts no workflow. Only the activity's input changes, not the commands
		// this workflow issues: histories recorded before replay as they were.
		err := databaseStep(ctx, cfg, a.ListSubscribers, activities.ListSubscribersInput{
			UserID: in.UserID, Event: in.Event, After: in.Cursor, Payload: &payload,
		}, &page)
		if err != nil {
			return DispatchEventResult{}, fmt.Errorf("list subscribers: %w", err)
		}

		if inline && canonical && inlineEligible(in, page) {
			return w.deliverInline(ctx, cfg, in, payload, page.Subscribers[0])
		}

		futures := make([]workflow.ChildWorkflowFuture, len(page.Subscribers))
		for i, sub := range page.Subscribers {
			futures[i] = workflow.ExecuteChildWorkflow(w.deliveryContext(ctx, in, sub), DeliverWebhookName, eventDelivery(in, sub, payload))
		}
		for _, f := range futures {
			err := f.GetChildWorkflowExecution().Get(ctx, nil)
			var dup *temporal.ChildWorkflowExecutionAlreadyStartedError
			switch {
			case err == nil:
				in.Started++
			case errors.As(err, &dup):
				in.Duplicates++
			default:
				return DispatchEventResult{}, fmt.Errorf("start delivery: %w", err)
			}
		}
		startedThisRun += len(page.Subscribers)
		if page.Next == "" {
			return DispatchEventResult{Started: in.Started, Duplicates: in.Duplicates}, nil
		}
		in.Cursor = page.Next
		if startedThisRun >= cfg.ChildrenPerRun {
			return DispatchEventResult{}, workflow.NewContinueAsNewError(ctx, DispatchEventName, in)
		}
	}
}

// inlineEligible says whether this event's only delivery may run in this workflow.
// Exactly-once then rests on the dispatch's own workflow id, which only a run under
// DispatchWorkflowID(in.ID) has (the others forward there), instead of the child's.
func inlineEligible(in DispatchEventInput, page activities.ListSubscribersResult) bool {
	return in.Cursor == "" && page.Next == "" && len(page.Subscribers) == 1
}

// forwardToCanonical starts the event's dispatch under DispatchWorkflowID. A dispatch
// started under any other id never delivers itself, whatever the inline setting of the
// worker it lands on: an inline delivery has no child id of its own, so a dispatch that
// delivered inline and another that started children could both send. Funnelling every
// dispatch through the canonical id keeps one delivery per (event, webhook).
func forwardToCanonical(ctx workflow.Context, in DispatchEventInput) (DispatchEventResult, error) {
	id := DispatchWorkflowID(in.ID)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            id,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: DispatchIDReusePolicy,
	})
	err := workflow.ExecuteChildWorkflow(cctx, DispatchEventName, in).GetChildWorkflowExecution().Get(ctx, nil)
	var dup *temporal.ChildWorkflowExecutionAlreadyStartedError
	switch {
	case err == nil:
		return DispatchEventResult{ForwardedTo: id}, nil
	case errors.As(err, &dup):
		return DispatchEventResult{Duplicates: 1, ForwardedTo: id}, nil
	default:
		return DispatchEventResult{}, fmt.Errorf("start dispatch %s: %w", id, err)
	}
}

// deliverInline delivers the event to its only subscriber within the dispatch workflow.
// It carries the same search attributes and memo as a DeliverWebhook child, so the Web
// UI finds it by WebhookId like any delivery, and it fails the same way when the
// delivery fails.
func (w *Workflows) deliverInline(ctx workflow.Context, cfg runSettings, in DispatchEventInput, payload events.Payload, sub activities.Subscriber) (DispatchEventResult, error) {
	if err := workflow.UpsertTypedSearchAttributes(ctx, deliverySearchAttributeUpdates(sub.ID, in.Event, in.UserID)...); err != nil {
		return DispatchEventResult{}, fmt.Errorf("set delivery search attributes: %w", err)
	}
	if err := workflow.UpsertMemo(ctx, DeliveryMemo(sub.Name, sub.Host)); err != nil {
		return DispatchEventResult{}, fmt.Errorf("set delivery memo: %w", err)
	}
	res, err := w.deliver(ctx, cfg, eventDelivery(in, sub, payload))
	return DispatchEventResult{Started: 1, Delivery: &res}, err
}

// eventDelivery is the delivery of the dispatched event to one subscriber, the same
// whether a child or the dispatch itself delivers it.
func eventDelivery(in DispatchEventInput, sub activities.Subscriber, payload events.Payload) DeliverWebhookInput {
	return DeliverWebhookInput{
		Identity: delivery.Identity{DeliveryID: DeliveryID(in.ID, sub.ID), WebhookID: sub.ID, Kind: delivery.KindEvent},
		UserID:   in.UserID,
		Payload:  payload,
	}
}

func (w *Workflows) deliveryContext(ctx workflow.Context, in DispatchEventInput, sub activities.Subscriber) workflow.Context {
	return workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            DeliveryWorkflowID(in.ID, sub.ID),
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		TypedSearchAttributes: DeliverySearchAttributes(sub.ID, in.Event, in.UserID),
		Memo:                  DeliveryMemo(sub.Name, sub.Host),
	})
}

// DeliverySearchAttributes are the attributes operators filter deliveries by.
func DeliverySearchAttributes(webhookID string, event events.NotificationEvent, userID string) temporal.SearchAttributes {
	return temporal.NewSearchAttributes(deliverySearchAttributeUpdates(webhookID, event, userID)...)
}

func deliverySearchAttributeUpdates(webhookID string, event events.NotificationEvent, userID string) []temporal.SearchAttributeUpdate {
	return []temporal.SearchAttributeUpdate{
		SearchAttrWebhookID.ValueSet(webhookID),
		SearchAttrEvent.ValueSet(string(event)),
		SearchAttrUserID.ValueSet(userID),
	}
}

// DeliveryMemo is what the Web UI shows beside a delivery: the webhook's name and the
// URL's host, never its path, query or secret.
func DeliveryMemo(name, host string) map[string]any {
	return map[string]any{"webhookName": name, "host": host}
}
