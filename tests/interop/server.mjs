// The peers of the interop run, in one Node process on 127.0.0.1 only:
//
// - node-oidc-provider (a certified OpenID provider) mounted at /oidc, so the issuer has a path
//   and the client's metadata discovery has to walk its fallback order: the provider serves
//   /oidc/.well-known/openid-configuration and nothing at /.well-known/*/oidc;
// - a small MCP resource server at /mcp (initialize, tools/list, one `echo` tool; JSON answers
//   only, no sessions): RFC 9728 metadata at
//   /.well-known/oauth-protected-resource/mcp, a 401 with `WWW-Authenticate: Bearer
//   resource_metadata="…"` without a valid token, and token validation by RFC 7662
//   introspection at the provider with its own client credentials (active, issuer, audience =
//   this resource, scope).
//
// Provider configuration: open dynamic registration, PKCE S256 required for every client,
// resource indicators (RFC 8707) with the MCP URL as the only resource, opaque access tokens
// whose audience is that resource, rotating refresh tokens (a reused one revokes the grant),
// the RFC 9207 `iss` response parameter (always on in this version), the device authorization
// grant (RFC 8628), and the provider's own login and consent pages (devInteractions: real
// forms, real cookies).
//
// Environment: INTEROP_DIR (where `server.json` with the URLs is written once listening, and
// `server.log`, one JSON line per request or provider event), INTEROP_PROFILE (`oauth`,
// `oidc-strict` or `machines`, see below), INTEROP_AT_TTL (access token lifetime in seconds,
// default 75), INTEROP_CLIENT_KEY (for `machines`: the PEM file of the `svc-key` client's key).
//
// Nothing secret is logged: tokens, codes and client secrets stay out of server.log.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';

import Provider, { errors } from 'oidc-provider';

import { logProviderEvents, mcpResourceServer } from './provider_shared.mjs';

const dir = process.env.INTEROP_DIR;
if (!dir) throw new Error('INTEROP_DIR is not set');
const accessTokenTtl = Number(process.env.INTEROP_AT_TTL || 75);
// INTEROP_PROFILE picks one of two provider configurations:
// - `oauth` (default): a plain OAuth 2.1 authorization server built with oidc-provider. The MCP
//   scope is also listed in `scopes`, so that dynamic registration accepts a `scope` naming it,
//   and a refresh token is issued to every client that registered the refresh_token grant
//   (OAuth 2.1: the server decides from the client's grant types).
// - `oidc-strict`: the provider's documented defaults for both. Resource server scopes live only
//   in getResourceServerInfo (its docs: they "don't belong" in `scopes`), so a registration whose
//   `scope` names one is refused (invalid_client_metadata); and a refresh token is issued only
//   when `offline_access` was granted, which OIDC Core 1.0 §11 allows only with `prompt=consent`
//   (without it the provider drops offline_access from the request).
// - `machines`: `oauth` plus what programs without a person use. DPoP (RFC 9449) with the
//   provider's nonces required on every token request; client credentials, for two
//   pre-registered clients: `svc-basic` (client_secret_basic; its secret in server.json) and
//   `svc-key` (private_key_jwt with the public half of INTEROP_CLIENT_KEY). The MCP endpoint
//   then takes a DPoP-bound token only with the DPoP scheme and a valid proof by the key the
//   introspection names (cnf.jkt), and requires a nonce of its own in those proofs; it checks
//   proofs with Node's crypto, not with the client's code nor the provider's.
const profile = process.env.INTEROP_PROFILE || 'oauth';
if (!['oauth', 'oidc-strict', 'machines'].includes(profile)) throw new Error(`unknown INTEROP_PROFILE ${profile}`);
const strict = profile === 'oidc-strict';
const machines = profile === 'machines';
const logFile = path.join(dir, 'server.log');

function log(entry) {
  fs.appendFileSync(logFile, `${JSON.stringify({ t: Date.now(), ...entry })}\n`);
}

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', resolve);
});
const { port } = server.address();
const origin = `http://127.0.0.1:${port}`;
const issuer = `${origin}/oidc`;
const mcpUrl = `${origin}/mcp`;
const prmUrl = `${origin}/.well-known/oauth-protected-resource/mcp`;
const mcpScope = 'mcp:tools';

// The resource server's own client, used only to call the introspection endpoint.
const rsClient = { id: 'mcp-resource-server', secret: crypto.randomBytes(32).toString('base64url') };

// The pre-registered clients of the `machines` profile.
const svcBasic = { id: 'svc-basic', secret: crypto.randomBytes(24).toString('base64url') };
const svcKeyJwk = machines
  ? crypto.createPublicKey(fs.readFileSync(process.env.INTEROP_CLIENT_KEY, 'utf8')).export({ format: 'jwk' })
  : null;
const machineClients = machines ? [
  {
    client_id: svcBasic.id,
    client_secret: svcBasic.secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  },
  {
    client_id: 'svc-key',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'ES256',
    jwks: { keys: [{ ...svcKeyJwk, use: 'sig', alg: 'ES256' }] },
  },
] : [];
// The MCP endpoint's own DPoP nonce (RFC 9449 §9), and the proofs it has seen (replay check).
const rsNonce = crypto.randomBytes(16).toString('base64url');
const seenJtis = new Set();

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'interop-rs256', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: rsClient.id,
    client_secret: rsClient.secret,
    grant_types: [],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }, ...machineClients],
  jwks: { keys: [signingKey] },
  cookies: {
    keys: [crypto.randomBytes(32).toString('base64url')],
    long: { sameSite: 'lax' },
    short: { sameSite: 'lax' },
  },
  scopes: strict ? ['openid', 'offline_access'] : ['openid', 'offline_access', mcpScope],
  responseTypes: ['code'],
  pkce: {
    methods: ['S256'],
    required: () => true,
  },
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
    introspection: {
      enabled: true,
      allowedPolicy: async (ctx, client) => client.clientId === rsClient.id,
    },
    revocation: { enabled: true },
    // RFC 8628, with the provider's own code entry, confirmation and success pages.
    deviceFlow: { enabled: true },
    ...(machines ? {
      clientCredentials: { enabled: true },
      dPoP: { enabled: true, nonceSecret: crypto.randomBytes(32), requireNonce: () => true },
    } : {}),
    resourceIndicators: {
      enabled: true,
      // No resource asked for: no default one, the token would have no audience.
      defaultResource: async (ctx, client, oneOf) => oneOf,
      useGrantedResource: async () => false,
      getResourceServerInfo: mcpResourceServer({
        mcpUrl, mcpScope, accessTokenTtl, accessTokenFormat: 'opaque', log, errors,
      }),
    },
  },
  ...(strict ? {} : {
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  }),
  // Every refresh spends its refresh token and returns a new one; presenting a spent one again
  // revokes the whole grant (its refresh and access tokens): reuse detection.
  rotateRefreshToken: true,
  ttl: {
    AccessToken: accessTokenTtl,
    AuthorizationCode: 60,
    Grant: 3600,
    Interaction: 600,
    RefreshToken: 3600,
    Session: 3600,
  },
});

logProviderEvents(provider, log);

const providerCallback = provider.callback();

function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(text);
}

function challenge(error, scheme = 'Bearer') {
  const parts = [`resource_metadata="${prmUrl}"`, `scope="${mcpScope}"`];
  if (error) parts.push(`error="${error}"`);
  if (scheme === 'DPoP') parts.unshift('algs="ES256"');
  return `${scheme} ${parts.join(', ')}`;
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const sha256 = (text) => crypto.createHash('sha256').update(text).digest();

/** RFC 7638 thumbprint of an EC or RSA public JWK. */
function thumbprint(jwk) {
  const members = jwk.kty === 'EC' ? { crv: jwk.crv, kty: 'EC', x: jwk.x, y: jwk.y }
    : { e: jwk.e, kty: 'RSA', n: jwk.n };
  return b64url(sha256(JSON.stringify(members)));
}

/**
 * Checks the DPoP proof of an MCP request presenting `token` (RFC 9449 §4.3, §7.1): one
 * compact JWS, typ dpop+jwt, ES256 or RS256 over the public key in its header, htm/htu of this
 * request, iat within 5 minutes, ath of the token, a jti never seen, and this endpoint's nonce.
 * Returns the key's thumbprint; throws the reason ('nonce' when only the nonce is missing).
 */
function checkProof(req, token) {
  const proofs = req.headersDistinct?.dpop || [];
  if (proofs.length !== 1) throw new Error(`${proofs.length} DPoP proofs`);
  const [h, c, s, extra] = proofs[0].split('.');
  if (extra !== undefined || !s) throw new Error('not a compact JWS');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const claims = JSON.parse(Buffer.from(c, 'base64url'));
  if (header.typ !== 'dpop+jwt') throw new Error('typ');
  const jwk = header.jwk || {};
  if (jwk.d || jwk.p) throw new Error('a private key in the header');
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  const signature = Buffer.from(s, 'base64url');
  const input = Buffer.from(`${h}.${c}`);
  const ok = header.alg === 'ES256'
    ? crypto.verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, signature)
    : header.alg === 'RS256' && crypto.verify('sha256', input, key, signature);
  if (!ok) throw new Error('the signature does not verify');
  if (claims.htm !== req.method) throw new Error('htm');
  if (claims.htu !== mcpUrl) throw new Error(`htu ${claims.htu}`);
  if (Math.abs(Date.now() / 1000 - claims.iat) > 300) throw new Error('iat');
  if (claims.ath !== b64url(sha256(token))) throw new Error('ath');
  if (typeof claims.jti !== 'string' || seenJtis.has(claims.jti)) throw new Error('jti missing or replayed');
  seenJtis.add(claims.jti);
  if (claims.nonce !== rsNonce) throw new Error('nonce');
  return thumbprint(jwk);
}

/** RFC 7662 introspection at the provider, as the resource server's own client. */
async function introspect(token) {
  const response = await fetch(`${issuer}/token/introspection`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${rsClient.id}:${rsClient.secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
    signal: AbortSignal.timeout(5000),
  });
  if (response.status !== 200) throw new Error(`introspection answered HTTP ${response.status}`);
  return response.json();
}

/** Why the introspection result is not a token for this resource, or null when it is. */
function rejectReason(info) {
  if (!info.active) return 'inactive';
  if (info.iss !== issuer) return 'wrong issuer';
  const aud = Array.isArray(info.aud) ? info.aud : [info.aud];
  if (!aud.includes(mcpUrl)) return `wrong audience ${JSON.stringify(info.aud)}`;
  if (info.token_type && !['Bearer', 'DPoP'].includes(info.token_type)) return `token_type ${info.token_type}`;
  if (!String(info.scope || '').split(' ').includes(mcpScope)) return `scope ${JSON.stringify(info.scope)}`;
  return null;
}

async function readBody(req, limit = 64 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** The answer to one MCP request: initialize, tools/list, tools/call of `echo`, else empty. */
function mcpResult(request) {
  switch (request.method) {
    case 'initialize':
      return {
        protocolVersion: request.params?.protocolVersion || '2025-06-18',
        capabilities: { tools: {} },
        serverInfo: { name: 'interop-mcp', version: '1.0.0' },
      };
    case 'tools/list':
      return {
        tools: [{
          name: 'echo',
          description: 'Returns its text.',
          inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
        }],
      };
    case 'tools/call':
      return { content: [{ type: 'text', text: String(request.params?.arguments?.text ?? '') }] };
    default:
      return {};
  }
}

async function mcp(req, res) {
  if (req.method !== 'POST') {
    sendJson(res, 405, { error: 'POST only' }, { allow: 'POST' });
    return 'method';
  }
  const header = req.headers.authorization || '';
  const match = /^(Bearer|DPoP) ([A-Za-z0-9\-._~+/]+=*)$/.exec(header);
  const scheme = machines ? 'DPoP' : 'Bearer';
  if (!match || (match[1] === 'DPoP' && !machines)) {
    res.writeHead(401, { 'www-authenticate': challenge(undefined, scheme), 'content-type': 'text/plain' });
    res.end('a Bearer token is required\n');
    return 'no token';
  }
  const info = await introspect(match[2]);
  let reason = rejectReason(info);
  const bound = Boolean(info.cnf?.jkt);
  if (!reason && bound !== (match[1] === 'DPoP')) {
    reason = bound ? 'a DPoP-bound token presented as Bearer' : 'a Bearer token presented as DPoP';
  }
  if (!reason && bound) {
    try {
      if (checkProof(req, match[2]) !== info.cnf.jkt) reason = 'the proof is by another key';
    } catch (err) {
      if (err.message === 'nonce') {
        res.writeHead(401, {
          'www-authenticate': challenge('use_dpop_nonce', 'DPoP'),
          'dpop-nonce': rsNonce,
          'content-type': 'text/plain',
        });
        res.end('a DPoP nonce is required\n');
        return 'use_dpop_nonce';
      }
      reason = `DPoP proof: ${err.message}`;
    }
  }
  if (reason) {
    res.writeHead(401, { 'www-authenticate': challenge('invalid_token', scheme), 'content-type': 'text/plain' });
    res.end(`token rejected: ${reason}\n`);
    return `rejected: ${reason}`;
  }
  let request = {};
  try {
    request = JSON.parse(await readBody(req));
  } catch {
    sendJson(res, 400, { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'parse error' } });
    return 'parse error';
  }
  if (request.id === undefined) {
    // A notification (notifications/initialized): accepted, no answer.
    res.writeHead(202);
    res.end();
    return 'notification';
  }
  const result = mcpResult(request);
  // What the introspection said, for the run's assertions (no token material).
  const token = {
    aud: info.aud, scope: info.scope, client_id: info.client_id, sub: info.sub, token_type: info.token_type,
  };
  sendJson(res, 200, { jsonrpc: '2.0', id: request.id ?? null, result, _token: token });
  return 'accepted';
}

server.on('request', async (req, res) => {
  const url = new URL(req.url, origin);
  // The User-Agent's product (`mcp-oauth-client` for the client's own requests, `Mozilla` for
  // Chromium's): the client's check of a cached client and the browser's authorization request
  // reach the same endpoint.
  const entry = { method: req.method, path: url.pathname, ua: (req.headers['user-agent'] || '').split('/')[0] };
  res.on('finish', () => log({ ...entry, status: res.statusCode }));
  try {
    if (url.pathname === '/oidc' || url.pathname.startsWith('/oidc/')) {
      if (url.pathname === '/oidc/auth') {
        const q = url.searchParams;
        entry.params = [...q.keys()].sort();
        entry.resource = q.get('resource');
        entry.scope = q.get('scope');
        entry.code_challenge_method = q.get('code_challenge_method');
        entry.prompt = q.get('prompt');
        entry.redirect_uri = q.get('redirect_uri');
      }
      req.originalUrl = req.url;
      req.url = req.url.slice('/oidc'.length) || '/';
      providerCallback(req, res);
      return;
    }
    if (url.pathname === '/.well-known/oauth-protected-resource/mcp') {
      sendJson(res, 200, {
        resource: mcpUrl,
        authorization_servers: [issuer],
        scopes_supported: [mcpScope],
        bearer_methods_supported: ['header'],
        resource_name: 'interop MCP endpoint',
        // `machines`: the endpoint takes DPoP-bound tokens only (RFC 9728 §2, RFC 9449 §5.2).
        ...(machines ? { dpop_signing_alg_values_supported: ['ES256', 'RS256'], dpop_bound_access_tokens_required: true } : {}),
      });
      return;
    }
    if (url.pathname === '/mcp') {
      entry.outcome = await mcp(req, res);
      return;
    }
    sendJson(res, 404, { error: 'not_found' });
  } catch (err) {
    entry.error = String(err && err.message);
    if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
    else res.destroy();
  }
});

fs.writeFileSync(
  path.join(dir, 'server.json'),
  JSON.stringify({
    pid: process.pid, origin, issuer, mcp: mcpUrl, prm: prmUrl, ...(machines ? { svcBasicSecret: svcBasic.secret } : {}),
  }),
);
log({ event: 'listening', origin, issuer, profile, accessTokenTtl });

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
