package events_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/assetsup/webhooks/events"
)

func TestValid(t *testing.T) {
	tests := []struct {
		name string
		give events.NotificationEvent
		want bool
	}{
		{name: "known", give: events.AssetTransferred, want: true},
		{name: "last known", give: events.BookingCancelled, want: true},
		{name: "lower case", give: "asset_transferred", want: false},
		{name: "empty", give: "", want: false},
		{name: "test event is not subscribable", give: events.Test, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.give.Valid())
		})
	}
}

func TestCatalogueMatchesBackendEnum(t *testing.T) {
	want := []events.NotificationEvent{
		"ASSET_TRANSFERRED", "ASSET_STATUS_CHANGED", "WORK_ORDER_ASSIGNED", "WORK_ORDER_COMPLETED",
		"MAINTENANCE_DUE", "WARRANTY_EXPIRING", "CHECKOUT_OVERDUE", "CONTRACT_EXPIRING", "LOW_STOCK",
		"BOOKING_CONFIRMED", "BOOKING_CANCELLED",
	}
	var got []events.NotificationEvent
	for _, d := range events.Catalogue() {
		assert.NotEmpty(t, d.Description, d.Name)
		got = append(got, d.Name)
	}
	assert.Equal(t, want, got)
	assert.Contains(t, events.Names(), "LOW_STOCK")
}
