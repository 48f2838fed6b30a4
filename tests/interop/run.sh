#!/usr/bin/env bash
# Interop run: the `mcp-oauth` CLI against node-oidc-provider (a certified OpenID provider) in
# front of a small MCP endpoint, with headless Chromium completing every login through the
# library's normal browser path (`webbrowser` runs $BROWSER = launcher.sh).
#
#   bash tests/interop/run.sh
#
# Installs what it needs (Debian's chromium when /usr/bin/chromium is missing, the pinned npm
# packages with `npm ci`), builds the CLI, starts the peers on 127.0.0.1 only, runs the
# scenarios, prints `PASS name` or `FAIL name: reason` for each and `N passed, N failed` last,
# and exits non-zero when one failed. Every wait is bounded; every process it started is ended
# on exit, also on failure. Screenshots and logs go to target/interop/ (or
# $CARGO_TARGET_DIR/interop/).
#
# Environment: INTEROP_STRICT=0 skips the two scenarios against the provider's documented
# OIDC defaults (profile `oidc-strict`, see server.mjs); INTEROP_AT_TTL sets the access token
# lifetime in seconds (default 75: long enough for the cached-token scenario, whose token must
# still be outside the client's refresh margin, 60 s at most; the refresh scenario waits for
# the real expiry).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET_DIR/interop
CLI=$TARGET_DIR/debug/mcp-oauth
AT_TTL=${INTEROP_AT_TTL:-75}
STRICT=${INTEROP_STRICT:-1}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mcp-oauth-interop.XXXXXX")
STARTED=$SECONDS
FG_PID=""
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
  for f in "$WORK"/*/driver-*.pid "$WORK"/*/server.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill -0 "$pid" 2>/dev/null && kill_tree "$pid" TERM
  done
  sleep 0.5
  for f in "$WORK"/*/driver-*.pid "$WORK"/*/server.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill -0 "$pid" 2>/dev/null && kill_tree "$pid" KILL
  done
  # Logs for a person (no secrets: server.log has none, CLI stdout with tokens is not kept).
  if [ -d "$OUT" ]; then
    rm -rf "$OUT/logs"
    mkdir -p "$OUT/logs"
    for f in "$WORK"/*/server.log "$WORK"/*/server.out "$WORK"/*/launches "$WORK"/*/driver-*.json \
      "$WORK"/*/driver-*.log "$WORK"/*/cli-*.err; do
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

# ---------------------------------------------------------------------------------------------
# Setup: Chromium, the pinned npm packages, the CLI.

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
say "npm ci (oidc-provider and playwright-core, pinned in package-lock.json)"
in_bg timeout 300 npm ci --prefix "$HERE" --no-audit --no-fund --loglevel=error >/dev/null \
  || setup_failed "npm ci failed in tests/interop"
say "cargo build --features cli"
in_bg timeout 900 cargo build --quiet --manifest-path "$ROOT/Cargo.toml" --features cli || setup_failed "cargo build --features cli failed"
[ -x "$CLI" ] || setup_failed "$CLI was not built"
[ -x "$HERE/launcher.sh" ] || chmod +x "$HERE/launcher.sh"
mkdir -p "$OUT"
rm -f "$OUT"/*.png

# The library's browser step runs $BROWSER (webbrowser tries it before any desktop opener).
export BROWSER="$HERE/launcher.sh"
export INTEROP_SHOT_DIR="$OUT"
export MCP_OAUTH_CACHE_DIR="$WORK/unused-default-cache"

# start_server NAME PROFILE: the peers in $WORK/NAME; sets ORIGIN, ISSUER, MCP_URL, PRM_URL.
start_server() {
  local name=$1 profile=$2 dir="$WORK/$1"
  mkdir -p "$dir"
  INTEROP_DIR="$dir" INTEROP_PROFILE="$profile" INTEROP_AT_TTL="$AT_TTL" \
    node "$HERE/server.mjs" >"$dir/server.out" 2>&1 &
  echo $! >"$dir/server.pid"
  wait_for 20 test -s "$dir/server.json" || setup_failed "the $profile server did not start: $(tail -3 "$dir/server.out")"
  ORIGIN=$(tool get "$dir/server.json" d.origin)
  ISSUER=$(tool get "$dir/server.json" d.issuer)
  MCP_URL=$(tool get "$dir/server.json" d.mcp)
  PRM_URL=$(tool get "$dir/server.json" d.prm)
}

# ---------------------------------------------------------------------------------------------
# Helpers for the scenarios. D is the current server's directory, CACHE its token cache.

fail() {
  WHY=$*
  return 1
}

scenario() {
  local name=$1
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
  echo "SKIP $1: $2"
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
  in_bg env INTEROP_DIR="$D" INTEROP_LABEL="$label" "${envs[@]}" \
    timeout 120 "$CLI" "$@" >"$D/cli-$label.out" 2>"$D/cli-$label.err" || CLI_RC=$?
}

cli_error() { grep -m1 '^mcp-oauth:' "$D/cli-$1.err" || tail -1 "$D/cli-$1.err"; }

launches() {
  if [ -f "$D/launches" ]; then wc -l <"$D/launches"; else echo 0; fi
}

log_mark() { if [ -f "$D/server.log" ]; then wc -l <"$D/server.log"; else echo 0; fi; }
log_count() { tool count "$D/server.log" "$1" "$2"; }

tokens_file() { ls "$CACHE"/*_tokens.json 2>/dev/null | head -1; }

# driver_result LABEL: waits for the driver's result file (the client may exit first).
driver_result() {
  wait_for 45 test -s "$D/driver-$1.json" || fail "the browser driver wrote no result for $1" || return 1
  if [ "$(tool get "$D/driver-$1.json" d.ok)" != "true" ]; then
    fail "browser: $(tool get "$D/driver-$1.json" d.error) (pages: $(tool get "$D/driver-$1.json" d.pages))"
    return 1
  fi
}

mcp_status() { tool mcp "$MCP_URL" "${1:-}" >"$D/mcp.json" && tool get "$D/mcp.json" d.status; }

# ---------------------------------------------------------------------------------------------
# Scenarios against the `oauth` profile.

s_first_login() {
  local mark n
  mark=$(log_mark)
  FIRST_MARK=$mark
  cli success -- login "$MCP_URL" --cache-dir "$CACHE" --timeout 60
  [ "$CLI_RC" = 0 ] || fail "login exited $CLI_RC: $(cli_error success)" || return 1
  n=$(launches)
  [ "$n" = 1 ] || fail "the browser launcher ran $n times, expected once" || return 1
  driver_result success || return 1
  local r="$D/driver-success.json"
  [ "$(tool get "$r" 'd.pages.join(",")')" = "login,consent" ] \
    || fail "the browser did not pass the provider's login and consent pages: $(tool get "$r" d.pages)" || return 1
  [ "$(tool get "$r" d.callbackStatus)" = 200 ] || fail "callback page HTTP $(tool get "$r" d.callbackStatus)" || return 1
  [ "$(tool get "$r" d.heading)" = "Signed in" ] || fail "callback page heading: $(tool get "$r" d.heading)" || return 1
  tool get "$r" d.text | grep -q "your program is finishing the sign-in" || fail "callback page text: $(tool get "$r" d.text)" || return 1
  [ -s "$OUT/success.png" ] || fail "no screenshot $OUT/success.png" || return 1
  local tf
  tf=$(tokens_file)
  [ -n "$tf" ] || fail "no token file in the cache" || return 1
  [ -n "$(tool get "$tf" d.tokens.access_token)" ] || fail "no access token cached" || return 1
  [ -n "$(tool get "$tf" d.tokens.refresh_token)" ] || fail "no refresh token cached" || return 1
  FIRST_LOGIN_OK=1
}

s_discovery_and_registration() {
  [ -n "${FIRST_LOGIN_OK:-}" ] || fail "needs the first login" || return 1
  local paths expected
  # The well-known requests of the first login, in order.
  paths=$(tool list "$D/server.log" "$FIRST_MARK" 'e.path && e.path.includes(".well-known")' 'e.path + " " + e.status' | tr '\n' ';')
  expected="/.well-known/oauth-protected-resource/mcp 200;/.well-known/oauth-authorization-server/oidc 404;/.well-known/openid-configuration/oidc 404;/oidc/.well-known/openid-configuration 200;"
  [ "$paths" = "$expected" ] || fail "discovery order was: $paths" || return 1
  local reg
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

s_authorization_request() {
  [ -n "${FIRST_LOGIN_OK:-}" ] || fail "needs the first login" || return 1
  local auth r="$D/driver-success.json"
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

s_mcp_accepts_token() {
  [ -n "${FIRST_LOGIN_OK:-}" ] || fail "needs the first login" || return 1
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

s_cached_token() {
  [ -n "${FIRST_LOGIN_OK:-}" ] || fail "needs the first login" || return 1
  local mark before tf
  tf=$(tokens_file)
  mark=$(log_mark)
  before=$(launches)
  cli token2 -- token "$MCP_URL" --cache-dir "$CACHE" --timeout 30
  [ "$CLI_RC" = 0 ] || fail "token exited $CLI_RC: $(cli_error token2)" || return 1
  [ "$(cat "$D/cli-token2.out")" = "$(tool get "$tf" d.tokens.access_token)" ] || fail "printed another token than the cached one" || return 1
  [ "$(launches)" = "$before" ] || fail "the browser was launched" || return 1
  local oauth_or_mcp='e.path && /^\/(oidc|mcp|\.well-known)/.test(e.path)'
  [ "$(log_count "$mark" "$oauth_or_mcp")" = 0 ] \
    || fail "requests reached the servers: $(tool list "$D/server.log" "$mark" "$oauth_or_mcp" 'e.method + " " + e.path' | tr '\n' ' ')" || return 1
}

s_refresh_rotation() {
  [ -n "${FIRST_LOGIN_OK:-}" ] || fail "needs the first login" || return 1
  local tf exp now wait mark before old_at old_rt new_at new_rt st
  tf=$(tokens_file)
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
  st=$(mcp_status "$old_at")
  [ "$st" = 401 ] || fail "the expired access token still got $st at the MCP endpoint" || return 1
  mark=$(log_mark)
  before=$(launches)
  cli refresh -- token "$MCP_URL" --cache-dir "$CACHE" --timeout 30
  [ "$CLI_RC" = 0 ] || fail "token exited $CLI_RC: $(cli_error refresh)" || return 1
  [ "$(launches)" = "$before" ] || fail "the browser was launched instead of a refresh" || return 1
  new_at=$(tool get "$tf" d.tokens.access_token)
  new_rt=$(tool get "$tf" d.tokens.refresh_token)
  [ "$(cat "$D/cli-refresh.out")" = "$new_at" ] || fail "printed token is not the cached one" || return 1
  [ "$new_at" != "$old_at" ] || fail "the access token did not change" || return 1
  [ -n "$new_rt" ] && [ "$new_rt" != "$old_rt" ] || fail "the cache does not hold a new (rotated) refresh token" || return 1
  [ "$(log_count "$mark" "e.event === 'grant' && e.grant_type === 'refresh_token' && e.resource === '$MCP_URL'")" = 1 ] \
    || fail "expected one refresh_token grant with resource=$MCP_URL: $(tool list "$D/server.log" "$mark" 'e.event' | tr '\n' ' ')" || return 1
  [ "$(log_count "$mark" "e.event === 'refresh_token_consumed'")" = 1 ] || fail "the provider did not consume the old refresh token" || return 1
  [ "$(log_count "$mark" "e.path === '/oidc/auth'")" = 0 ] || fail "an authorization request was made" || return 1
  st=$(mcp_status "$new_at")
  [ "$st" = 200 ] || fail "the refreshed token got $st at the MCP endpoint" || return 1
  ROTATED_AT=$new_at
  ROTATED_RT=$new_rt
  OLD_RT=$old_rt
}

s_refresh_reuse_relogin() {
  [ -n "${ROTATED_RT:-}" ] || fail "needs the refresh scenario" || return 1
  local tf mark before n st new_rt
  tf=$(tokens_file)
  # Roll the cache back: it holds the refresh token the provider has already rotated away.
  cp -p "$D/rollback.json" "$tf"
  mark=$(log_mark)
  before=$(launches)
  cli relogin -- token "$MCP_URL" --cache-dir "$CACHE" --timeout 60
  [ "$CLI_RC" = 0 ] || fail "token exited $CLI_RC: $(cli_error relogin)" || return 1
  n=$(( $(launches) - before ))
  [ "$n" = 1 ] || fail "the browser was launched $n times, expected once" || return 1
  driver_result relogin || return 1
  [ "$(tool get "$D/driver-relogin.json" d.heading)" = "Signed in" ] || fail "relogin page: $(tool get "$D/driver-relogin.json" d.heading)" || return 1
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

s_access_denied() {
  [ -n "${FIRST_LOGIN_OK:-}" ] || fail "needs the first login" || return 1
  local tf before n r="$D/driver-denied.json"
  tf=$(tokens_file)
  cp -p "$tf" "$D/before-denied.json"
  before=$(launches)
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
  [ -s "$OUT/denied.png" ] || fail "no screenshot $OUT/denied.png" || return 1
  cmp -s "$tf" "$D/before-denied.json" || fail "the cached tokens changed after a denied login" || return 1
}

# ---------------------------------------------------------------------------------------------
# Scenarios against the provider's documented OIDC defaults (`oidc-strict`).

s_strict_registration() {
  cli strict-dcr -- login "$MCP_URL" --cache-dir "$CACHE" --timeout 60
  if [ "$CLI_RC" != 0 ]; then
    fail "login exited $CLI_RC: $(cli_error strict-dcr | cut -c1-300)"
    return 1
  fi
  driver_result strict-dcr || return 1
}

s_strict_refresh_token() {
  local client tf auth
  client=$(tool register "$ISSUER/reg") || fail "could not pre-register a client" || return 1
  cli strict-offline -- login "$MCP_URL" --cache-dir "$WORK/strict/cache-preregistered" --client-id "$client" --timeout 60
  [ "$CLI_RC" = 0 ] || fail "login exited $CLI_RC: $(cli_error strict-offline)" || return 1
  driver_result strict-offline || return 1
  tf=$(ls "$WORK"/strict/cache-preregistered/*_tokens.json 2>/dev/null | head -1)
  [ -n "$tf" ] || fail "no token file" || return 1
  if [ -z "$(tool get "$tf" d.tokens.refresh_token)" ]; then
    auth=$(tool list "$D/server.log" 0 "e.path === '/oidc/auth' && e.params" | tail -1)
    echo "$auth" >"$D/auth.json"
    fail "no refresh token issued: the authorization request asked for scope \"$(tool get "$D/auth.json" d.scope)\" with prompt=$(tool get "$D/auth.json" 'd.prompt || "(none)"'), so the provider dropped offline_access (OIDC Core 1.0 §11 needs prompt=consent)"
    return 1
  fi
}

# ---------------------------------------------------------------------------------------------

say "node-oidc-provider (profile oauth) and the MCP endpoint on 127.0.0.1"
start_server oauth oauth
D="$WORK/oauth"
CACHE="$D/cache"
say "issuer $ISSUER, MCP endpoint $MCP_URL"

scenario first_login s_first_login
scenario discovery_and_registration s_discovery_and_registration
scenario authorization_request s_authorization_request
scenario mcp_accepts_token s_mcp_accepts_token
scenario cached_token s_cached_token
scenario refresh_rotation s_refresh_rotation
scenario refresh_reuse_relogin s_refresh_reuse_relogin
scenario access_denied s_access_denied

if [ "$STRICT" = 0 ]; then
  skip strict_registration_resource_scope "INTEROP_STRICT=0"
  skip strict_offline_access_refresh_token "INTEROP_STRICT=0"
else
  say "node-oidc-provider (profile oidc-strict: the provider's documented defaults)"
  start_server strict oidc-strict
  D="$WORK/strict"
  CACHE="$D/cache"
  scenario strict_registration_resource_scope s_strict_registration
  scenario strict_offline_access_refresh_token s_strict_refresh_token
fi

say "screenshots and logs in $OUT; $((SECONDS - STARTED)) s"
if [ "$SKIPPED" -gt 0 ]; then
  echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
else
  echo "$PASSED passed, $FAILED failed"
fi
[ "$FAILED" = 0 ]
