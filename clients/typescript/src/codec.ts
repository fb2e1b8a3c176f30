// Payload encryption, interoperable with the Go service (payloadcodec): the backend's
// DispatchEvent inputs are sealed before they leave the process, and the results the Go
// worker sealed open here.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

import type { Payload } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

/** The metadata encoding of an encrypted payload. */
export const ENCODING_ENCRYPTED = 'binary/encrypted';
/** The metadata key naming the key that sealed a payload. */
export const METADATA_KEY_ID = 'encryption-key-id';

const ALGORITHM = 'aes-256-gcm';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** One AES-256 key and the id stored beside everything it seals. */
export interface PayloadKey {
  id: string;
  key: Buffer;
}

/** Thrown when an encrypted payload does not open: unknown key id, wrong key, or tampered. */
export class PayloadDecryptError extends Error {
  constructor(message: string) {
    super(`decrypt payload: ${message}`);
    this.name = 'PayloadDecryptError';
  }
}

/**
 * Decodes a standard base64 key (TEMPORAL_PAYLOAD_KEY) that must be exactly 32 bytes.
 * The error never contains the key.
 */
export function parsePayloadKey(id: string, base64: string): PayloadKey {
  if (!KEY_ID.test(id)) {
    throw new Error(`key id ${JSON.stringify(id)}: want 1 to 64 letters, digits, '.', '_' or '-'`);
  }
  const b64 = base64.trim();
  if (!BASE64.test(b64) || b64.length % 4 !== 0) {
    throw new Error(`key ${id}: not standard base64`);
  }
  const key = Buffer.from(b64, 'base64');
  if (key.length !== 32) {
    throw new Error(`key ${id}: want 32 bytes, got ${key.length}`);
  }
  return { id, key };
}

/** Decodes "id:base64,id:base64" (TEMPORAL_PAYLOAD_OLD_KEYS); blank entries are ignored. */
export function parsePayloadKeys(list: string): PayloadKey[] {
  const keys: PayloadKey[] = [];
  for (const raw of list.split(',')) {
    const entry = raw.trim();
    if (entry === '') {
      continue;
    }
    const colon = entry.indexOf(':');
    if (colon < 0) {
      throw new Error('entries must be id:base64');
    }
    keys.push(parsePayloadKey(entry.slice(0, colon), entry.slice(colon + 1)));
  }
  return keys;
}

/**
 * A Temporal PayloadCodec sealing every payload whole (metadata and data) with AES-256-GCM
 * under the current key and a fresh nonce, as the Go service does; it opens payloads
 * sealed under any key it knows, and passes unencrypted payloads through.
 *
 * ```ts
 * const codec = EncryptionCodec.fromEnv(); // TEMPORAL_PAYLOAD_KEY, _KEY_ID, _OLD_KEYS
 * const client = new Client({ connection, dataConverter: { payloadCodecs: codec ? [codec] : [] } });
 * ```
 */
export class EncryptionCodec {
  private readonly keys = new Map<string, Buffer>();
  private readonly current?: string;

  /** current seals (omit it to only open, while switching encryption off); older keys only open. */
  constructor(current: PayloadKey | undefined, older: PayloadKey[] = []) {
    const all = current ? [current, ...older] : older;
    if (all.length === 0) {
      throw new Error('no keys');
    }
    for (const k of all) {
      if (!KEY_ID.test(k.id)) {
        throw new Error(`key id ${JSON.stringify(k.id)}: want 1 to 64 letters, digits, '.', '_' or '-'`);
      }
      if (k.key.length !== 32) {
        throw new Error(`key ${k.id}: want 32 bytes, got ${k.key.length}`);
      }
      if (this.keys.has(k.id)) {
        throw new Error(`key id ${k.id} given twice`);
      }
      this.keys.set(k.id, k.key);
    }
    this.current = current?.id;
  }

  /**
   * The codec the environment describes, with the Go service's variable names:
   * TEMPORAL_PAYLOAD_KEY (base64 of 32 bytes), TEMPORAL_PAYLOAD_KEY_ID (default "1") and
   * TEMPORAL_PAYLOAD_OLD_KEYS ("id:base64,..."); undefined when none is set (encryption off).
   */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): EncryptionCodec | undefined {
    const older = parsePayloadKeys(env.TEMPORAL_PAYLOAD_OLD_KEYS ?? '');
    const key = env.TEMPORAL_PAYLOAD_KEY ?? '';
    if (key === '') {
      return older.length > 0 ? new EncryptionCodec(undefined, older) : undefined;
    }
    return new EncryptionCodec(parsePayloadKey(env.TEMPORAL_PAYLOAD_KEY_ID || '1', key), older);
  }

  /** The id new payloads are sealed under; undefined when the codec only opens. */
  get currentKeyId(): string | undefined {
    return this.current;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const id = this.current;
    if (id === undefined) {
      return payloads;
    }
    const key = this.keys.get(id) as Buffer;
    return payloads.map((p) => {
      const plain = temporal.api.common.v1.Payload.encode(p).finish();
      const nonce = randomBytes(NONCE_BYTES);
      const cipher = createCipheriv(ALGORITHM, key, nonce);
      const sealed = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: { encoding: Buffer.from(ENCODING_ENCRYPTED), [METADATA_KEY_ID]: Buffer.from(id) },
        data: sealed,
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      if (text(p.metadata?.encoding) !== ENCODING_ENCRYPTED) {
        return p;
      }
      const id = text(p.metadata?.[METADATA_KEY_ID]);
      const key = this.keys.get(id);
      if (key === undefined) {
        throw new PayloadDecryptError(`key id ${JSON.stringify(id)} is not configured (TEMPORAL_PAYLOAD_KEY, TEMPORAL_PAYLOAD_OLD_KEYS)`);
      }
      const sealed = Buffer.from(p.data ?? new Uint8Array());
      if (sealed.length < NONCE_BYTES + TAG_BYTES) {
        throw new PayloadDecryptError(`key id ${JSON.stringify(id)}: too short`);
      }
      let plain: Buffer;
      try {
        const decipher = createDecipheriv(ALGORITHM, key, sealed.subarray(0, NONCE_BYTES));
        decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
        plain = Buffer.concat([decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
      } catch {
        throw new PayloadDecryptError(`key id ${JSON.stringify(id)}: authentication failed`);
      }
      const orig = temporal.api.common.v1.Payload.decode(plain);
      return { metadata: orig.metadata, data: orig.data };
    });
  }
}

function text(b: Uint8Array | null | undefined): string {
  return b ? Buffer.from(b).toString('utf8') : '';
}
