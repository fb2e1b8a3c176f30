// The encryption contract across languages, on a real Temporal server with the Go worker
// encrypting: an event this package seals is delivered by the Go worker, and what the Go
// side sealed opens here. e2e/typescript_codec_test.go runs it (`node --test
// dist/test/codec-contract.js`) with the environment below; it is not part of `npm test`,
// which has no server.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Client, Connection } from '@temporalio/client';
import type { Payload } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/client';

import { dispatchEvent, dispatchWorkflowId, DispatchEventArgs, DispatchEventResult, ENCODING_ENCRYPTED, EncryptionCodec, METADATA_KEY_ID } from '../index';

const ENV_NAMES = [
  'TEMPORAL_ADDRESS',
  'TEMPORAL_TASK_QUEUE',
  'TEMPORAL_PAYLOAD_KEY',
  'TEMPORAL_PAYLOAD_KEY_ID',
  'ASSETSUP_USER_ID',
  'ASSETSUP_TS_EVENT_ID', // the id to dispatch under
  'ASSETSUP_GO_EVENT_ID', // an event the Go side dispatched, sealed
  'ASSETSUP_PRIVATE', // what the events' data is marked with
] as const;
type Env = Record<(typeof ENV_NAMES)[number], string>;

function environment(): Env {
  const missing = ENV_NAMES.filter((n) => !process.env[n]);
  assert.equal(missing.length, 0, `set ${missing.join(', ')}: this contract runs against a stack (e2e/typescript_codec_test.go)`);
  return Object.fromEntries(ENV_NAMES.map((n) => [n, process.env[n] as string])) as Env;
}

function text(b: Uint8Array | null | undefined): string {
  return Buffer.from(b ?? new Uint8Array()).toString('utf8');
}

async function clients(env: Env): Promise<{ connection: Connection; sealing: Client; plain: Client; codec: EncryptionCodec }> {
  const codec = EncryptionCodec.fromEnv();
  assert.ok(codec, 'TEMPORAL_PAYLOAD_KEY set: encryption on');
  const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS });
  return {
    connection,
    codec,
    sealing: new Client({ connection, dataConverter: { payloadCodecs: [codec] } }),
    plain: new Client({ connection }),
  };
}

// The start event's input, as stored: sealed, under the configured key.
async function storedInput(client: Client, workflowId: string, keyId: string): Promise<Payload> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  assert.ok(input, `${workflowId} has an input`);
  assert.equal(text(input.metadata?.encoding), ENCODING_ENCRYPTED, 'the input is sealed in the history');
  assert.equal(text(input.metadata?.[METADATA_KEY_ID]), keyId);
  return input;
}

test('a TypeScript-sealed event is delivered by the Go worker', async (t) => {
  const env = environment();
  const { connection, sealing, plain } = await clients(env);
  t.after(() => connection.close());

  const data = {
    title: `${env.ASSETSUP_PRIVATE}-ts-title`,
    message: `${env.ASSETSUP_PRIVATE}-ts-message`,
    metadata: { person: `${env.ASSETSUP_PRIVATE}-ts-metadata` },
  };
  const id = await dispatchEvent(
    sealing,
    { id: env.ASSETSUP_TS_EVENT_ID, event: 'ASSET_TRANSFERRED', userId: env.ASSETSUP_USER_ID, data },
    { taskQueue: env.TEMPORAL_TASK_QUEUE },
  );
  assert.equal(id, env.ASSETSUP_TS_EVENT_ID);
  const sealedInput = await storedInput(plain, dispatchWorkflowId(id), env.TEMPORAL_PAYLOAD_KEY_ID);
  assert.ok(!Buffer.from(sealedInput.data ?? []).includes(env.ASSETSUP_PRIVATE));

  // The Go worker opened it, delivered it, and sealed its result, which opens here.
  const result = (await sealing.workflow.getHandle(dispatchWorkflowId(id)).result()) as DispatchEventResult;
  assert.equal(result.delivery?.outcome, 'succeeded');
  // Without the codec the result is unreadable.
  await assert.rejects(plain.workflow.getHandle(dispatchWorkflowId(id)).result());
});

test('a Go-sealed event opens with the TypeScript codec', async (t) => {
  const env = environment();
  const { connection, sealing, plain, codec } = await clients(env);
  t.after(() => connection.close());

  const workflowId = dispatchWorkflowId(env.ASSETSUP_GO_EVENT_ID);
  const [opened] = await codec.decode([await storedInput(plain, workflowId, env.TEMPORAL_PAYLOAD_KEY_ID)]);
  const args = defaultPayloadConverter.fromPayload(opened) as DispatchEventArgs;
  assert.equal(args.id, env.ASSETSUP_GO_EVENT_ID);
  assert.equal(args.userId, env.ASSETSUP_USER_ID);
  assert.equal((args.data as { title?: string }).title, `${env.ASSETSUP_PRIVATE}-go-title`);

  const result = (await sealing.workflow.getHandle(workflowId).result()) as DispatchEventResult;
  assert.equal(result.delivery?.outcome, 'succeeded');
});
