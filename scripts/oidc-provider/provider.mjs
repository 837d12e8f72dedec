// oidc-provider 7.14.3 (pinned in package.json beside this file), configured
// by ./interop.mjs. Development only, loopback only.
//
// Usage: node provider.mjs --port 4010
//
// Why 7.14.3: it is the newest release that still offers the implicit
// `id_token token` response type the example single-page app uses (8.0.0
// removed it). Its package.json declares node 12-18; it runs on node 20, and
// the integration suite proves that on every run.

import { createRequire } from 'node:module';

import Provider, { errors } from 'oidc-provider';

import { start } from './interop.mjs';

const { version } = createRequire(import.meta.url)('oidc-provider/package.json');
start({ Provider, errors, version });
