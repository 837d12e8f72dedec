// oidc-provider 9.13.3 (pinned in package.json beside this file), configured
// by ../oidc-provider/interop.mjs, the same configuration as the 7.x install.
// Development only, loopback only.
//
// Usage: node provider.mjs --port 4010
//
// Why a second release: 9.x is the maintained line that users deploy today.
// It has no implicit `id_token token` (removed in 8.0.0), so here the `spa`
// client is a public authorization-code + PKCE client instead. It prints a
// warning that it wants node 22; it runs on node 20.

import { createRequire } from 'node:module';

import Provider, { errors } from 'oidc-provider';

import { start } from '../oidc-provider/interop.mjs';

const { version } = createRequire(import.meta.url)('oidc-provider/package.json');
start({ Provider, errors, version });
