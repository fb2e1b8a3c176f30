package workflows_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/workflows"
)

// TestInputJSONContract pins the JSON of the delivery's workflow and activity inputs
// and result to what releases before delivery.Identity wrote (the same keys and values):
// histories hold them, and other languages read and write them.
func TestInputJSONContract(t *testing.T) {
	payload := events.Payload{ID: "evt_1", Event: events.LowStock, Timestamp: "2026-11-28T12:00:00Z", Data: json.RawMessage(`{"sku":"A-1"}`)}
	const body = `{"id":"evt_1","event":"LOW_STOCK","timestamp":"2026-11-28T12:00:00Z","data":{"sku":"A-1"}}`
	redelivery := delivery.Identity{DeliveryID: "d-1", WebhookID: "w-1", Kind: delivery.KindRedelivery, RedeliveryOf: "d-0"}
	tests := []struct {
		name string
		give any
		want string
	}{
		{
			name: "DeliverWebhookInput, redelivery",
			give: workflows.DeliverWebhookInput{Identity: redelivery, UserID: "u-1", Payload: payload, MaxAttempts: 1},
			want: `{"deliveryId":"d-1","webhookId":"w-1","userId":"u-1","kind":"redelivery","redeliveryOf":"d-0","payload":` + body + `,"maxAttempts":1}`,
		},
		{
			name: "DeliverWebhookInput, event",
			give: workflows.DeliverWebhookInput{
				Identity: delivery.Identity{DeliveryID: "d-1", WebhookID: "w-1", Kind: delivery.KindEvent}, UserID: "u-1", Payload: payload,
			},
			want: `{"deliveryId":"d-1","webhookId":"w-1","userId":"u-1","kind":"event","payload":` + body + `}`,
		},
		{
			name: "SendInput, redelivery",
			give: activities.SendInput{
				Identity: redelivery, Payload: payload, MaxAttempts: 5,
				Backoff: activities.Backoff{Initial: time.Second, Coefficient: 2, Max: time.Minute},
			},
			want: `{"deliveryId":"d-1","webhookId":"w-1","kind":"redelivery","redeliveryOf":"d-0","payload":` + body +
				`,"maxAttempts":5,"backoff":{"initial":1000000000,"coefficient":2,"max":60000000000}}`,
		},
		{
			name: "SendInput, event",
			give: activities.SendInput{Identity: delivery.Identity{DeliveryID: "d-1", WebhookID: "w-1", Kind: delivery.KindEvent}, Payload: payload},
			want: `{"deliveryId":"d-1","webhookId":"w-1","kind":"event","payload":` + body +
				`,"maxAttempts":0,"backoff":{"initial":0,"coefficient":0,"max":0}}`,
		},
		{
			name: "CompleteInput, redelivery",
			give: activities.CompleteInput{
				Identity: redelivery, EventID: "evt_1", Event: events.LowStock, Skipped: true,
				Attempts: 3, StatusCode: 410, Error: "receiver answered HTTP 410", Gone: true,
			},
			want: `{"deliveryId":"d-1","webhookId":"w-1","kind":"redelivery","redeliveryOf":"d-0","eventId":"evt_1","event":"LOW_STOCK",` +
				`"succeeded":false,"skipped":true,"attempts":3,"statusCode":410,"error":"receiver answered HTTP 410","gone":true}`,
		},
		{
			name: "CompleteInput, test",
			give: activities.CompleteInput{
				Identity: delivery.Identity{DeliveryID: "d-1", WebhookID: "w-1", Kind: delivery.KindTest},
				Event:    events.Test, Succeeded: true, Attempts: 1,
			},
			want: `{"deliveryId":"d-1","webhookId":"w-1","kind":"test","eventId":"","event":"webhook.test","succeeded":true,"attempts":1}`,
		},
		{
			name: "DeliverWebhookResult",
			give: workflows.DeliverWebhookResult{DeliveryID: "d-1", Outcome: delivery.OutcomeFailed, Attempts: 3, StatusCode: 500, Error: "x", DurationMS: 12},
			want: `{"deliveryId":"d-1","outcome":"failed","attempts":3,"statusCode":500,"error":"x","durationMs":12}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.give)
			require.NoError(t, err)
			assert.JSONEq(t, tt.want, string(got), "the same keys and values: key order means nothing to decoders")

			// And the bytes decode to the same value: the embedded identity reads the
			// flat fields back.
			back := reflect.New(reflect.TypeOf(tt.give))
			require.NoError(t, json.Unmarshal([]byte(tt.want), back.Interface()))
			assert.Equal(t, tt.give, back.Elem().Interface())
		})
	}
}
