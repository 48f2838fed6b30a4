// Small helpers for run.sh, so the script needs neither jq nor curl.
//
//   node tools.mjs get FILE EXPR           prints EXPR evaluated with d = the JSON in FILE
//   node tools.mjs edit FILE STATEMENT     runs STATEMENT with d = the JSON in FILE, writes d back
//   node tools.mjs count LOG MARK EXPR     counts server.log entries after line MARK where EXPR
//                                          (with e = the entry) is true
//   node tools.mjs list LOG MARK EXPR [MAP]
//                                          the same entries, one line each: the entry as JSON,
//                                          or MAP evaluated with e = the entry
//   node tools.mjs mcp URL [TOKEN]         POSTs an MCP initialize (with the Bearer TOKEN, or
//                                          with the scheme in INTEROP_SCHEME) and prints
//                                          {status, wwwAuthenticate, body}; with
//                                          INTEROP_MCP_SSE=1 it opens an HTTP+SSE stream
//                                          (GET) and reads its first event instead
//   node tools.mjs http URL                GETs URL and prints {status, body}
//   node tools.mjs up URL                  exits 0 when a GET of URL answers 200 (within 2 s)
//   node tools.mjs refresh URL CLIENT_ID   a refresh_token grant for a public client at the
//                                          token endpoint URL, the refresh token from the
//                                          environment (REFRESH_TOKEN, not on the command line);
//                                          prints {status, error} only
//   node tools.mjs in-order LOG MARK M1 M2 ...
//                                          for every MCP request with the last JSON-RPC method
//                                          after MARK: each method before it (the latest of
//                                          each) arrived after the one before that had been
//                                          answered (server.log's seq_in and seq); prints how
//                                          many sequences were checked, or the first that was
//                                          not in order (exit 1)
//   node tools.mjs register URL            registers a native public client without `scope` at
//                                          the registration endpoint URL; prints its client_id
//   node tools.mjs exhaust-registration URL MAX
//                                          registers clients until a 429 (at most MAX); prints
//                                          how many were registered before it
//
// Values print as text, objects as JSON, null and undefined as an empty line.

import * as fs from 'node:fs';

const [command, ...args] = process.argv.slice(2);

function print(v) {
  if (v === undefined || v === null) console.log('');
  else if (typeof v === 'object') console.log(JSON.stringify(v));
  else console.log(String(v));
}

function entries(file, mark) {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).slice(Number(mark) || 0)
    .map((line) => JSON.parse(line));
}

// EXPR comes from run.sh itself, never from a peer.
const evaluate = (name, expr) => new Function(name, `return (${expr});`);

async function main() {
  switch (command) {
    case 'get': {
      const [file, expr] = args;
      const d = JSON.parse(fs.readFileSync(file, 'utf8'));
      print(evaluate('d', expr)(d));
      break;
    }
    case 'edit': {
      // Rewrites FILE in place (its mode kept) with the statement EXPR run on d = its JSON.
      const [file, expr] = args;
      const d = JSON.parse(fs.readFileSync(file, 'utf8'));
      new Function('d', expr)(d);
      fs.writeFileSync(file, JSON.stringify(d));
      break;
    }
    case 'count':
    case 'list': {
      const [file, mark, expr, map] = args;
      const test = evaluate('e', expr);
      const project = map ? evaluate('e', map) : (e) => e;
      const found = entries(file, mark).filter((e) => test(e));
      if (command === 'count') print(found.length);
      else found.forEach((e) => print(project(e)));
      break;
    }
    case 'mcp': {
      const [url, token] = args;
      const headers = {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      };
      if (token) headers.authorization = `${process.env.INTEROP_SCHEME || 'Bearer'} ${token}`;
      if (process.env.INTEROP_MCP_SSE === '1') {
        // An HTTP+SSE server (revision 2024-11-05): the token opens its event stream, whose
        // first event names the endpoint for messages. The stream stays open: read the first
        // event, then close it.
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), 10_000);
        const response = await fetch(url, { headers: { ...headers, accept: 'text/event-stream' }, signal: controller.signal });
        let body = '';
        if (response.status === 200) {
          const reader = response.body.getReader();
          const decoder = new TextDecoder();
          while (!/\r?\n\r?\n/.test(body)) {
            const { value, done } = await reader.read();
            if (done) break;
            body += decoder.decode(value, { stream: true });
          }
        } else {
          body = await response.text();
        }
        clearTimeout(timer);
        controller.abort();
        print({ status: response.status, wwwAuthenticate: response.headers.get('www-authenticate'), body });
        break;
      }
      const response = await fetch(url, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: {
            protocolVersion: '2025-06-18',
            capabilities: {},
            clientInfo: { name: 'interop run.sh', version: '1' },
          },
        }),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await response.text();
      let body = text;
      try { body = JSON.parse(text); } catch { /* plain text */ }
      print({ status: response.status, wwwAuthenticate: response.headers.get('www-authenticate'), body });
      break;
    }
    case 'http': {
      const [url] = args;
      const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      const text = await response.text();
      let body = text;
      try { body = JSON.parse(text); } catch { /* plain text */ }
      print({ status: response.status, body });
      break;
    }
    case 'up': {
      const [url] = args;
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await response.arrayBuffer();
      if (response.status !== 200) process.exit(1);
      break;
    }
    case 'refresh': {
      const [url, clientId] = args;
      const refreshToken = process.env.REFRESH_TOKEN;
      if (!refreshToken) throw new Error('REFRESH_TOKEN is not set');
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', client_id: clientId, refresh_token: refreshToken }).toString(),
        signal: AbortSignal.timeout(10_000),
      });
      const text = await response.text();
      let error = null;
      try { error = JSON.parse(text).error ?? null; } catch { /* not JSON */ }
      print({ status: response.status, error });
      break;
    }
    case 'in-order': {
      const [file, mark, ...methods] = args;
      const rpc = entries(file, mark).filter((e) => e.rpc && e.seq_in !== undefined);
      const last = methods[methods.length - 1];
      let checked = 0;
      for (const end of rpc.filter((e) => e.rpc === last)) {
        let next = end;
        for (const method of methods.slice(0, -1).reverse()) {
          const before = rpc.filter((e) => e.rpc === method && e.seq_in < next.seq_in).pop();
          if (!before) {
            print(`no ${method} before the ${next.rpc} that arrived as #${next.seq_in}`);
            process.exit(1);
          }
          if (!(before.seq < next.seq_in)) {
            print(`${next.rpc} arrived (#${next.seq_in}) before ${method} was answered (#${before.seq})`);
            process.exit(1);
          }
          next = before;
        }
        checked += 1;
      }
      print(checked);
      break;
    }
    case 'register': {
      const [url] = args;
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          client_name: 'interop pre-registered client',
          application_type: 'native',
          redirect_uris: ['http://127.0.0.1/callback'],
          token_endpoint_auth_method: 'none',
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
        }),
        signal: AbortSignal.timeout(10_000),
      });
      const body = await response.json();
      if (response.status !== 201) throw new Error(`registration answered ${response.status}: ${JSON.stringify(body)}`);
      print(body.client_id);
      break;
    }
    case 'exhaust-registration': {
      // Registers clients until the server answers 429; prints how many it registered first.
      const [url, max] = args;
      for (let made = 0; made < Number(max); made += 1) {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            client_name: 'interop rate limit filler',
            redirect_uris: ['http://127.0.0.1/callback'],
            token_endpoint_auth_method: 'none',
          }),
          signal: AbortSignal.timeout(10_000),
        });
        await response.arrayBuffer();
        if (response.status === 429) {
          print(made);
          return;
        }
        if (response.status !== 201) throw new Error(`registration answered ${response.status}`);
      }
      throw new Error(`no 429 after ${max} registrations`);
    }
    default:
      throw new Error(`unknown command ${command}`);
  }
}

main().catch((err) => {
  console.error(`tools.mjs ${command}: ${err.message}`);
  process.exit(1);
});
