/**
 * The AssetsUp NotificationEvent values a webhook can subscribe to: the same 11
 * strings as the backend's NotificationEvent enum and the Go catalogue (events/events.go).
 * Use it as a value (`NotificationEvent.ASSET_TRANSFERRED`) or as a type.
 */
export const NotificationEvent = {
  ASSET_TRANSFERRED: 'ASSET_TRANSFERRED',
  ASSET_STATUS_CHANGED: 'ASSET_STATUS_CHANGED',
  WORK_ORDER_ASSIGNED: 'WORK_ORDER_ASSIGNED',
  WORK_ORDER_COMPLETED: 'WORK_ORDER_COMPLETED',
  MAINTENANCE_DUE: 'MAINTENANCE_DUE',
  WARRANTY_EXPIRING: 'WARRANTY_EXPIRING',
  CHECKOUT_OVERDUE: 'CHECKOUT_OVERDUE',
  CONTRACT_EXPIRING: 'CONTRACT_EXPIRING',
  LOW_STOCK: 'LOW_STOCK',
  BOOKING_CONFIRMED: 'BOOKING_CONFIRMED',
  BOOKING_CANCELLED: 'BOOKING_CANCELLED',
} as const;

export type NotificationEvent = (typeof NotificationEvent)[keyof typeof NotificationEvent];

/** Every NotificationEvent, in the catalogue's order. */
export const NOTIFICATION_EVENTS: readonly NotificationEvent[] = Object.freeze(Object.values(NotificationEvent));

/** Reports whether value is one of the 11 NotificationEvent strings (case-sensitive). */
export function isNotificationEvent(value: unknown): value is NotificationEvent {
  return typeof value === 'string' && (NOTIFICATION_EVENTS as readonly string[]).includes(value);
}
