#!/usr/bin/env bash
# The BROWSER of the interop run. The client's webbrowser::open runs "$BROWSER URL" (webbrowser
# tries $BROWSER first on Linux, spawns it in the background with its output sent to /dev/null,
# and does not wait for it). This launcher records the invocation, starts the driver (headless
# Chromium) in the background with its pid in $INTEROP_DIR, and returns at once; the client is
# then waiting on its loopback listener for the redirect.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${INTEROP_DIR:?INTEROP_DIR is not set}
label=${INTEROP_LABEL:-login}
url=${1:?usage: launcher.sh URL}
# One line per invocation: time, label, and the URL without its query or the one-time launch
# path (state, PKCE and the launch nonce stay out).
shown=${url%%\?*}
shown=${shown%%/start/*}
printf '%s %s %s\n' "$(date +%s)" "$label" "$shown" >> "$dir/launches"
nohup node "$here/driver.mjs" "$url" > "$dir/driver-$label.log" 2>&1 < /dev/null &
printf '%s\n' "$!" > "$dir/driver-$label.pid"
