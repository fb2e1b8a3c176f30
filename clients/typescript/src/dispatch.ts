import { randomUUID } from 'node:crypto';

import { Client, WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy } from '@temporalio/client';

import { isNotificationEvent, NOTIFICATION_EVENTS, NotificationEvent } from './events';

/** The workflow type the Go worker registers (workflows.DispatchEventName). */
export const DISPATCH_EVENT_WORKFLOW = 'DispatchEvent';

/** The worker's default task queue (TEMPORAL_TASK_QUEUE). */
export const DEFAULT_TASK_QUEUE = 'webhooks';

/** The recommended workflow id of an event's dispatch (workflows.DispatchWorkflowID). */
export function dispatchWorkflowId(eventId: string): string {
  return `dispatch:${eventId}`;
}

/** A new event id, shaped like the Go side's: "evt_" and 32 lowercase hex digits. */
export function newEventId(): string {
  return `evt_${randomUUID().replace(/-/g, '')}`;
}

/** What the caller hands over: one AssetsUp event for one user's webhooks. */
export interface DispatchEventInput {
  /** Idempotency key: the same id is dispatched, and delivered per webhook, once. Generated when absent. */
  id?: string;
  event: NotificationEvent;
  /** The user whose active webhooks subscribed to event receive it. */
  userId: string;
  /** The event's content, delivered as the body's data (a JSON object). Default {}. */
  data?: Record<string, unknown>;
  /** When the event happened. Default: now. Receivers get it as RFC 3339 UTC, whole seconds. */
  occurredAt?: Date | string;
}

/** The single argument DispatchEvent takes (workflows.DispatchEventInput's JSON). */
export interface DispatchEventArgs {
  id: string;
  event: NotificationEvent;
  userId: string;
  data: Record<string, unknown>;
  occurredAt: string;
}

/** One delivery's outcome (workflows.DeliverWebhookResult's JSON). */
export interface DeliveryResult {
  deliveryId: string;
  outcome: 'succeeded' | 'failed' | 'skipped';
  attempts: number;
  statusCode?: number;
  /** Why it failed or was skipped; an event the webhook's filter turned down reads "filtered: <reason>". */
  error?: string;
  durationMs: number;
}

/**
 * DispatchEvent's result: deliveries started, and those refused as already started.
 * `delivery` is set when the event had one subscriber and the dispatch delivered it
 * itself; `forwardedTo` when a dispatch started under another workflow id handed the
 * event to its canonical dispatch.
 */
export interface DispatchEventResult {
  started: number;
  duplicates: number;
  delivery?: DeliveryResult;
  forwardedTo?: string;
}

export interface DispatchOptions {
  /** Task queue the worker polls; default "webhooks". */
  taskQueue?: string;
}

/**
 * Thrown before anything is sent to Temporal when the input would fail the workflow's own
 * validation (which fails the run with the non-retryable ApplicationFailure type InvalidEvent).
 */
export class InvalidEventError extends Error {
  constructor(message: string) {
    super(`invalid event: ${message}`);
    this.name = 'InvalidEventError';
  }
}

// The same rule as workflows.DispatchEventInput.Validate.
const EVENT_ID = /^[A-Za-z0-9._:-]{1,200}$/;

/** Checks input as DispatchEvent will and returns the workflow argument. */
export function toDispatchEventArgs(input: DispatchEventInput, now: Date = new Date()): DispatchEventArgs {
  const id = input.id ?? newEventId();
  if (typeof id !== 'string' || !EVENT_ID.test(id)) {
    throw new InvalidEventError("id must be 1 to 200 letters, digits, '.', '_', ':' or '-'");
  }
  if (!isNotificationEvent(input.event)) {
    throw new InvalidEventError(
      `event ${JSON.stringify(input.event)} is not a NotificationEvent; valid events: ${NOTIFICATION_EVENTS.join(', ')}`,
    );
  }
  if (typeof input.userId !== 'string' || input.userId === '') {
    throw new InvalidEventError("userId is required: events are delivered to one user's webhooks");
  }
  const data = input.data ?? {};
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new InvalidEventError('data must be a JSON object');
  }
  return { id, event: input.event, userId: input.userId, data, occurredAt: isoTime(input.occurredAt ?? now) };
}

// The Go worker decodes occurredAt as RFC 3339: anything else would fail every workflow
// task instead of the run, so it is normalised (and checked) here.
function isoTime(t: Date | string): string {
  const d = t instanceof Date ? t : new Date(t);
  if (Number.isNaN(d.getTime())) {
    throw new InvalidEventError(`occurredAt ${JSON.stringify(String(t))} is not a date`);
  }
  return d.toISOString();
}

/**
 * Hands an event to webhook delivery: starts the DispatchEvent workflow with workflow id
 * "dispatch:<id>" and the reuse policy ALLOW_DUPLICATE_FAILED_ONLY, and returns the event id.
 *
 * It resolves once Temporal holds the event durably; delivery happens in the background.
 * Dispatching an id whose dispatch is running or completed is a success: both end in
 * delivery, since a dispatch retries the service's own failures for as long as they last.
 * An id whose dispatch failed, was terminated or timed out is dispatched anew, and the new
 * run sends nothing the old one delivered.
 * Rejects with InvalidEventError for bad input, and with the client's error when Temporal
 * cannot be reached: retry with the same id.
 */
export async function dispatchEvent(
  client: Client,
  input: DispatchEventInput,
  opts: DispatchOptions = {},
): Promise<string> {
  const args = toDispatchEventArgs(input);
  try {
    await client.workflow.start(DISPATCH_EVENT_WORKFLOW, {
      taskQueue: opts.taskQueue ?? DEFAULT_TASK_QUEUE,
      workflowId: dispatchWorkflowId(args.id),
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
      args: [args],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) {
      throw err;
    }
    // Running or completed: idempotent success.
  }
  return args.id;
}
