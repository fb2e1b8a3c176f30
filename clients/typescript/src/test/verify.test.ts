import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

import { Webhook } from 'standardwebhooks';

import { verifyAssetsUpSignature, verifyStandardWebhook } from '../verify';

interface Vector {
  secret: string;
  body: string;
  x_assetsup_signature: string;
  webhook_id: string;
  webhook_timestamp: string;
  webhook_signature: string;
}

// The package root is two levels above dist/test; the vectors live in the repository's
// testdata/ (overridable, to check another set).
const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');
const VECTORS_FILE =
  process.env.ASSETSUP_SIGNATURE_VECTORS ?? path.resolve(PACKAGE_ROOT, '../../testdata/signatures.json');

function loadVectors(): Vector[] {
  assert.ok(existsSync(VECTORS_FILE), `signature vectors not found at ${VECTORS_FILE} (set ASSETSUP_SIGNATURE_VECTORS)`);
  const vectors = (JSON.parse(readFileSync(VECTORS_FILE, 'utf8')) as { vectors: Vector[] }).vectors;
  assert.ok(Array.isArray(vectors) && vectors.length > 0, `no vectors in ${VECTORS_FILE}`);
  return vectors;
}

const vectors = loadVectors();

function headersOf(v: Vector, signature = v.webhook_signature) {
  return { id: v.webhook_id, timestamp: v.webhook_timestamp, signature };
}

function nowOf(v: Vector, offsetSeconds = 0): number {
  return (Number(v.webhook_timestamp) + offsetSeconds) * 1000;
}

// Another secret of the same shape: the first key byte changed.
function otherSecret(secret: string): string {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  key[0] ^= 0xff;
  return 'whsec_' + key.toString('base64');
}

function tamper(body: string): string {
  return body.replace('"event"', '"evenT"');
}

describe('verifyAssetsUpSignature', () => {
  vectors.forEach((v, i) => {
    test(`vector ${i}: valid (string and Buffer body)`, () => {
      assert.equal(verifyAssetsUpSignature(v.secret, v.body, v.x_assetsup_signature), true);
      assert.equal(verifyAssetsUpSignature(v.secret, Buffer.from(v.body, 'utf8'), v.x_assetsup_signature), true);
    });

    test(`vector ${i}: tampered body, other secret, other signature fail`, () => {
      assert.notEqual(tamper(v.body), v.body);
      assert.equal(verifyAssetsUpSignature(v.secret, tamper(v.body), v.x_assetsup_signature), false);
      assert.equal(verifyAssetsUpSignature(v.secret, v.body + ' ', v.x_assetsup_signature), false);
      assert.equal(verifyAssetsUpSignature(otherSecret(v.secret), v.body, v.x_assetsup_signature), false);
      const flipped = v.x_assetsup_signature.slice(0, -1) + (v.x_assetsup_signature.endsWith('0') ? '1' : '0');
      assert.equal(verifyAssetsUpSignature(v.secret, v.body, flipped), false);
    });

    test(`vector ${i}: rotation lists, either order`, () => {
      const other = 'sha256=' + '0'.repeat(64);
      assert.equal(verifyAssetsUpSignature(v.secret, v.body, `${other},${v.x_assetsup_signature}`), true);
      assert.equal(verifyAssetsUpSignature(v.secret, v.body, `${v.x_assetsup_signature}, ${other}`), true);
      assert.equal(verifyAssetsUpSignature(v.secret, v.body, [other, v.x_assetsup_signature]), true);
      assert.equal(verifyAssetsUpSignature(v.secret, v.body, `${other},${other}`), false);
    });
  });

  test('missing, empty, malformed and different-length headers fail without throwing', () => {
    const v = vectors[0];
    for (const header of [undefined, '', ',', 'sha256=', 'sha256=abc', v.x_assetsup_signature.toUpperCase(),
      v.x_assetsup_signature.slice('sha256='.length), v.x_assetsup_signature + '00', []]) {
      assert.equal(verifyAssetsUpSignature(v.secret, v.body, header), false, String(header));
    }
    assert.equal(verifyAssetsUpSignature('', v.body, v.x_assetsup_signature), false);
  });
});

describe('verifyStandardWebhook', () => {
  vectors.forEach((v, i) => {
    test(`vector ${i}: valid at webhook_timestamp (string and Buffer body)`, () => {
      assert.equal(verifyStandardWebhook(v.secret, v.body, headersOf(v), 300, nowOf(v)), true);
      assert.equal(verifyStandardWebhook(v.secret, Buffer.from(v.body, 'utf8'), headersOf(v), 300, nowOf(v)), true);
    });

    test(`vector ${i}: tampered body, other secret, other id fail`, () => {
      assert.equal(verifyStandardWebhook(v.secret, tamper(v.body), headersOf(v), 300, nowOf(v)), false);
      assert.equal(verifyStandardWebhook(otherSecret(v.secret), v.body, headersOf(v), 300, nowOf(v)), false);
      const h = { ...headersOf(v), id: v.webhook_id + 'x' };
      assert.equal(verifyStandardWebhook(v.secret, v.body, h, 300, nowOf(v)), false);
    });

    test(`vector ${i}: rotation lists, either order`, () => {
      const other = 'v1,' + Buffer.alloc(32).toString('base64');
      assert.equal(verifyStandardWebhook(v.secret, v.body, headersOf(v, `${other} ${v.webhook_signature}`), 300, nowOf(v)), true);
      assert.equal(verifyStandardWebhook(v.secret, v.body, headersOf(v, `${v.webhook_signature} ${other}`), 300, nowOf(v)), true);
      assert.equal(verifyStandardWebhook(v.secret, v.body, headersOf(v, `${other} ${other}`), 300, nowOf(v)), false);
    });

    test(`vector ${i}: timestamp tolerance`, () => {
      assert.equal(verifyStandardWebhook(v.secret, v.body, headersOf(v), 300, nowOf(v, 300)), true);
      assert.equal(verifyStandardWebhook(v.secret, v.body, headersOf(v), 300, nowOf(v, -300)), true);
      assert.equal(verifyStandardWebhook(v.secret, v.body, headersOf(v), 300, nowOf(v, 301)), false, 'too old');
      assert.equal(verifyStandardWebhook(v.secret, v.body, headersOf(v), 300, nowOf(v, -301)), false, 'too new');
      assert.equal(verifyStandardWebhook(v.secret, v.body, headersOf(v), 10, nowOf(v, 11)), false);
      // The default now is the real clock: these fixed vectors are years away from it.
      assert.equal(verifyStandardWebhook(v.secret, v.body, headersOf(v)), Math.abs(Date.now() / 1000 - Number(v.webhook_timestamp)) <= 300);
    });
  });

  test('agrees with the official standardwebhooks library', () => {
    const now = Date.now();
    const timestamp = String(Math.floor(now / 1000));
    for (const v of vectors) {
      const wh = new Webhook(v.secret);
      const signature = wh.sign(v.webhook_id, new Date(Number(timestamp) * 1000), v.body);
      assert.equal(wh.sign(v.webhook_id, new Date(Number(v.webhook_timestamp) * 1000), v.body), v.webhook_signature);
      assert.equal(verifyStandardWebhook(v.secret, v.body, { id: v.webhook_id, timestamp, signature }, 300, now), true);
      // And the library accepts what this package accepts.
      wh.verify(v.body, { 'webhook-id': v.webhook_id, 'webhook-timestamp': timestamp, 'webhook-signature': signature });
    }
  });

  test('missing or malformed headers fail without throwing', () => {
    const v = vectors[0];
    const now = nowOf(v);
    const cases = [
      { ...headersOf(v), id: undefined },
      { ...headersOf(v), id: '' },
      { ...headersOf(v), timestamp: undefined },
      { ...headersOf(v), timestamp: 'soon' },
      { ...headersOf(v), timestamp: v.webhook_timestamp + '.0' },
      { ...headersOf(v), signature: undefined },
      { ...headersOf(v), signature: '' },
      { ...headersOf(v), signature: v.webhook_signature.replace('v1,', 'v2,') },
      { ...headersOf(v), signature: v.webhook_signature.slice('v1,'.length) },
      { ...headersOf(v), signature: v.webhook_signature + 'AA' },
    ];
    for (const h of cases) {
      assert.equal(verifyStandardWebhook(v.secret, v.body, h, 300, now), false, JSON.stringify(h));
    }
  });

  test('a secret that is not whsec_<base64> is a configuration error', () => {
    const v = vectors[0];
    assert.throws(() => verifyStandardWebhook('whsec_not base64!', v.body, headersOf(v), 300, nowOf(v)), TypeError);
    assert.throws(() => verifyStandardWebhook('', v.body, headersOf(v), 300, nowOf(v)), TypeError);
    // The prefix is optional, as in the official libraries.
    assert.equal(verifyStandardWebhook(v.secret.slice('whsec_'.length), v.body, headersOf(v), 300, nowOf(v)), true);
  });
});
