package events

import (
	"encoding/json"
	"fmt"
)

// Payload is the JSON body every receiver gets. Field order is the wire order.
type Payload struct {
	// ID is the event's idempotency key; empty for test deliveries.
	ID        string            `json:"id,omitempty"`
	Event     NotificationEvent `json:"event"`
	Timestamp string            `json:"timestamp"` // RFC 3339, UTC, when the event happened
	Data      json.RawMessage   `json:"data,omitempty"`
}

// Marshal renders the body bytes that are signed and sent. The same Payload always
// renders the same bytes, so every attempt of a delivery carries an identical body.
func (p Payload) Marshal() ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("marshal payload: %w", err)
	}
	return b, nil
}
