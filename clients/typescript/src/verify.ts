import { createHmac, timingSafeEqual } from 'node:crypto';

/** A header as Node hands it over (req.headers[name]): a repeated header may be an array. */
export type HeaderValue = string | string[] | undefined;

/** The Standard Webhooks headers of a delivery. */
export interface StandardWebhookHeaders {
  /** webhook-id */
  id: HeaderValue;
  /** webhook-timestamp: unix seconds */
  timestamp: HeaderValue;
  /** webhook-signature: "v1,<base64>", space-separated during a secret rotation */
  signature: HeaderValue;
}

const SECRET_PREFIX = 'whsec_';
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Verifies X-AssetsUp-Signature: "sha256=<lowercase hex HMAC-SHA256(key = the whole whsec_
 * secret string, message = the raw body bytes)>". The header lists one signature per
 * signing secret, comma-separated (two, newest first, during a rotation); any match is
 * enough. rawBody must be the bytes received, not re-serialised JSON. Constant time.
 */
export function verifyAssetsUpSignature(secret: string, rawBody: Buffer | string, header: HeaderValue): boolean {
  const value = headerValue(header, ',');
  if (typeof secret !== 'string' || secret === '' || value === undefined) {
    return false;
  }
  const expected = Buffer.from(
    'sha256=' + createHmac('sha256', secret).update(bytes(rawBody)).digest('hex'),
    'utf8',
  );
  let ok = false;
  for (const part of value.split(',')) {
    ok = safeEqual(Buffer.from(part.trim(), 'utf8'), expected) || ok;
  }
  return ok;
}

/**
 * Verifies the Standard Webhooks headers: webhook-signature lists "v1,<base64 HMAC-SHA256(
 * key = base64-decoded secret after whsec_, message = id.timestamp.body)>" entries,
 * space-separated; any match is enough. The timestamp must be within toleranceSeconds of
 * now (milliseconds, as Date.now()). Throws TypeError when secret is not whsec_<base64>
 * (a configuration error, not a bad request).
 */
export function verifyStandardWebhook(
  secret: string,
  rawBody: Buffer | string,
  headers: StandardWebhookHeaders,
  toleranceSeconds = 300,
  now: number = Date.now(),
): boolean {
  const key = standardKey(secret);
  const id = headerValue(headers.id, ',');
  const timestamp = headerValue(headers.timestamp, ',');
  const signatures = headerValue(headers.signature, ' ');
  if (id === undefined || id === '' || timestamp === undefined || signatures === undefined) {
    return false;
  }
  if (!/^\d{1,15}$/.test(timestamp)) {
    return false;
  }
  const nowSeconds = Math.floor(now / 1000);
  if (Math.abs(nowSeconds - Number(timestamp)) > toleranceSeconds) {
    return false;
  }
  const expected = Buffer.from(
    createHmac('sha256', key)
      .update(`${id}.${timestamp}.`, 'utf8')
      .update(bytes(rawBody))
      .digest('base64'),
    'utf8',
  );
  let ok = false;
  for (const entry of signatures.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') {
      continue;
    }
    ok = safeEqual(Buffer.from(entry.slice(comma + 1), 'utf8'), expected) || ok;
  }
  return ok;
}

function standardKey(secret: string): Buffer {
  const encoded = typeof secret === 'string' && secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  if (typeof encoded !== 'string' || encoded === '' || !BASE64.test(encoded)) {
    throw new TypeError('secret must be the webhook secret: whsec_ followed by standard base64');
  }
  return Buffer.from(encoded, 'base64');
}

// timingSafeEqual throws on different lengths: check first (the length is not secret).
function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function bytes(body: Buffer | string): Buffer {
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}

function headerValue(h: HeaderValue, sep: string): string | undefined {
  if (Array.isArray(h)) {
    return h.length === 0 ? undefined : h.join(sep);
  }
  return typeof h === 'string' ? h : undefined;
}
