// Package delivery names what every layer says about one delivery: its kind, its
// outcome and its identity. The API, the workflows, the activities and the delivery log
// all use these, so a kind or an outcome has one spelling from the request to the
// database. It imports nothing of ours, so any package may use it.
package delivery

// Kind is why a delivery was made. The delivery log's kind column holds it, and
// workflow and activity inputs carry it as "kind".
type Kind string

// Delivery kinds: a platform event, a test from the portal, or a redelivery of an
// earlier delivery's body.
const (
	KindEvent      Kind = "event"
	KindTest       Kind = "test"
	KindRedelivery Kind = "redelivery"
)

// Outcome is where a delivery stands: the delivery log's status column and the
// "outcome" of a DeliverWebhook result.
type Outcome string

// Delivery outcomes.
const (
	// OutcomePending is a log row's status before its outcome is known: attempts are
	// still being made. A finished delivery never has it.
	OutcomePending   Outcome = "pending"
	OutcomeSucceeded Outcome = "succeeded"
	OutcomeFailed    Outcome = "failed"
	// OutcomeSkipped closes a delivery that stopped without a final attempt: its webhook
	// was paused, disabled or deleted while it waited to retry.
	OutcomeSkipped Outcome = "skipped"
	// OutcomeFiltered closes a delivery whose event the webhook's filter did not match:
	// nothing was sent and nothing counted.
	OutcomeFiltered Outcome = "filtered"
	// OutcomeMissed closes a delivery whose webhook was subscribed but inactive (paused,
	// disabled after failures, or after a 410) when the event came: nothing was sent and
	// nothing counted, and a recovery can send it later.
	OutcomeMissed Outcome = "missed"
)

// Identity names one delivery wherever it travels: the DeliverWebhook workflow's input,
// the Send and Complete activities' inputs and the delivery log row they write. Inputs
// embed it without a JSON tag, so its fields stay at the top level of their JSON. It
// never holds anything secret: Temporal history, which carries it, is visible to
// operators.
type Identity struct {
	// DeliveryID is the delivery log's primary key, the same on every attempt.
	DeliveryID string `json:"deliveryId"`
	WebhookID  string `json:"webhookId"`
	Kind       Kind   `json:"kind"`
	// RedeliveryOf is the delivery whose body a redelivery sends again; empty otherwise.
	RedeliveryOf string `json:"redeliveryOf,omitempty"`
}
