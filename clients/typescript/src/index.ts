export { NotificationEvent, NOTIFICATION_EVENTS, isNotificationEvent } from './events';
export {
  DEFAULT_TASK_QUEUE,
  DISPATCH_EVENT_WORKFLOW,
  InvalidEventError,
  dispatchEvent,
  dispatchWorkflowId,
  newEventId,
  toDispatchEventArgs,
} from './dispatch';
export type { DeliveryResult, DispatchEventArgs, DispatchEventInput, DispatchEventResult, DispatchOptions } from './dispatch';
export { verifyAssetsUpSignature, verifyStandardWebhook } from './verify';
export type { HeaderValue, StandardWebhookHeaders } from './verify';
export { ENCODING_ENCRYPTED, EncryptionCodec, METADATA_KEY_ID, PayloadDecryptError, parsePayloadKey, parsePayloadKeys } from './codec';
export type { PayloadKey } from './codec';
