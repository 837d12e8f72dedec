// The oidc_guard project's configuration of panva's `oidc-provider`, shared
// by every pinned release we test against (see README.md beside this file):
//
//   scripts/oidc-provider/provider.mjs      oidc-provider 7.14.3 (default)
//   scripts/oidc-provider-v9/provider.mjs   oidc-provider 9.13.3
//
// Each entry point imports its own pinned copy of the library and calls
// start() below; this module imports no copy itself.
//
// DEVELOPMENT ONLY: the built-in dev login screen accepts any login with any
// password, client secrets are fixed strings below, signing keys are made at
// start and thrown away on exit, all state is in memory. It listens on
// 127.0.0.1 only.
//
// Usage: node provider.mjs --port 4010      (or OP_PORT=4010 node provider.mjs)
// Prints one line "READY issuer=http://127.0.0.1:4010 version=... kids=..." on
// stdout once it accepts connections, so a supervising script can wait for it.
//
// Optional environment:
//   OP_REDIRECT_URIS   comma-separated extra redirect URIs for the `spa` and
//                      `server-app` clients.

import crypto from 'node:crypto';
import http from 'node:http';
import process from 'node:process';

const HOST = '127.0.0.1';

function parsePort() {
  let raw = process.env.OP_PORT;
  const i = process.argv.indexOf('--port');
  if (i !== -1) raw = process.argv[i + 1];
  const port = Number.parseInt(raw ?? '4010', 10);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error(`provider: bad port ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return port;
}

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

// ---------------------------------------------------------------------------
// Resource servers (RFC 8707 resource indicators). With accessTokenFormat
// 'jwt' the provider issues RFC 9068 JWT access tokens whose `aud` is the
// resource indicator. Only the scopes listed here can appear in an access
// token for a resource.
const API_SCOPES = 'contacts wte coordinate';
const RESOURCE_SERVERS = {
  // The example contacts API.
  'api://contacts': { alg: 'RS256' },
  // Same API scopes, ES256-signed tokens: proves the EC path against a real OP.
  'api://contacts-es': { alg: 'ES256' },
  // Another API: its tokens must be rejected by a validator for api://contacts.
  'api://other': { alg: 'RS256' },
  // The contacts API named by its URL, as an RFC 9728 protected resource is
  // (tests/integration/test_resource_indicators.py).
  'https://api.example.test/contacts': { alg: 'RS256' },
};

// MCP servers under test listen on a free loopback port, and an MCP server's
// resource is its URL (RFC 9728, the MCP authorization spec): any
// http://127.0.0.1:<port>/mcp is a resource server
// (tests/integration/test_mcp_real_provider.py).
const LOOPBACK_MCP = /^http:\/\/127\.0\.0\.1:[0-9]{1,5}\/mcp$/;

function resourceServer(indicator) {
  return RESOURCE_SERVERS[indicator] || (LOOPBACK_MCP.test(indicator) ? { alg: 'RS256' } : undefined);
}

// Clients whose requests without a `resource` get no default resource, hence
// opaque access tokens (reference tokens, RFC 7662 introspection).
const REFERENCE_CLIENTS = new Set(['wte-worker-ref', 'server-app-ref']);

// Loopback redirect URIs an example single-page app may use (it redirects to
// its own origin + path). Registered without a port: see the spa client.
const SPA_REDIRECT_URIS = [
  'http://127.0.0.1/',
  'http://127.0.0.1/callback',
  'http://127.0.0.1/callback.html',
  'http://127.0.0.1/index.html',
  'http://127.0.0.1/spa/',
  'http://127.0.0.1/spa/index.html',
  'http://localhost/',
  'http://localhost/callback',
  'http://localhost/index.html',
];

function clients({ implicitToken, extraRedirects }) {
  const spa = {
    client_id: 'spa',
    // A public browser client: no secret.
    token_endpoint_auth_method: 'none',
    // application_type "native" because its redirect URIs are http loopback
    // URIs and an example SPA's port is chosen at run time: for native
    // clients the provider matches loopback redirect URIs on any port
    // (RFC 8252 section 7.3); scheme, host and path must still match exactly.
    application_type: 'native',
    redirect_uris: [...SPA_REDIRECT_URIS, ...extraRedirects],
    // The example SPA asks for every API scope (as the original app did).
    scope: 'openid profile email contacts wte coordinate',
  };
  if (implicitToken) {
    // Implicit flow (OIDC Core 3.2), response_type "id_token token".
    Object.assign(spa, { grant_types: ['implicit'], response_types: ['id_token token'] });
  } else {
    // 8.x and later have no "token" response types: the best a browser
    // client gets is the authorization code flow with PKCE (RFC 7636).
    Object.assign(spa, { grant_types: ['authorization_code'], response_types: ['code'] });
  }

  return [
    spa,
    {
      // This API's own credentials at the introspection endpoint (RFC 7662
      // section 2.1), the same as oidc_guard.testing's development provider.
      client_id: 'contacts-api',
      client_secret: 'contacts-api-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [],
      response_types: [],
      redirect_uris: [],
    },
    {
      // wte-worker with reference (opaque) access tokens: no resource
      // indicator is defaulted for it (see REFERENCE_CLIENTS), so the
      // provider issues an opaque token that APIs introspect.
      client_id: 'wte-worker-ref',
      client_secret: 'wte-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'wte',
    },
    {
      // server-app with opaque user access tokens (also usable at UserInfo,
      // which a JWT for a resource is not).
      client_id: 'server-app-ref',
      client_secret: 'server-app-ref-dev-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1:1/callback', ...extraRedirects],
      scope: 'openid profile email contacts coordinate',
    },
    {
      // Confidential web app: authorization code with PKCE (RFC 7636, S256),
      // client_secret_basic at the token endpoint (RFC 6749 section 2.3.1).
      client_id: 'server-app',
      client_secret: 'server-app-dev-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      // Port 1: nothing listens there; tests read the redirect, never follow it.
      redirect_uris: ['http://127.0.0.1:1/callback', ...extraRedirects],
      scope: 'openid profile email contacts coordinate',
    },
    {
      // The same as server-app, but its ID Tokens are signed with ES256
      // (OIDC Registration: id_token_signed_response_alg), so at_hash is
      // checked with an EC signature too.
      client_id: 'server-app-es',
      client_secret: 'server-app-es-dev-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: ['http://127.0.0.1:1/callback', ...extraRedirects],
      scope: 'openid profile email contacts coordinate',
      id_token_signed_response_alg: 'ES256',
    },
    {
      // Back-end job: client credentials (RFC 6749 section 4.4), scope wte only.
      client_id: 'wte-worker',
      // Same as oidc_guard.testing's dev provider and examples/wte_worker.py.
      client_secret: 'wte-secret',
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
}

/**
 * Configure and start the provider.
 * @param {object} lib
 * @param {Function} lib.Provider  the library's Provider class
 * @param {object} lib.errors      the library's error classes
 * @param {string} lib.version     the library's version (from its package.json)
 */
export function start({ Provider, errors, version }) {
  const port = parsePort();
  const issuer = `http://${HOST}:${port}`;
  const major = Number.parseInt(version, 10);
  // 8.0.0 removed the response types that return an access token from the
  // authorization endpoint ("token", "id_token token", "code token", ...).
  const implicitToken = major < 8;

  const extraRedirects = (process.env.OP_REDIRECT_URIS || '')
    .split(',').map((s) => s.trim()).filter(Boolean);

  const keys = [
    // First RS256 key: the default for ID Tokens and JWT access tokens.
    signingKey('rsa', { modulusLength: 2048 }, 'RS256'),
    // ES256 (P-256) key: used for the `api://contacts-es` resource.
    signingKey('ec', { namedCurve: 'P-256' }, 'ES256'),
  ];

  // RFC 8705 certificate-bound access tokens, 9.x only (the release whose
  // mTLS hooks the suite is written against).
  const mtls = major >= 9;
  const clientList = clients({ implicitToken, extraRedirects });
  if (mtls) {
    clientList.push({
      // Client credentials whose tokens are bound to the client certificate
      // presented on the token request (cnf "x5t#S256").
      client_id: 'wte-worker-mtls',
      client_secret: 'wte-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      scope: 'wte',
      tls_client_certificate_bound_access_tokens: true,
    });
  }

  const configuration = {
    clients: clientList,
    jwks: { keys },
    // Cookie signing keys: random per start (sessions do not survive restarts).
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },

    // Every login name typed into the dev login screen is accepted; the
    // account has a fixed profile, and sub = the login name.
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
    // The API scopes are listed too: a client's `scope` metadata may only
    // name scopes from this list (discovery then advertises them).
    scopes: ['openid', 'profile', 'email', ...API_SCOPES.split(' ')],
    responseTypes: implicitToken ? ['code', 'id_token token', 'id_token'] : ['code', 'id_token'],
    // RFC 7636 for every authorization code request; S256 is the only method.
    pkce: { required: () => true },

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
      // RFC 7662 and RFC 7009, for the opaque tokens of REFERENCE_CLIENTS.
      introspection: { enabled: true },
      revocation: { enabled: true },
      ...(mtls ? {
        mTLS: {
          enabled: true,
          certificateBoundAccessTokens: true,
          // This provider speaks plain http on loopback, so no TLS handshake
          // gives it a certificate: a test acting as the TLS-terminating
          // proxy passes it URL-encoded (nginx $ssl_client_escaped_cert
          // style) in X-Client-Cert, believed from loopback peers only.
          // DEVELOPMENT ONLY.
          getCertificate(ctx) {
            const peer = ctx.req.socket.remoteAddress || '';
            if (!['127.0.0.1', '::1', '::ffff:127.0.0.1'].includes(peer)) return undefined;
            const value = ctx.get('x-client-cert');
            if (!value) return undefined;
            try {
              return new crypto.X509Certificate(decodeURIComponent(value));
            } catch {
              return undefined;
            }
          },
        },
      } : {}),
      resourceIndicators: {
        enabled: true,
        // No resource requested (the example SPA and worker send none by
        // default): the contacts API. When several were granted, the provider
        // asks us to pick one of them (`oneOf`); we pick none so the request
        // fails loudly instead of guessing.
        async defaultResource(ctx, client, oneOf) {
          if (oneOf) return undefined;
          if (client && REFERENCE_CLIENTS.has(client.clientId)) return undefined;
          return 'api://contacts';
        },
        // Token endpoint without `resource`: use the one granted at /auth.
        async useGrantedResource(ctx, model) {
          return true;
        },
        async getResourceServerInfo(ctx, resourceIndicator, client) {
          const rs = resourceServer(resourceIndicator);
          if (!rs) throw new errors.InvalidTarget();
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

  const provider = new Provider(issuer, configuration);

  // Make failures visible in the log file the supervising script keeps.
  for (const event of ['server_error', 'authorization.error', 'grant.error']) {
    provider.on(event, (ctx, err) => {
      console.error(`${event}: ${err.name}: ${err.message} ${err.error_description || ''}`);
    });
  }

  const server = http.createServer(provider.callback());
  server.on('error', (err) => {
    console.error(`provider: cannot listen on ${HOST}:${port}: ${err.message}`);
    process.exit(1);
  });
  server.listen(port, HOST, () => {
    const kids = keys.map((k) => k.kid).join(',');
    console.log(`READY issuer=${issuer} version=${version} implicit_id_token_token=${implicitToken} `
      + `kids=${kids} node=${process.version}`);
  });

  function shutdown(signal) {
    console.error(`provider: ${signal}, closing`);
    server.close(() => process.exit(0));
    // Keep-alive connections can hold close() open; do not wait for them.
    setTimeout(() => process.exit(0), 1000).unref();
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
