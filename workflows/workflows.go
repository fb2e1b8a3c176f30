// Package workflows holds the durable delivery logic: DispatchEvent fans an event out
// to a user's subscribed webhooks, and DeliverWebhook sends it to one of them with
// retries. Workflow code is deterministic: every side effect is an activity.
package workflows

import (
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/assetsup/webhooks/delivery"
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
	MaxAttempts        int           `json:"maxAttempts"`
	InitialInterval    time.Duration `json:"initialInterval"`
	MaxInterval        time.Duration `json:"maxInterval"`
	BackoffCoefficient float64       `json:"backoffCoefficient"`
}

// Config is what the workflows read from the worker's configuration. Each run records
// the whole of it in its history when it starts (see runConfig) and reads only that
// copy, so a worker restarted with other settings changes new runs only: a running
// delivery keeps the attempts, waits and shape it started with, and replays.
type Config struct {
	Retry           RetryConfig   `json:"retry"`
	HTTPTimeout     time.Duration `json:"httpTimeout"`
	ConnWaitTimeout time.Duration `json:"connWaitTimeout"`
	// DBRetryTimeout is how long a step retries the database in place (a local
	// activity) before it hands over to an activity that Temporal retries until the
	// database answers, visible to operators as a pending activity with its last error.
	DBRetryTimeout         time.Duration `json:"dbRetryTimeout"`
	RecordRetryMaxInterval time.Duration `json:"recordRetryMaxInterval"`
	MaxEventDataBytes      int           `json:"maxEventDataBytes"`
	ChildrenPerRun         int           `json:"childrenPerRun"`
	// InlineSingleDelivery lets DispatchEvent deliver an event with one subscriber itself.
	InlineSingleDelivery bool `json:"inlineSingleDelivery"`
	// FirstAttemptLocal runs a delivery's first attempt as a local activity.
	FirstAttemptLocal bool `json:"firstAttemptLocal"`
	// RecoverRate is how many redeliveries per second a recovery makes at most (0: no bound).
	RecoverRate float64 `json:"recoverRate,omitempty"`
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

// runConfigChange marks runs that record their configuration (see runConfig).
const runConfigChange = "run-config"

// runSettings is what a run reads: its recorded configuration. A run started by a
// release that did not record it (legacy) reads the live configuration, except for the
// two shape switches that release recorded with their own markers, and is replayed
// the way that release ran it.
type runSettings struct {
	Config
	legacy bool
}

// runConfig records the configuration in the run's history as its first step and
// returns the recorded copy: on replay, and on a worker started with other settings,
// the run reads what it started with. Workflow code reads configuration only here.
func (w *Workflows) runConfig(ctx workflow.Context) runSettings {
	if workflow.GetVersion(ctx, runConfigChange, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return runSettings{Config: w.cfg, legacy: true}
	}
	var cfg Config
	if err := workflow.SideEffect(ctx, func(workflow.Context) any { return w.cfg }).Get(&cfg); err != nil {
		// Only a history written by other code fails to decode; that replay is already lost.
		panic(fmt.Sprintf("decode recorded configuration: %v", err))
	}
	return runSettings{Config: cfg}
}

// Markers of the release before runConfig: each recorded one boolean setting.
const (
	legacyInlineVersion     = "inline-single-delivery"
	legacyLocalFirstVersion = "local-first-attempt"
)

// legacySetting replays how that release read a boolean setting: a version marker,
// then a side effect holding the value.
func legacySetting(ctx workflow.Context, changeID string, setting bool) bool {
	if workflow.GetVersion(ctx, changeID, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return false
	}
	var on bool
	if err := workflow.SideEffect(ctx, func(workflow.Context) any { return setting }).Get(&on); err != nil {
		return false // cannot happen for a bool; the old shape is always safe
	}
	return on
}

// DeliveryID is the stable id of delivering event eventID to webhook webhookID: the same
// on every attempt and every re-dispatch, different for every webhook (delivery.ID).
func DeliveryID(eventID, webhookID string) string {
	return delivery.ID(eventID, webhookID)
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

// DispatchIDReusePolicy is how callers must start DispatchWorkflowID: an event whose
// dispatch is running or completed is not dispatched again, but one whose dispatch
// failed, was terminated or timed out may be handed over again and runs anew. Running
// anew sends nothing twice: each delivery has its own id and its log row, which a
// second run finds.
const DispatchIDReusePolicy = enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY

// DispatchWorkflowID is the workflow id a caller should give DispatchEvent, so the
// same event handed over twice runs once.
func DispatchWorkflowID(eventID string) string {
	return "dispatch:" + eventID
}
