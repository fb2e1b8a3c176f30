import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { Client, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';

import {
  dispatchEvent,
  InvalidEventError,
  NOTIFICATION_EVENTS,
  NotificationEvent,
  toDispatchEventArgs,
} from '../index';

interface StartCall {
  workflowType: unknown;
  options: Record<string, unknown>;
}

// A Client whose workflow.start records its call and then does what fail says.
function fakeClient(fail?: Error): { client: Client; calls: StartCall[] } {
  const calls: StartCall[] = [];
  const client = {
    workflow: {
      start: async (workflowType: unknown, options: Record<string, unknown>) => {
        calls.push({ workflowType, options });
        if (fail) {
          throw fail;
        }
        return { workflowId: options.workflowId };
      },
    },
  } as unknown as Client;
  return { client, calls };
}

describe('NotificationEvent', () => {
  test('the 11 backend values, in catalogue order', () => {
    assert.deepEqual(NOTIFICATION_EVENTS, [
      'ASSET_TRANSFERRED', 'ASSET_STATUS_CHANGED', 'WORK_ORDER_ASSIGNED', 'WORK_ORDER_COMPLETED',
      'MAINTENANCE_DUE', 'WARRANTY_EXPIRING', 'CHECKOUT_OVERDUE', 'CONTRACT_EXPIRING', 'LOW_STOCK',
      'BOOKING_CONFIRMED', 'BOOKING_CANCELLED',
    ]);
    assert.equal(NotificationEvent.LOW_STOCK, 'LOW_STOCK');
  });
});

describe('dispatchEvent', () => {
  test('starts DispatchEvent with the contract options and one argument', async () => {
    const { client, calls } = fakeClient();
    const id = await dispatchEvent(client, {
      id: 'notif-1', event: 'ASSET_TRANSFERRED', userId: 'user-1',
      data: { assetId: 'a-1' }, occurredAt: new Date('2026-11-28T12:00:00.250Z'),
    });
    assert.equal(id, 'notif-1');
    assert.equal(calls.length, 1);
    assert.equal(calls[0].workflowType, 'DispatchEvent');
    assert.deepEqual(calls[0].options, {
      taskQueue: 'webhooks',
      workflowId: 'dispatch:notif-1',
      workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
      args: [{
        id: 'notif-1', event: 'ASSET_TRANSFERRED', userId: 'user-1',
        data: { assetId: 'a-1' }, occurredAt: '2026-11-28T12:00:00.250Z',
      }],
    });
  });

  test('generates evt_<32 hex> ids, defaults data and occurredAt, honours taskQueue', async () => {
    const { client, calls } = fakeClient();
    const before = Date.now();
    const id = await dispatchEvent(client, { event: NotificationEvent.LOW_STOCK, userId: 'u' }, { taskQueue: 'q-1' });
    assert.match(id, /^evt_[0-9a-f]{32}$/);
    const opts = calls[0].options;
    assert.equal(opts.taskQueue, 'q-1');
    assert.equal(opts.workflowId, `dispatch:${id}`);
    const [arg] = opts.args as Array<Record<string, unknown>>;
    assert.equal(arg.id, id);
    assert.deepEqual(arg.data, {});
    const at = Date.parse(arg.occurredAt as string);
    assert.ok(at >= before - 1000 && at <= Date.now() + 1000, String(arg.occurredAt));
    assert.notEqual(await dispatchEvent(client, { event: 'LOW_STOCK', userId: 'u' }), id);
  });

  test('normalises an occurredAt string to ISO 8601 UTC', () => {
    const args = toDispatchEventArgs({ id: 'e', event: 'LOW_STOCK', userId: 'u', occurredAt: '2026-11-28T14:00:00+02:00' });
    assert.equal(args.occurredAt, '2026-11-28T12:00:00.000Z');
  });

  test('an id already dispatched is a success', async () => {
    const { client, calls } = fakeClient(new WorkflowExecutionAlreadyStartedError('already started', 'dispatch:e-1', 'DispatchEvent'));
    assert.equal(await dispatchEvent(client, { id: 'e-1', event: 'LOW_STOCK', userId: 'u' }), 'e-1');
    assert.equal(calls.length, 1);
  });

  test('other start errors reach the caller', async () => {
    const { client } = fakeClient(new Error('connection refused'));
    await assert.rejects(dispatchEvent(client, { id: 'e-1', event: 'LOW_STOCK', userId: 'u' }), /connection refused/);
  });

  test('input the workflow would refuse is rejected before Temporal is called', async () => {
    const { client, calls } = fakeClient();
    const bad: Array<[string, Record<string, unknown>]> = [
      ['id', { id: '', event: 'LOW_STOCK', userId: 'u' }],
      ['id', { id: 'has space', event: 'LOW_STOCK', userId: 'u' }],
      ['id', { id: 'x'.repeat(201), event: 'LOW_STOCK', userId: 'u' }],
      ['event', { event: 'low_stock', userId: 'u' }],
      ['event', { event: 'webhook.test', userId: 'u' }],
      ['userId', { event: 'LOW_STOCK', userId: '' }],
      ['data', { event: 'LOW_STOCK', userId: 'u', data: [1, 2] }],
      ['data', { event: 'LOW_STOCK', userId: 'u', data: 'text' }],
      ['occurredAt', { event: 'LOW_STOCK', userId: 'u', occurredAt: 'yesterday-ish' }],
    ];
    for (const [field, input] of bad) {
      await assert.rejects(
        dispatchEvent(client, input as never),
        (err: unknown) => err instanceof InvalidEventError && err.message.startsWith(`invalid event: ${field} `),
        JSON.stringify(input),
      );
    }
    assert.equal(calls.length, 0);
    const ok = toDispatchEventArgs({ id: 'A-z_0.9:x', event: 'LOW_STOCK', userId: 'u' });
    assert.equal(ok.id, 'A-z_0.9:x');
  });
});
