// The cross-language contract, end to end: this package starts DispatchEvent on a real
// Temporal server, the Go worker delivers it to a Node receiver, and the receiver
// verifies both signatures with this package. e2e/typescript_test.go runs it against a
// real stack with ASSETSUP_CONTRACT_REQUIRED=1; without the environment it is skipped.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';

import { Client, Connection } from '@temporalio/client';
import { Webhook } from 'standardwebhooks';

import {
  dispatchEvent,
  dispatchWorkflowId,
  DispatchEventResult,
  verifyAssetsUpSignature,
  verifyStandardWebhook,
} from '../index';

const ENV_NAMES = ['ASSETSUP_API_URL', 'ASSETSUP_TOKEN', 'TEMPORAL_ADDRESS', 'TEMPORAL_TASK_QUEUE', 'ASSETSUP_USER_ID'] as const;
type Env = Record<(typeof ENV_NAMES)[number], string>;

interface Received {
  body: Buffer;
  headers: http.IncomingHttpHeaders;
}

// A webhook endpoint on loopback that keeps the raw bytes and headers of every POST.
async function startReceiver(): Promise<{ url: string; received: Received[]; server: http.Server }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST') {
        received.push({ body: Buffer.concat(chunks), headers: req.headers });
      }
      res.writeHead(204).end();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hooks/assetsup`, received, server };
}

async function waitFor(cond: () => boolean, withinMs: number, what: string): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!cond()) {
    if (Date.now() > deadline) {
      assert.fail(`timed out after ${withinMs} ms waiting for ${what}`);
    }
    await sleep(100);
  }
}

test('contract: TypeScript dispatch → Go worker → verified delivery, once', async (t) => {
  const missing = ENV_NAMES.filter((n) => !process.env[n]);
  if (missing.length > 0) {
    if (process.env.ASSETSUP_CONTRACT_REQUIRED === '1') {
      assert.fail(`ASSETSUP_CONTRACT_REQUIRED=1 but ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not set`);
    }
    t.skip(`set ${ENV_NAMES.join(', ')} to run the contract test against a running stack`);
    return;
  }
  const env = Object.fromEntries(ENV_NAMES.map((n) => [n, process.env[n] as string])) as Env;

  const receiver = await startReceiver();
  t.after(() => {
    receiver.server.closeAllConnections();
    receiver.server.close();
  });

  // Register a webhook through the REST API, as the portal does.
  const res = await fetch(`${env.ASSETSUP_API_URL.replace(/\/$/, '')}/webhooks`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${env.ASSETSUP_TOKEN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'TypeScript contract', url: receiver.url, events: ['ASSET_TRANSFERRED'] }),
  });
  const createdText = await res.text();
  assert.equal(res.status, 201, `POST /webhooks: ${createdText}`);
  const created = JSON.parse(createdText) as { id: string; secret: string; userId: string };
  assert.match(created.secret, /^whsec_/);
  assert.equal(created.userId, env.ASSETSUP_USER_ID);

  const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS });
  t.after(() => connection.close());
  const client = new Client({ connection });

  // Dispatch as the backend does: no id given, so one is generated.
  const data = { assetId: 'a-42', from: 'd1', to: 'd2' };
  const occurredAt = new Date('2026-11-28T12:00:00.250Z');
  const id = await dispatchEvent(
    client,
    { event: 'ASSET_TRANSFERRED', userId: env.ASSETSUP_USER_ID, data, occurredAt },
    { taskQueue: env.TEMPORAL_TASK_QUEUE },
  );
  assert.match(id, /^evt_[0-9a-f]{32}$/);

  await waitFor(() => receiver.received.length >= 1, 30_000, 'the delivery');
  const [got] = receiver.received;
  const h = got.headers;

  assert.equal(verifyAssetsUpSignature(created.secret, got.body, h['x-assetsup-signature']), true, 'X-AssetsUp-Signature');
  assert.equal(
    verifyStandardWebhook(created.secret, got.body, {
      id: h['webhook-id'], timestamp: h['webhook-timestamp'], signature: h['webhook-signature'],
    }),
    true,
    'webhook-signature',
  );
  assert.equal(verifyAssetsUpSignature(created.secret + 'x', got.body, h['x-assetsup-signature']), false);
  // The official Standard Webhooks library accepts the delivery unchanged.
  assert.deepEqual(
    new Webhook(created.secret).verify(got.body, {
      'webhook-id': String(h['webhook-id']),
      'webhook-timestamp': String(h['webhook-timestamp']),
      'webhook-signature': String(h['webhook-signature']),
    }),
    JSON.parse(got.body.toString('utf8')),
  );

  // The body: exactly these fields, the timestamp in RFC 3339 UTC whole seconds.
  assert.deepEqual(JSON.parse(got.body.toString('utf8')), {
    id, event: 'ASSET_TRANSFERRED', timestamp: '2026-11-28T12:00:00Z', data,
  });
  assert.ok(got.body.toString('utf8').startsWith('{"id":'), 'field order: id, event, timestamp, data');

  assert.equal(h['content-type'], 'application/json');
  assert.equal(h['x-assetsup-event'], 'ASSET_TRANSFERRED');
  assert.match(String(h['x-assetsup-delivery']), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  assert.match(String(h['x-assetsup-timestamp']), /^\d+$/);
  assert.equal(h['webhook-timestamp'], h['x-assetsup-timestamp']);
  assert.equal(h['webhook-id'], id);
  assert.match(String(h['user-agent']), /^AssetsUp-Webhooks\//);

  // DispatchEvent's result, as a TypeScript caller awaiting the handle sees it.
  const result = (await client.workflow.getHandle(dispatchWorkflowId(id)).result()) as DispatchEventResult;
  // One subscriber: the dispatch delivered it itself and reports the outcome.
  assert.equal(result.started, 1);
  assert.equal(result.duplicates, 0);
  assert.equal(result.delivery?.deliveryId, h['x-assetsup-delivery']);
  assert.equal(result.delivery?.outcome, 'succeeded');
  assert.equal(result.delivery?.attempts, 1);
  assert.equal(result.forwardedTo, undefined);

  // The same id again (a retried request, a second caller) is accepted and sends nothing.
  assert.equal(
    await dispatchEvent(client, { id, event: 'ASSET_TRANSFERRED', userId: env.ASSETSUP_USER_ID, data }, { taskQueue: env.TEMPORAL_TASK_QUEUE }),
    id,
  );
  await sleep(3_000);
  assert.equal(receiver.received.length, 1, 'the event was delivered exactly once');
});
