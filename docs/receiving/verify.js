// Verify a Tributary delivery in Node (>= 16) with node:crypto only.
// Pass the RAW request body (a Buffer), never JSON.parse + stringify.
'use strict';
const crypto = require('node:crypto');

const TOLERANCE_SECONDS = 300;

function checkTimestamp(ts) {
  const sec = Number(ts);
  if (!Number.isInteger(sec) || Math.abs(Date.now() / 1000 - sec) > TOLERANCE_SECONDS) {
    throw new Error('timestamp outside tolerance');
  }
}

// rsa (default): jwks is your account's key set, fetched from
// <engine>/.well-known/jwks/<accountId>.json (cache it; fetch again on an unknown kid).
function verifyRSA(rawBody, headers, jwks, accountId) {
  const id = headers['x-tributary-event-id'];
  const ts = headers['x-tributary-timestamp'];
  const kid = headers['x-tributary-key-id'];
  const sig = headers['x-tributary-signature'];
  if (!id || !ts || !kid || !sig) throw new Error('missing signature header');
  checkTimestamp(ts);
  const jwk = jwks.keys.find((k) => k.kid === kid);
  if (!jwk) throw new Error('unknown signing key ' + kid);
  const key = crypto.createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e }, format: 'jwk' });
  const signed = Buffer.concat([Buffer.from(`${id}.${ts}.`), rawBody]);
  const ok = sig.split(' ').some((entry) => entry.startsWith('v1,') &&
    crypto.verify('sha256', signed, { key, padding: crypto.constants.RSA_PKCS1_PADDING }, Buffer.from(entry.slice(3), 'base64')));
  if (!ok) throw new Error('invalid signature');
  if (JSON.parse(rawBody.toString('utf8')).accountId !== accountId) throw new Error('event signed for another account');
}

// standard (Standard Webhooks): secret is the webhook's whsec_… secret.
function verifyStandard(rawBody, headers, secret) {
  const id = headers['webhook-id'];
  const ts = headers['webhook-timestamp'];
  const sig = headers['webhook-signature'];
  if (!id || !ts || !sig) throw new Error('missing signature header');
  checkTimestamp(ts);
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const mac = crypto.createHmac('sha256', key).update(`${id}.${ts}.`).update(rawBody).digest('base64');
  const want = Buffer.from('v1,' + mac);
  const ok = sig.split(' ').some((entry) => entry.length === want.length && crypto.timingSafeEqual(Buffer.from(entry), want));
  if (!ok) throw new Error('invalid signature');
}

// hmac: X-Webhook-Signature is sha256=<hex HMAC-SHA256(secret, raw body)>.
function verifyHMAC(rawBody, headers, secret) {
  const want = Buffer.from('sha256=' + crypto.createHmac('sha256', secret).update(rawBody).digest('hex'));
  const ok = [headers['x-webhook-signature'], headers['x-webhook-signature-previous']].some(
    (got) => got && got.length === want.length && crypto.timingSafeEqual(Buffer.from(got), want));
  if (!ok) throw new Error('invalid signature');
}

module.exports = { verifyRSA, verifyStandard, verifyHMAC };

// Command line (used by the repository's tests): node verify.js cases.json
// where cases.json is [{"scheme", "headers", "body" (base64), "key" (JWKS
// object or secret), "accountId"}]; prints one "verified" / "rejected: …" line each.
if (require.main === module) {
  const fs = require('node:fs');
  for (const c of JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))) {
    const headers = Object.fromEntries(Object.entries(c.headers).map(([k, v]) => [k.toLowerCase(), v]));
    const body = Buffer.from(c.body, 'base64');
    try {
      if (c.scheme === 'rsa') verifyRSA(body, headers, c.key, c.accountId);
      else if (c.scheme === 'standard') verifyStandard(body, headers, c.key);
      else if (c.scheme === 'hmac') verifyHMAC(body, headers, c.key);
      else throw new Error('unknown scheme ' + c.scheme);
      console.log('verified');
    } catch (err) {
      console.log('rejected: ' + err.message);
    }
  }
}
