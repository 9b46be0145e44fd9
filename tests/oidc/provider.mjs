// A real OpenID Provider (panva's oidc-provider) for tests/oidc_interop.rs.
//
// Usage: node provider.mjs [port] [generation]
//   port        0 (default) lets the OS pick; a fixed port restarts the
//               provider on the same issuer URL.
//   generation  a label baked into the kids (default "1"). Keys are fresh
//               on every start, so a restart is a key rotation.
// OIDC_PORT and OIDC_KEY_GENERATION work too; arguments win.
//
// Prints "READY <issuer> <kid>,<kid>,<kid>" on stdout once listening. Exits
// when stdin closes or on SIGTERM/SIGINT, so a test that dies cannot leave it
// behind.

import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

const port = Number(process.argv[2] ?? process.env.OIDC_PORT ?? 0);
const generation = process.argv[3] ?? process.env.OIDC_KEY_GENERATION ?? '1';
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`invalid port ${process.argv[2] ?? process.env.OIDC_PORT}`);
  process.exit(2);
}

const CLIENT_ID = 'iam-guard-interop';
const CLIENT_SECRET = 'interop-secret-that-is-only-for-loopback-tests';

// One resource server per algorithm: each has its own audience and signs
// its access tokens as JWTs with its own key.
const RESOURCES = {
  'urn:iam-guard:rs256': { alg: 'RS256', scope: 'rs256:read' },
  'urn:iam-guard:es256': { alg: 'ES256', scope: 'es256:read' },
  'urn:iam-guard:eddsa': { alg: 'EdDSA', scope: 'eddsa:read' },
};

function signingKey(alg, type, options) {
  const { privateKey } = generateKeyPairSync(type, options);
  return {
    ...privateKey.export({ format: 'jwk' }),
    kid: `${alg.toLowerCase()}-gen${generation}`,
    alg,
    use: 'sig',
  };
}

const keys = [
  signingKey('RS256', 'rsa', { modulusLength: 2048 }),
  signingKey('ES256', 'ec', { namedCurve: 'P-256' }),
  signingKey('EdDSA', 'ed25519'),
];

function shutdown(code) {
  process.exit(code);
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
process.stdin.on('end', () => shutdown(0));
process.stdin.on('close', () => shutdown(0));
process.stdin.on('error', () => shutdown(0));
process.stdin.resume();

const server = createServer();
server.on('error', (err) => {
  console.error(`provider failed to listen: ${err.stack ?? err}`);
  shutdown(1);
});

server.listen(port, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys },
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        // No implicit audience: a token is for the resource it names.
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo(ctx, resourceIndicator) {
          const resource = RESOURCES[resourceIndicator];
          if (!resource) {
            throw new errors.InvalidTarget();
          }
          return {
            scope: resource.scope,
            audience: resourceIndicator,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: resource.alg } },
          };
        },
      },
    },
  });
  provider.on('server_error', (ctx, err) => {
    console.error(`provider server_error: ${err.stack ?? err}`);
  });
  provider.on('grant.error', (ctx, err) => {
    console.error(`provider grant.error: ${err.message} ${err.error_description ?? ''}`);
  });
  server.on('request', provider.callback());
  console.log(`READY ${issuer} ${keys.map((k) => k.kid).join(',')}`);
});
