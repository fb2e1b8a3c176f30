// Package events defines the AssetsUp NotificationEvent catalogue: the one place
// that says which event names exist, so the API, the workflows and the docs agree.
package events

import (
	"slices"
	"strings"
)

// NotificationEvent is an AssetsUp platform event name. The string values match
// the NestJS backend's NotificationEvent enum, because that backend sends them to us.
type NotificationEvent string

// The AssetsUp notification events.
const (
	AssetTransferred   NotificationEvent = "ASSET_TRANSFERRED"
	AssetStatusChanged NotificationEvent = "ASSET_STATUS_CHANGED"
	WorkOrderAssigned  NotificationEvent = "WORK_ORDER_ASSIGNED"
	WorkOrderCompleted NotificationEvent = "WORK_ORDER_COMPLETED"
	MaintenanceDue     NotificationEvent = "MAINTENANCE_DUE"
	WarrantyExpiring   NotificationEvent = "WARRANTY_EXPIRING"
	CheckoutOverdue    NotificationEvent = "CHECKOUT_OVERDUE"
	ContractExpiring   NotificationEvent = "CONTRACT_EXPIRING"
	LowStock           NotificationEvent = "LOW_STOCK"
	BookingConfirmed   NotificationEvent = "BOOKING_CONFIRMED"
	BookingCancelled   NotificationEvent = "BOOKING_CANCELLED"
	// Test is sent only by the test endpoint; it is not subscribable.
	Test NotificationEvent = "webhook.test"
)

// Descriptor is one catalogue entry as the portal shows it.
type Descriptor struct {
	Name        NotificationEvent `json:"name"`
	Description string            `json:"description"`
}

// catalogue is the valid, subscribable set, in the order the portal lists it.
var catalogue = []Descriptor{
	{AssetTransferred, "An asset moved to another department, location or person."},
	{AssetStatusChanged, "An asset's status changed (for example active, in repair, retired)."},
	{WorkOrderAssigned, "A work order was assigned to a technician."},
	{WorkOrderCompleted, "A work order was marked as completed."},
	{MaintenanceDue, "Scheduled maintenance for an asset is due."},
	{WarrantyExpiring, "An asset's warranty is about to expire."},
	{CheckoutOverdue, "A checked-out asset was not returned on time."},
	{ContractExpiring, "A vendor or service contract is about to expire."},
	{LowStock, "A consumable's stock fell below its threshold."},
	{BookingConfirmed, "An asset booking was confirmed."},
	{BookingCancelled, "An asset booking was cancelled."},
}

// Catalogue returns every subscribable event with its description.
func Catalogue() []Descriptor {
	return slices.Clone(catalogue)
}

// Valid reports whether e is a subscribable NotificationEvent.
func (e NotificationEvent) Valid() bool {
	return slices.ContainsFunc(catalogue, func(d Descriptor) bool { return d.Name == e })
}

// Names lists the valid event names, comma-separated, for error messages.
func Names() string {
	names := make([]string, len(catalogue))
	for i, d := range catalogue {
		names[i] = string(d.Name)
	}
	return strings.Join(names, ", ")
}
