// A DPoP client built on panva's `jose`, for tests/dpop_interop.rs: an
// implementation of JWS, JWK and RFC 7638 thumbprints independent of
// iam-guard's, making the keys and proofs the guard must accept or refuse.
//
// Usage: node dpop-client.mjs
//
// Prints "READY <jose version>" once loaded, then answers one JSON line on
// stdout for each JSON line read on stdin, in order:
//
//   {"op": "generate", "alg": "ES256"}
//     -> {"key": "k1", "jwk": {...public...}, "jkt": "<RFC 7638 thumbprint>"}
//   {"op": "proof", "key": "k1", "htm": "GET", "htu": "http://...",
//    "accessToken": "...", "iatOffset": -3600, "omit": ["ath"],
//    "claims": {...}}
//     -> {"proof": "<compact JWS>"}
//     accessToken (optional) gives `ath`; iatOffset shifts `iat` from now;
//     omit drops claims; claims adds or replaces claims last.
//   {"op": "verify", "proof": "...", "jwk": {...}, "accessToken": "..."}
//     -> {"header": {...}, "payload": {...}, "jkt": "...", "ath": "..."}
//     a proof made elsewhere, checked with jose's EmbeddedJWK; jkt is the
//     thumbprint of `jwk` and ath the hash of accessToken, computed here.
//   {"op": "token", "key": "k1", "tokenEndpoint": "http://.../token",
//    "clientId": "...", "clientSecret": "...", "resource": "...",
//    "scope": "..."}
//     -> {"status": 200, "body": {...}}
//     a client-credentials grant with a DPoP proof of the key (RFC 9449 §5).
//
// Errors answer {"error": "..."}. Exits when stdin closes, so a test that
// dies cannot leave it behind.

import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

import * as jose from 'jose';

const keys = new Map();
let generated = 0;

async function generate({ alg }) {
  // Extractable, so that the public JWK can be exported (a public key
  // always is; the flag matters for the private half only).
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(publicKey);
  const jkt = await jose.calculateJwkThumbprint(jwk, 'sha256');
  generated += 1;
  const key = `k${generated}`;
  keys.set(key, { alg, jwk, privateKey });
  return { key, jwk, jkt };
}

function accessTokenHash(accessToken) {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

function keyOf(name) {
  const key = keys.get(name);
  if (!key) {
    throw new Error(`no key ${name}`);
  }
  return key;
}

async function proof(request) {
  const { alg, jwk, privateKey } = keyOf(request.key);
  const claims = {
    htm: request.htm,
    htu: request.htu,
    jti: randomUUID(),
    iat: Math.floor(Date.now() / 1000) + (request.iatOffset ?? 0),
  };
  if (request.accessToken !== undefined) {
    claims.ath = accessTokenHash(request.accessToken);
  }
  for (const name of request.omit ?? []) {
    delete claims[name];
  }
  Object.assign(claims, request.claims ?? {});
  const jwt = await new jose.SignJWT(claims)
    .setProtectedHeader({ alg, typ: 'dpop+jwt', jwk })
    .sign(privateKey);
  return { proof: jwt };
}

async function verify(request) {
  const { payload, protectedHeader } = await jose.jwtVerify(request.proof, jose.EmbeddedJWK, {
    typ: 'dpop+jwt',
  });
  const jkt = await jose.calculateJwkThumbprint(request.jwk, 'sha256');
  return { header: protectedHeader, payload, jkt, ath: accessTokenHash(request.accessToken) };
}

async function token(request) {
  const { proof: dpop } = await proof({ key: request.key, htm: 'POST', htu: request.tokenEndpoint });
  const credentials = Buffer.from(`${request.clientId}:${request.clientSecret}`).toString('base64');
  const response = await fetch(request.tokenEndpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${credentials}`,
      'content-type': 'application/x-www-form-urlencoded',
      dpop,
    },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      resource: request.resource,
      scope: request.scope,
    }),
  });
  return { status: response.status, body: await response.json() };
}

const OPS = { generate, proof, verify, token };

// One request at a time, answered in order: the test side writes a line and
// reads the answer under one lock.
let queue = Promise.resolve();
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  queue = queue.then(async () => {
    let answer;
    try {
      const request = JSON.parse(line);
      const op = OPS[request.op];
      if (!op) {
        throw new Error(`unknown op ${request.op}`);
      }
      answer = await op(request);
    } catch (err) {
      answer = { error: String(err?.stack ?? err) };
    }
    process.stdout.write(`${JSON.stringify(answer)}\n`);
  });
});
lines.on('close', () => {
  queue.then(() => process.exit(0));
});

const { version } = JSON.parse(
  readFileSync(new URL('./node_modules/jose/package.json', import.meta.url), 'utf8'),
);
console.log(`READY ${version}`);
