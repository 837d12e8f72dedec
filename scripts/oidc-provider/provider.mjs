// Loopback-only OpenID Provider for oidc_guard's integration tests.
//
// This is panva's `oidc-provider` (an OpenID Certified implementation, pinned
// in package.json) with a configuration written for the oidc_guard project.
// It exists so the guard is proven against an OP that nobody on this project
// wrote. DEVELOPMENT ONLY: the built-in dev login screen accepts any login,
// client secrets are fixed strings below, keys are thrown away on exit, all
// state is in memory. It refuses to listen anywhere but 127.0.0.1.
//
// Usage: node provider.mjs --port 4010      (or OP_PORT=4010 node provider.mjs)
// Prints one line "READY issuer=http://127.0.0.1:4010 kids=..." on stdout once
// it accepts connections, so a supervising script can wait for it.
//
// Optional environment:
//   OP_REDIRECT_URIS   comma-separated extra redirect URIs for the `spa` and
//                      `server-app` clients (e.g. an example SPA's callback).
//
// Why version 7.14.3 (see scripts/oidc-provider/README.md): it is the last
// release line that still offers the implicit `id_token token` response type,
// which the example single-page app uses; 8.x removed it. Its package.json
// declares node 12-18, but it runs on this machine's node 20 (checked by the
// integration suite on every run).

import crypto from 'node:crypto';
import http from 'node:http';
import process from 'node:process';

import Provider from 'oidc-provider';

const HOST = '127.0.0.1';

function parsePort() {
  let raw = process.env.OP_PORT;
  const i = process.argv.indexOf('--port');
  if (i !== -1) raw = process.argv[i + 1];
  const port = Number.parseInt(raw ?? '4010', 10);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error(`provider.mjs: bad port ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return port;
}

const PORT = parsePort();
const ISSUER = `http://${HOST}:${PORT}`;

// ---------------------------------------------------------------------------
// Signing keys: generated at every start with node's crypto, never written to
// disk. A restart therefore publishes new `kid`s, which is exactly what the
// key-rotation test needs (OIDC Core 10.1.1: the RP refetches the JWKS when it
// sees an unknown kid).
function signingKey(type, options, alg) {
  const { privateKey } = crypto.generateKeyPairSync(type, options);
  const jwk = privateKey.export({ format: 'jwk' });
  // kid: random, prefixed with the alg so logs are readable.
  return { ...jwk, kid: `${alg.toLowerCase()}-${crypto.randomBytes(6).toString('hex')}`, alg, use: 'sig' };
}

const KEYS = [
  // First RS256 key: the default for id_tokens and JWT access tokens.
  signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
  // ES256 (P-256) key: used for the `api://contacts-es` resource below.
  signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
];

// ---------------------------------------------------------------------------
// Resource servers (RFC 8707 resource indicators). With accessTokenFormat
// 'jwt' the provider issues RFC 9068 JWT access tokens whose `aud` is the
// resource indicator. Scopes listed here are the only ones that can appear in
// an access token for that resource.
const API_SCOPES = 'contacts wte coordinate';
const RESOURCE_SERVERS = {
  // The example contacts API.
  'api://contacts': { alg: 'RS256' },
  // Same API scopes, ES256-signed tokens: proves the EC path against a real OP.
  'api://contacts-es': { alg: 'ES256' },
  // Another API: its tokens must be rejected by a validator for api://contacts.
  'api://other': { alg: 'RS256' },
};

// ---------------------------------------------------------------------------
// Clients. Secrets are development constants for a loopback-only provider.
const extraRedirects = (process.env.OP_REDIRECT_URIS || '')
  .split(',').map((s) => s.trim()).filter(Boolean);

const CLIENTS = [
  {
    // Browser single-page app, implicit flow (OIDC Core 3.2) with
    // response_type "id_token token". A public client: no secret.
    // application_type "native" because its redirect URIs are http loopback
    // URIs and the port of an example SPA is chosen at run time: for native
    // clients the provider matches loopback redirect URIs on any port
    // (RFC 8252 section 7.3); path and host must still match exactly.
    client_id: 'spa',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    grant_types: ['implicit'],
    response_types: ['id_token token'],
    redirect_uris: [
      'http://127.0.0.1/',
      'http://127.0.0.1/callback',
      'http://127.0.0.1/callback.html',
      'http://127.0.0.1/spa/',
      'http://127.0.0.1/spa/index.html',
      'http://127.0.0.1/index.html',
      'http://localhost/',
      'http://localhost/callback',
      ...extraRedirects,
    ],
    // The example SPA asks for every API scope (as the original app did).
    scope: 'openid profile email contacts wte coordinate',
  },
  {
    // Confidential web app: authorization code with PKCE (RFC 7636, S256),
    // client_secret_basic at the token endpoint (RFC 6749 section 2.3.1).
    client_id: 'server-app',
    client_secret: 'server-app-dev-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['authorization_code'],
    response_types: ['code'],
    redirect_uris: ['http://127.0.0.1:1/callback', ...extraRedirects],
    scope: 'openid profile email contacts coordinate',
  },
  {
    // Back-end job: client credentials (RFC 6749 section 4.4), scope wte only.
    client_id: 'wte-worker',
    client_secret: 'wte-secret', // same as oidc_guard.testing's dev provider and examples/wte_worker.py
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: 'wte',
  },
  {
    // Back-end client allowed the user-facing API scopes with client credentials.
    client_id: 'contacts-sync',
    client_secret: 'contacts-sync-dev-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: 'contacts coordinate',
  },
];

// ---------------------------------------------------------------------------
const configuration = {
  clients: CLIENTS,
  jwks: { keys: KEYS },
  // Cookie signing keys: random per start (sessions do not survive restarts).
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },

  // Every login name typed into the dev login screen is accepted; the account
  // has a fixed profile. sub = the login name.
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims(use, scope) {
        return {
          sub: id,
          name: 'Alice Example',
          preferred_username: id,
          email: `${id}@example.org`,
          email_verified: true,
        };
      },
    };
  },

  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  // The API scopes are listed too: this version only lets a client's `scope`
  // metadata name scopes from this list (and discovery then advertises them).
  scopes: ['openid', 'profile', 'email', ...API_SCOPES.split(' ')],
  responseTypes: ['code', 'id_token token', 'id_token'],
  pkce: { required: () => true, methods: ['S256'] },

  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    ClientCredentials: 600,
    IdToken: 600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },

  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: false },
    revocation: { enabled: false },
    resourceIndicators: {
      enabled: true,
      // No resource requested (e.g. an implicit-flow SPA that does not send
      // `resource`): the contacts API. When several were granted, the
      // provider asks us to pick one of them (`oneOf`); we pick none so the
      // request fails loudly instead of guessing.
      async defaultResource(ctx, client, oneOf) {
        if (oneOf) return undefined;
        return 'api://contacts';
      },
      // Token endpoint without `resource`: use the one granted at /auth.
      async useGrantedResource(ctx, model) {
        return true;
      },
      async getResourceServerInfo(ctx, resourceIndicator, client) {
        const rs = RESOURCE_SERVERS[resourceIndicator];
        if (!rs) throw new Provider.errors.InvalidTarget();
        return {
          scope: API_SCOPES,
          audience: resourceIndicator,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: rs.alg } },
        };
      },
    },
  },
};

const provider = new Provider(ISSUER, configuration);

// Make failures visible in the log file the supervising script keeps.
for (const event of ['server_error', 'authorization.error', 'grant.error', 'introspection.error']) {
  provider.on(event, (ctx, err) => {
    console.error(`${event}: ${err.name}: ${err.message} ${err.error_description || ''}`);
  });
}

const server = http.createServer(provider.callback());
server.on('error', (err) => {
  console.error(`provider.mjs: cannot listen on ${HOST}:${PORT}: ${err.message}`);
  process.exit(1);
});
server.listen(PORT, HOST, () => {
  const kids = KEYS.map((k) => k.kid).join(',');
  console.log(`READY issuer=${ISSUER} kids=${kids} node=${process.version}`);
});

function shutdown(signal) {
  console.error(`provider.mjs: ${signal}, closing`);
  server.close(() => process.exit(0));
  // Keep-alive connections can hold close() open; do not wait for them.
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
