import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import { defaultPayloadConverter } from '@temporalio/client';
import type { Payload } from '@temporalio/client';

import {
  ENCODING_ENCRYPTED,
  EncryptionCodec,
  METADATA_KEY_ID,
  PayloadDecryptError,
  parsePayloadKey,
  parsePayloadKeys,
  PayloadKey,
} from '../index';

// Payloads the Go codec sealed (payloadcodec/testdata/vectors.json, written by
// `go test ./payloadcodec/ -run TestVectors -update-vectors`).
const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');
const VECTORS_FILE = path.resolve(PACKAGE_ROOT, '../../payloadcodec/testdata/vectors.json');

interface JSONPayload {
  metadata?: Record<string, string>;
  data?: string;
}

function fromJSON(p: JSONPayload): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) {
    metadata[k] = Buffer.from(v, 'base64');
  }
  return { metadata, data: Buffer.from(p.data ?? '', 'base64') };
}

function key(id: string): PayloadKey {
  return { id, key: randomBytes(32) };
}

function text(b: Uint8Array | null | undefined): string {
  return Buffer.from(b ?? new Uint8Array()).toString('utf8');
}

function assertSamePayload(got: Payload, want: Payload): void {
  assert.deepEqual(
    Object.fromEntries(Object.entries(got.metadata ?? {}).map(([k, v]) => [k, text(v)])),
    Object.fromEntries(Object.entries(want.metadata ?? {}).map(([k, v]) => [k, text(v)])),
  );
  assert.deepEqual(Buffer.from(got.data ?? new Uint8Array()), Buffer.from(want.data ?? new Uint8Array()));
}

describe('EncryptionCodec', () => {
  test('opens what the Go codec sealed', async () => {
    assert.ok(existsSync(VECTORS_FILE), `codec vectors not found at ${VECTORS_FILE}`);
    const file = JSON.parse(readFileSync(VECTORS_FILE, 'utf8')) as {
      keys: { id: string; key: string }[];
      vectors: { name: string; plain: JSONPayload; sealed: JSONPayload }[];
    };
    assert.ok(file.vectors.length > 0);
    const codec = new EncryptionCodec(undefined, file.keys.map((k) => parsePayloadKey(k.id, k.key)));
    for (const v of file.vectors) {
      const sealed = fromJSON(v.sealed);
      assert.equal(text(sealed.metadata?.encoding), ENCODING_ENCRYPTED, v.name);
      const [got] = await codec.decode([sealed]);
      assertSamePayload(got, fromJSON(v.plain));
    }
  });

  test('round trip through the data converter, nothing readable in between', async () => {
    const codec = new EncryptionCodec(key('k1'));
    const event = { title: 'Forklift FL-7 assigned to Ada', metadata: { site: 'Ikeja' } };
    const plain = defaultPayloadConverter.toPayload(event);
    const [sealed] = await codec.encode([plain]);
    assert.equal(text(sealed.metadata?.encoding), ENCODING_ENCRYPTED);
    assert.equal(text(sealed.metadata?.[METADATA_KEY_ID]), 'k1');
    assert.deepEqual(Object.keys(sealed.metadata ?? {}).sort(), ['encoding', METADATA_KEY_ID].sort());
    assert.ok(!Buffer.from(sealed.data ?? new Uint8Array()).includes('Forklift'));
    const [opened] = await codec.decode([sealed]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(opened), event);

    const [again] = await codec.encode([plain]);
    assert.notDeepEqual(Buffer.from(again.data ?? []), Buffer.from(sealed.data ?? []), 'a fresh nonce every time');
  });

  test('rotation: old keys open, the current key seals', async () => {
    const oldKey = key('2025-01');
    const newKey = key('2025-06');
    const [sealedOld] = await new EncryptionCodec(oldKey).encode([defaultPayloadConverter.toPayload('old')]);
    const rotated = new EncryptionCodec(newKey, [oldKey]);
    assert.equal(defaultPayloadConverter.fromPayload((await rotated.decode([sealedOld]))[0]), 'old');
    const [sealedNew] = await rotated.encode([defaultPayloadConverter.toPayload('new')]);
    assert.equal(text(sealedNew.metadata?.[METADATA_KEY_ID]), '2025-06');
    await assert.rejects(new EncryptionCodec(oldKey).decode([sealedNew]), (err: Error) => {
      assert.ok(err instanceof PayloadDecryptError);
      assert.match(err.message, /"2025-06" is not configured/);
      return true;
    });
  });

  test('plaintext payloads pass; decrypt-only seals nothing', async () => {
    const k = key('k1');
    const plain = defaultPayloadConverter.toPayload({ written: 'before encryption' });
    assert.deepEqual(await new EncryptionCodec(k).decode([plain]), [plain]);
    const off = new EncryptionCodec(undefined, [k]);
    assert.equal(off.currentKeyId, undefined);
    assert.deepEqual(await off.encode([plain]), [plain]);
    const [sealed] = await new EncryptionCodec(k).encode([plain]);
    assertSamePayload((await off.decode([sealed]))[0], plain);
  });

  test('refuses tampered payloads', async () => {
    const k = key('k1');
    const codec = new EncryptionCodec(k);
    const [sealed] = await codec.encode([defaultPayloadConverter.toPayload('amount: 100')]);
    const flipped = Buffer.from(sealed.data ?? []);
    flipped[flipped.length - 1] ^= 1;
    const cases: [string, EncryptionCodec, Payload][] = [
      ['flipped bit', codec, { metadata: sealed.metadata, data: flipped }],
      ['truncated', codec, { metadata: sealed.metadata, data: Buffer.from(sealed.data ?? []).subarray(0, 10) }],
      ['another key under the same id', new EncryptionCodec(key('k1')), sealed],
    ];
    for (const [name, c, p] of cases) {
      await assert.rejects(c.decode([p]), PayloadDecryptError, name);
    }
  });

  test('keys: parsing and the environment', () => {
    const valid = Buffer.alloc(32, 7).toString('base64');
    assert.equal(parsePayloadKey('2025-06.a_b', ` ${valid}\n`).key.length, 32);
    for (const [id, b64, want] of [
      ['', valid, /key id/],
      ['a:b', valid, /key id/],
      ['1', 'not base64!', /not standard base64/],
      ['1', Buffer.alloc(16).toString('base64'), /want 32 bytes, got 16/],
    ] as const) {
      assert.throws(() => parsePayloadKey(id, b64), (err: Error) => {
        assert.match(err.message, want);
        assert.ok(!err.message.includes(b64) || b64 === '', 'an error never repeats the key');
        return true;
      });
    }
    assert.deepEqual(
      parsePayloadKeys(`,old:${valid}, older:${valid},`).map((k) => k.id),
      ['old', 'older'],
    );
    assert.throws(() => parsePayloadKeys(valid), /id:base64/);
    assert.throws(() => new EncryptionCodec(key('k'), [key('k')]), /given twice/);

    assert.equal(EncryptionCodec.fromEnv({}), undefined, 'off unless a key is set');
    assert.equal(EncryptionCodec.fromEnv({ TEMPORAL_PAYLOAD_KEY: valid })?.currentKeyId, '1', 'key id defaults to 1, as in Go');
    assert.equal(
      EncryptionCodec.fromEnv({ TEMPORAL_PAYLOAD_KEY: valid, TEMPORAL_PAYLOAD_KEY_ID: 'b', TEMPORAL_PAYLOAD_OLD_KEYS: `a:${valid}` })?.currentKeyId,
      'b',
    );
    assert.equal(EncryptionCodec.fromEnv({ TEMPORAL_PAYLOAD_OLD_KEYS: `a:${valid}` })?.currentKeyId, undefined);
  });
});
