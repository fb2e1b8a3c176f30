// Package workflows holds the durable delivery logic: DispatchEvent fans an event out
// to a user's subscribed webhooks, and DeliverWebhook sends it to one of them with
// retries. Workflow code is deterministic: every side effect is an activity.
package workflows

import (
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
)

// Workflow type names: the cross-language contract. TypeScript callers and the
// Temporal CLI start workflows by these names.
const (
	DispatchEventName  = "DispatchEvent"
	DeliverWebhookName = "DeliverWebhook"
)

// Error types of workflow failures, matched by callers with temporal.ApplicationError.Type().
const (
	ErrTypeInvalidEvent   = "InvalidEvent"
	ErrTypeDeliveryFailed = "DeliveryFailed"
)

// Delivery kinds, mirrored in the delivery log.
const (
	KindEvent      = "event"
	KindTest       = "test"
	KindRedelivery = "redelivery"
)

// Delivery outcomes.
const (
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
	OutcomeSkipped   = "skipped"
)

// Search attributes every delivery carries, so operators filter the Web UI by webhook,
// event or user. They must be registered on the namespace (make dev, compose, worker).
var (
	SearchAttrWebhookID = temporal.NewSearchAttributeKeyKeyword("WebhookId")
	SearchAttrEvent     = temporal.NewSearchAttributeKeyKeyword("WebhookEvent")
	SearchAttrUserID    = temporal.NewSearchAttributeKeyKeyword("WebhookUserId")
)

// SearchAttributeKeys lists the custom search attributes, for registration.
func SearchAttributeKeys() []temporal.SearchAttributeKeyKeyword {
	return []temporal.SearchAttributeKeyKeyword{SearchAttrWebhookID, SearchAttrEvent, SearchAttrUserID}
}

// RetryConfig is the delivery retry policy, from WEBHOOK_RETRY_*.
type RetryConfig struct {
	MaxAttempts        int
	InitialInterval    time.Duration
	MaxInterval        time.Duration
	BackoffCoefficient float64
}

// Config is what the workflows read from the worker's configuration. Changing it
// affects new decisions only; a running delivery keeps the attempts it was scheduled with.
type Config struct {
	Retry                  RetryConfig
	HTTPTimeout            time.Duration
	DBRetryTimeout         time.Duration
	RecordRetryMaxInterval time.Duration
	MaxEventDataBytes      int
	ChildrenPerRun         int
	// InlineSingleDelivery lets DispatchEvent deliver an event with one subscriber itself.
	InlineSingleDelivery bool
	// FirstAttemptLocal runs a delivery's first attempt as a local activity.
	FirstAttemptLocal bool
}

// Workflows carries the configuration the workflow functions read. Register its
// methods with RegisterWorkflowWithOptions under DispatchEventName and DeliverWebhookName.
type Workflows struct {
	cfg Config
}

// New returns the workflows with their configuration.
func New(cfg Config) *Workflows {
	return &Workflows{cfg: cfg}
}

// deliveryNamespace seeds delivery ids, so one (event, webhook) pair always gets the same id.
var deliveryNamespace = uuid.MustParse("6f1c1b8e-4a55-4f0e-9a37-3c1f0d8a2b71")

// DeliveryID is the stable id of delivering event eventID to webhook webhookID: the same
// on every attempt and every re-dispatch, different for every webhook.
func DeliveryID(eventID, webhookID string) string {
	return uuid.NewSHA1(deliveryNamespace, []byte(eventID+"\x00"+webhookID)).String()
}

// DeliveryWorkflowID is the workflow id of that delivery. Temporal refuses a second
// workflow with it, which is what makes a repeated dispatch deliver once.
func DeliveryWorkflowID(eventID, webhookID string) string {
	return "delivery:" + eventID + ":" + webhookID
}

// TestWorkflowID is the workflow id of a test delivery.
func TestWorkflowID(webhookID, deliveryID string) string {
	return "test:" + webhookID + ":" + deliveryID
}

// RedeliveryWorkflowID is the workflow id of a redelivery.
func RedeliveryWorkflowID(webhookID, deliveryID string) string {
	return "redelivery:" + webhookID + ":" + deliveryID
}

// DispatchWorkflowID is the workflow id a caller should give DispatchEvent, so the
// same event handed over twice runs once.
func DispatchWorkflowID(eventID string) string {
	return "dispatch:" + eventID
}
