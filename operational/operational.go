// Package operational names the events the service tells the AssetsUp backend about its
// users' webhooks (disabled, failing, a recovery finished, a rotated secret's grace
// over), renders their signed body, and keeps them in the operational_events table: an
// outbox written in the same transaction as what caused each event, so an event is
// recorded once however often its cause is retried, and sent once by the
// SendOperationalEvent workflow of its id.
package operational

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
)

// Type is an operational event's name: the X-AssetsUp-Event header and the body's type.
type Type string

// The operational events.
const (
	// WebhookDisabled: a webhook was switched off by the service, after
	// WEBHOOK_DISABLE_AFTER_FAILURES consecutive failed deliveries or a 410 Gone.
	WebhookDisabled Type = "webhook.disabled"
	// WebhookFailing: a webhook's failure streak reached WEBHOOK_ALERT_AFTER_FAILURES.
	WebhookFailing Type = "webhook.failing"
	// RecoveryCompleted: a recovery (POST /webhooks/:id/recover, or re-enabling with
	// recoverMissed) went through its window.
	RecoveryCompleted Type = "webhook.recovery_completed"
	// SecretRotationEnded: the secret a rotation replaced stopped signing.
	SecretRotationEnded Type = "webhook.secret_rotation_ended"
)

// Descriptor is one catalogue entry.
type Descriptor struct {
	Name        Type   `json:"name"`
	Description string `json:"description"`
}

var catalogue = []Descriptor{
	{WebhookDisabled, "A webhook was switched off: too many consecutive failed deliveries, or its receiver answered 410 Gone."},
	{WebhookFailing, "A webhook's consecutive failed deliveries reached the alert threshold."},
	{RecoveryCompleted, "A recovery of a webhook's failed or missed deliveries finished."},
	{SecretRotationEnded, "The signing secret a rotation replaced stopped signing: receivers must hold the new one."},
}

// Catalogue lists the operational events, for GET /events/operational and the docs.
func Catalogue() []Descriptor {
	return slices.Clone(catalogue)
}

// Data is what every operational event carries, plus what its type adds.
type Data struct {
	UserID      string `json:"userId"`
	WebhookID   string `json:"webhookId"`
	WebhookName string `json:"webhookName"`
	Reason      string `json:"reason"`
	// FailureCount is the webhook's consecutive failed deliveries (disabled, failing).
	FailureCount int `json:"failureCount,omitempty"`
	// LastError is the failed delivery's error (failing).
	LastError string `json:"lastError,omitempty"`
	// Recovery summarises a recovery (recovery_completed).
	Recovery *RecoverySummary `json:"recovery,omitempty"`
	// PreviousSecretExpiredAt is when the replaced secret stopped signing (secret_rotation_ended).
	PreviousSecretExpiredAt *time.Time `json:"previousSecretExpiredAt,omitempty"`
}

// RecoverySummary is a finished recovery's outcome.
type RecoverySummary struct {
	RecoveryID  string `json:"recoveryId"`
	State       string `json:"state"`
	Matched     int    `json:"matched"`
	Redelivered int    `json:"redelivered"`
	Succeeded   int    `json:"succeeded"`
	Failed      int    `json:"failed"`
}

// idNamespace seeds event ids, so one cause always names the same event.
var idNamespace = uuid.MustParse("2b4f7c1e-93a8-4d0b-b6f5-6a1d2c9e8f40")

// EventID is the id of the event of type t that cause (a delivery, a recovery, a
// rotation) gives rise to: the same cause recorded twice is one event.
func EventID(cause string, t Type) string {
	return uuid.NewSHA1(idNamespace, []byte(cause+"\x00"+string(t))).String()
}

// DeliveryCause names a delivery as the cause of an event.
func DeliveryCause(deliveryID string) string { return "delivery:" + deliveryID }

// RecoveryCause names a recovery as the cause of an event.
func RecoveryCause(recoveryID string) string { return "recovery:" + recoveryID }

// RotationCause names the end of a rotation's grace period as the cause of an event.
func RotationCause(webhookID string, expiresAt time.Time) string {
	return "rotation:" + webhookID + ":" + expiresAt.UTC().Format(time.RFC3339Nano)
}

// WorkflowID is the id of the SendOperationalEvent workflow that sends event eventID:
// Temporal refuses a second one, so an event is sent once.
func WorkflowID(eventID string) string { return "operational:" + eventID }

// body is the JSON an operational event is sent as. Field order is the wire order.
type body struct {
	ID        string          `json:"id"`
	Type      Type            `json:"type"`
	Timestamp string          `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// Body renders the bytes sent for an event: the same row always renders the same bytes,
// so every attempt carries an identical, identically signed body.
func Body(id string, t Type, createdAt time.Time, data json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(body{ID: id, Type: t, Timestamp: createdAt.UTC().Format(time.RFC3339Nano), Data: data})
	if err != nil {
		return nil, fmt.Errorf("render operational event: %w", err)
	}
	return b, nil
}
