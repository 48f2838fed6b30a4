"""FastMCP's Python client, logged in with FastMCP's `OAuth` helper: the peer of
`examples/mcp_client.rs` in the peer benchmarks (`benches/peers/run.sh`).

    python fastmcp_client.py MCP_URL CACHE_DIR

Connects (`initialize` + `notifications/initialized`), lists the tools, and exits. Tokens and the
client registration persist in CACHE_DIR through a `FileTreeStore` (FastMCP's own CLI uses the
same store, wrapped in Fernet encryption; plain here, like this crate's cache). The browser is
replaced by an HTTP redirect follower: FastMCP's `redirect_handler` runs unchanged (including its
pre-flight GET of the authorization URL) and calls `webbrowser.open`, which is patched to follow
the authorization server's redirect into FastMCP's own callback server, as a browser whose user
approves at once would. Loopback only.
"""

import asyncio
import http.client
import os
import sys
import threading
import time
import urllib.parse
import warnings
import webbrowser

from fastmcp import Client
from fastmcp.client.auth import OAuth
from key_value.aio.stores.filetree import (
    FileTreeStore,
    FileTreeV1CollectionSanitizationStrategy,
    FileTreeV1KeySanitizationStrategy,
)

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _get(url: str, retry_refused: bool) -> tuple[int, str | None]:
    """One GET without following redirects; returns the status and Location."""
    u = urllib.parse.urlsplit(url)
    if u.hostname not in LOOPBACK:
        raise RuntimeError(f"the headless browser only visits loopback hosts, not {u.hostname}")
    path = u.path + ("?" + u.query if u.query else "")
    deadline = time.monotonic() + 10
    while True:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        try:
            conn.request("GET", path, headers={"User-Agent": "bench-browser"})
            resp = conn.getresponse()
            resp.read()
            return resp.status, resp.getheader("Location")
        except ConnectionRefusedError:
            # FastMCP starts its callback server only after opening the browser: a real user
            # is slower than that; this follower waits for it, polling every 2 ms.
            if not retry_refused or time.monotonic() > deadline:
                raise
            time.sleep(0.002)
        finally:
            conn.close()


def follow(url: str) -> None:
    try:
        hops = 0
        while url and hops < 10:
            status, location = _get(url, retry_refused=hops > 0)
            if not (300 <= status < 400 and location):
                return
            url = urllib.parse.urljoin(url, location)
            hops += 1
    except Exception as e:  # noqa: BLE001 - a browser shows errors, it does not raise them
        print(f"headless browser: {e}", file=sys.stderr)


def open_headless(url: str, *args, **kwargs) -> bool:
    threading.Thread(target=follow, args=(url,), daemon=True).start()
    return True


webbrowser.open = open_headless


async def main(url: str, cache_dir: str) -> None:
    os.makedirs(cache_dir, mode=0o700, exist_ok=True)  # as FastMCP's CLI does for its store
    store = FileTreeStore(
        data_directory=cache_dir,
        key_sanitization_strategy=FileTreeV1KeySanitizationStrategy(cache_dir),
        collection_sanitization_strategy=FileTreeV1CollectionSanitizationStrategy(cache_dir),
    )
    auth = OAuth(token_storage=store, client_name="FastMCP bench client")
    async with Client(url, auth=auth) as client:
        tools = await client.list_tools()
        print("tools:", [t.name for t in tools], file=sys.stderr)


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    asyncio.run(main(sys.argv[1], sys.argv[2]))
