package payloadcodec_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/temporalclient"
	"github.com/assetsup/webhooks/workflows"
)

// A delivery recorded on the dev server (make replay-corpus): an event with one
// subscriber, delivered by its dispatch on the first attempt, the common case.
const recordedDelivery = "../workflows/testdata/histories/inline-success.dispatch.json"

// benchEvent is a notification as the backend hands it over: title, message, entity
// and a little metadata, about 600 bytes of JSON.
func benchEvent() workflows.DispatchEventInput {
	data, _ := json.Marshal(map[string]any{
		"title":      "Asset transferred: Dell Latitude 7440 (AST-00042)",
		"message":    "Ada Obi transferred Dell Latitude 7440 from Lagos HQ, floor 3 to the Abuja branch office; received by Musa Bello.",
		"entityType": "asset",
		"entityId":   "2d1f6a2e-6f43-4c1e-9a0e-3f5c2b8d7e11",
		"metadata": map[string]any{
			"fromLocation": "Lagos HQ, floor 3", "toLocation": "Abuja branch", "assetTag": "AST-00042",
			"serial": "5CG3481XYZ", "value": 1450.00, "currency": "USD", "approvedBy": "Chioma Eze",
		},
	})
	return workflows.DispatchEventInput{
		ID: "evt_6f1c0c0f3d7a4a58b1e8f4c2a9d3b7e6", Event: events.AssetTransferred, UserID: "user-8d2b1c7e",
		Data: data, OccurredAt: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC),
	}
}

// BenchmarkEventPayload is the cost of one DispatchEvent input through the client's data
// converter, to history and back, without and with encryption.
func BenchmarkEventPayload(b *testing.B) {
	in := benchEvent()
	for _, bc := range []struct {
		name string
		dc   converter.DataConverter
	}{
		{"plaintext", converter.GetDefaultDataConverter()},
		{"encrypted", temporalclient.DataConverter(newCodec(b, newKey(b, "bench")))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, err := bc.dc.ToPayloads(in)
			require.NoError(b, err)
			b.SetBytes(int64(len(p.GetPayloads()[0].GetData())))
			b.ReportAllocs()
			for b.Loop() {
				p, err := bc.dc.ToPayloads(in)
				if err != nil {
					b.Fatal(err)
				}
				var out workflows.DispatchEventInput
				if err := bc.dc.FromPayloads(p, &out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDelivery is what encryption adds to one delivery: every payload of a recorded
// delivery's history (input, markers, local activity inputs and results, memo, result)
// sealed once when written and opened once when read back, as the worker does. Search
// attributes are left out, as the codec leaves them.
func BenchmarkDelivery(b *testing.B) {
	f, err := os.ReadFile(recordedDelivery)
	require.NoError(b, err)
	h, err := client.HistoryFromJSON(bytes.NewReader(f), client.HistoryJSONOptions{})
	require.NoError(b, err)
	var payloads []*commonpb.Payload
	var size int64
	err = proxy.VisitPayloads(context.Background(), h, proxy.VisitPayloadsOptions{
		SkipSearchAttributes: true,
		Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
			for _, p := range ps {
				payloads = append(payloads, p)
				size += int64(len(p.GetData()))
			}
			return ps, nil
		},
	})
	require.NoError(b, err)
	require.NotEmpty(b, payloads)

	c := newCodec(b, newKey(b, "bench"))
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range payloads {
			enc, err := c.Encode([]*commonpb.Payload{p})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Decode(enc); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(payloads)), "payloads/delivery")
}
