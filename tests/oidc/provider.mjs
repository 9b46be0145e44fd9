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
const ALGORITHM_RESOURCES = {
  'urn:iam-guard:rs256': { alg: 'RS256', scope: 'rs256:read' },
  'urn:iam-guard:es256': { alg: 'ES256', scope: 'es256:read' },
  'urn:iam-guard:eddsa': { alg: 'EdDSA', scope: 'eddsa:read' },
};

// One resource server per iam-guard preset, standing in for that IdP: its
// access tokens carry the claims the IdP puts in its own (the shapes of
// tests/idp_presets.rs), so a guard configured with the preset alone can be
// tried against a real provider.
//
//   audience  the `aud` the preset expects. oidc-provider takes it from the
//             resource server, apart from the resource indicator, so every
//             indicator stays a `urn:iam-guard:<preset>`.
//   scope     the scopes the resource server grants, named as that IdP
//             names them.
//   claims    extra claims, through `extraTokenClaims`. oidc-provider
//             writes jti, sub, iat, exp, scope, client_id, iss and aud after
//             them, so these cannot replace a registered claim: `sub` stays
//             the client id, as in any client-credentials token.
//   customize changes to the finished payload, through
//             `formats.customizers.jwt`, for what `extraTokenClaims` cannot
//             do: an `aud` array, or no `scope` claim where the IdP has none.
//             `aud` cannot be removed (oidc-provider refuses JWT access
//             tokens without one), so the Cognito token has an `aud` that
//             real Cognito access tokens lack.
const PRESET_RESOURCES = {
  // Keycloak, realm `school`: a token for the client `students-api` (the
  // audience mapper puts it in `aud`, next to `account`) holding realm roles
  // and client roles of students-api AND of billing-api, whose roles must
  // count for nothing at students-api.
  'urn:iam-guard:keycloak': {
    audience: 'students-api',
    scope: 'email profile students:read students:write',
    claims: (token) => ({
      typ: 'Bearer',
      azp: token.clientId,
      realm_access: {
        roles: ['offline_access', 'uma_authorization', 'default-roles-school', 'teacher'],
      },
      resource_access: {
        'students-api': { roles: ['grades-editor'] },
        'billing-api': { roles: ['admin', 'invoices-editor'] },
        account: { roles: ['manage-account', 'view-profile'] },
      },
      organization: ['school-1'],
      preferred_username: `service-account-${token.clientId}`,
    }),
    customize: (payload) => {
      payload.aud = [payload.aud, 'account'];
    },
  },
  // Auth0: an API with the identifier https://api.school.example, RBAC
  // `permissions`, and the roles and organization an Action adds under the
  // namespace https://school.example.com.
  'urn:iam-guard:auth0': {
    audience: 'https://api.school.example',
    scope: 'read:students write:students',
    claims: (token) => ({
      azp: token.clientId,
      gty: 'client-credentials',
      'https://school.example.com/roles': ['teacher'],
      org_id: 'org_7Hk2mP9qR4sT1uVw',
      permissions: ['read:students', 'write:grades'],
    }),
  },
  // Microsoft Entra ID v2.0: `aud` is the API's application (client) id,
  // scopes are the space-delimited `scp` (Entra has no `scope` claim), app
  // roles are `roles`, the user `oid` and the directory `tid`.
  'urn:iam-guard:entra': {
    audience: '6e74172b-be56-4843-9ff4-e66a39bb12e3',
    scope: 'Students.Read Students.Write',
    claims: (token) => ({
      ver: '2.0',
      azp: token.clientId,
      azpacr: '1',
      oid: '690222be-ff1a-4d56-abd1-7e4f7d38e474',
      tid: '72f988bf-86f1-41af-91ab-2d7cd011db47',
      scp: token.scope,
      roles: ['Grades.Admin'],
      uti: 'fqiBqXLPj0eQa82S-IYFAA',
    }),
    customize: (payload) => {
      delete payload.scope;
    },
  },
  // Amazon Cognito user pools: `token_use: access`, the app client in
  // `client_id` (oidc-provider's RFC 9068 claim, iam-guard-interop), groups
  // in `cognito:groups`, `/`-separated resource-server scopes.
  'urn:iam-guard:cognito': {
    scope: 'students/read students/write',
    claims: () => ({
      token_use: 'access',
      version: 2,
      'cognito:groups': ['teachers'],
      username: 'mrossi',
    }),
  },
  // Okta custom authorization server `default`: `scp` is an ARRAY (and
  // there is no `scope` claim), `cid` the client, `uid` the user, groups from
  // a `groups` claim.
  'urn:iam-guard:okta': {
    audience: 'api://default',
    scope: 'students:read grades:read students:write',
    claims: (token) => ({
      ver: 1,
      cid: token.clientId,
      uid: '00uid4BxXw6I6TV4m0g3',
      scp: [...token.scopes],
      groups: ['Everyone', 'Teachers'],
    }),
    customize: (payload) => {
      delete payload.scope;
    },
  },
  // An in-house IAM: `{system, role, department}` roles for this system
  // (inventory) and another (monitoring), and the tenant in `tenantId`.
  'urn:iam-guard:in-house': {
    scope: 'inventory:read inventory:write',
    claims: () => ({
      tenantId: 'school-1',
      departments: ['dc-1', 'dc-2'],
      roles: [
        { system: 'inventory', role: 'inventory_admin', department: 'dc-1' },
        { system: 'inventory', role: 'inventory_viewer', department: 'dc-2' },
        { system: 'monitoring', role: 'admin' },
      ],
    }),
  },
};

// Resource servers whose access tokens are opaque: a random handle the
// provider keeps, which a resource server can only check at the
// introspection endpoint (RFC 7662; tests/introspection.rs). `claims` end up
// in the introspection answer, as `extraTokenClaims` do in a JWT.
const OPAQUE = 'urn:iam-guard:opaque';
const OPAQUE_RESOURCES = {
  [OPAQUE]: {
    format: 'opaque',
    scope: 'opaque:read',
    claims: () => ({ tenantId: 'school-1', roles: ['teacher'] }),
  },
};

const RESOURCES = {
  ...ALGORITHM_RESOURCES,
  ...Object.fromEntries(
    Object.entries(PRESET_RESOURCES).map(([indicator, r]) => [indicator, { alg: 'RS256', ...r }]),
  ),
  ...OPAQUE_RESOURCES,
};

// The resource server a token is for, by its indicator.
function resourceOf(token) {
  const indicator = token.resourceServer?.identifier();
  return indicator === undefined ? undefined : RESOURCES[indicator];
}

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
    extraTokenClaims(ctx, token) {
      return resourceOf(token)?.claims?.(token);
    },
    formats: {
      customizers: {
        jwt(ctx, token, jwt) {
          resourceOf(token)?.customize?.(jwt.payload);
        },
      },
    },
    features: {
      clientCredentials: { enabled: true },
      // DPoP-bound tokens (cnf.jkt) for tests/dpop_interop.rs: on by default
      // in oidc-provider 9, set here so that no upgrade turns it off unseen.
      dPoP: { enabled: true },
      devInteractions: { enabled: false },
      // RFC 7662, for the opaque resource's tokens. iam-guard introspects
      // as the resource server, authenticating with the interop client's
      // credentials (client_secret_basic, its token endpoint method).
      introspection: {
        enabled: true,
        // Who may learn what about which token. The default lets any
        // authenticated client introspect any token (and warns that it
        // should be changed); here only the interop client, and only
        // tokens whose audience is the opaque resource: any other token is
        // answered `{"active": false}`, as if unknown. (The provider
        // refuses to introspect its JWT access tokens in any case.)
        allowedPolicy(ctx, client, token) {
          return client.clientId === CLIENT_ID && token.aud === OPAQUE;
        },
      },
      // RFC 7009, so a test can revoke an opaque token: a client may revoke
      // its own tokens (the default's rule, set explicitly so the provider
      // does not warn about an unchanged default).
      revocation: {
        enabled: true,
        allowedPolicy(ctx, client, token) {
          return token.clientId === client.clientId;
        },
      },
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
          if (resource.format === 'opaque') {
            return {
              scope: resource.scope,
              audience: resource.audience ?? resourceIndicator,
              accessTokenTTL: 300,
              accessTokenFormat: 'opaque',
            };
          }
          return {
            scope: resource.scope,
            audience: resource.audience ?? resourceIndicator,
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
