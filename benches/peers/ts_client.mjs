// The MCP TypeScript SDK's client, logged in with the SDK's own OAuth support: the peer of
// `examples/mcp_client.rs` in the peer benchmarks (`benches/peers/run.sh` copies this file next
// to its node_modules and runs it there).
//
//     node ts_client.mjs MCP_URL CACHE_DIR CALLBACK_PORT
//
// Follows the SDK's example client (`examples/client/simpleOAuthClient.js`): the same client
// metadata, `StreamableHTTPClientTransport` with an `authProvider`, on `UnauthorizedError` a
// callback server on a fixed localhost port, `finishAuth(code)` and a new transport. Three
// differences, all needed to measure it:
// - the provider keeps the tokens and the client registration in CACHE_DIR (the example's keeps
//   them in memory, so it cannot run the cached-token and refresh cases);
// - it sends a `state` (the provider's optional `state()`): the example sends none, which the
//   embedded authorization server refuses (OAuth 2.1 makes `state` optional with PKCE);
// - the browser is an HTTP redirect follower that visits the authorization URL and follows its
//   redirect into the callback server (loopback only), once that server listens.
// It connects (`initialize` + `notifications/initialized`), lists the tools, and exits.
import { createServer } from 'node:http';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';

const [serverUrl, cacheDir, callbackPort] = process.argv.slice(2);
const CALLBACK_URL = `http://localhost:${callbackPort}/callback`;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

function readJson(name) {
  try {
    return JSON.parse(readFileSync(join(cacheDir, name), 'utf8'));
  } catch {
    return undefined;
  }
}

function writeJson(name, value) {
  mkdirSync(cacheDir, { recursive: true, mode: 0o700 });
  const tmp = join(cacheDir, `.${name}.tmp`);
  writeFileSync(tmp, JSON.stringify(value), { mode: 0o600 });
  renameSync(tmp, join(cacheDir, name));
}

/** The browser: visits the URL and follows redirects, as a user who approves at once. */
async function follow(url) {
  for (let hops = 0; hops < 10; hops++) {
    const u = new URL(url);
    if (!LOOPBACK.has(u.hostname)) throw new Error(`not a loopback host: ${u.hostname}`);
    const res = await fetch(url, { redirect: 'manual', headers: { 'user-agent': 'bench-browser' } });
    await res.arrayBuffer();
    const location = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || !location) return;
    url = new URL(location, url).toString();
  }
}

/** The example's callback server. Resolves, once it listens, to `{ code }`: a promise of the code
 * of the first `/callback` request carrying `state`. */
function startCallbackServer(state) {
  let gotCode, failed;
  const code = new Promise((resolve, reject) => {
    gotCode = resolve;
    failed = reject;
  });
  const server = createServer((req, res) => {
    const parsed = new URL(req.url || '', 'http://localhost');
    const value = parsed.searchParams.get('code');
    if (parsed.pathname !== '/callback' || !value || parsed.searchParams.get('state') !== state) {
      res.writeHead(400);
      res.end('Bad request');
      if (parsed.searchParams.get('error')) failed(new Error(parsed.searchParams.get('error')));
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/html', Connection: 'close' });
    res.end('<html><body><h1>Authorization Successful!</h1></body></html>');
    server.close();
    gotCode(value);
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(Number(callbackPort), 'localhost', () => resolve({ code }));
  });
}

/** The example's `InMemoryOAuthClientProvider`, kept on disk. */
class FileOAuthClientProvider {
  constructor() {
    this.callback = undefined;
  }
  get redirectUrl() {
    return CALLBACK_URL;
  }
  get clientMetadata() {
    return {
      client_name: 'Simple OAuth MCP Client',
      redirect_uris: [CALLBACK_URL],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    };
  }
  clientInformation() {
    return readJson('client.json');
  }
  saveClientInformation(info) {
    writeJson('client.json', info);
  }
  tokens() {
    return readJson('tokens.json');
  }
  saveTokens(tokens) {
    writeJson('tokens.json', tokens);
  }
  state() {
    this.stateValue = randomBytes(32).toString('base64url');
    return this.stateValue;
  }
  redirectToAuthorization(authorizationUrl) {
    // The browser is opened once the callback server listens (a real user is slower than that).
    this.callback = startCallbackServer(this.stateValue).then(({ code }) => {
      follow(authorizationUrl.toString()).catch(e => console.error('headless browser:', e.message));
      return code;
    });
  }
  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }
  codeVerifier() {
    if (!this.verifier) throw new Error('No code verifier saved');
    return this.verifier;
  }
}

async function main() {
  const provider = new FileOAuthClientProvider();
  const client = new Client({ name: 'simple-oauth-client', version: '1.0.0' }, { capabilities: {} });
  let transport = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider });
  try {
    await client.connect(transport);
  } catch (error) {
    if (!(error instanceof UnauthorizedError) || !provider.callback) throw error;
    const code = await provider.callback;
    await transport.finishAuth(code);
    transport = new StreamableHTTPClientTransport(new URL(serverUrl), { authProvider: provider });
    await client.connect(transport);
  }
  const { tools } = await client.listTools();
  console.error('tools:', tools.map(t => t.name));
  await client.close();
}

main().then(
  () => process.exit(0),
  error => {
    console.error('ts_client:', error);
    process.exit(1);
  },
);
