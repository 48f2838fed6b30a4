"""Runs a Python server module as published, with a request log for the interop run.

The MCP Python SDK's ``simple-auth`` example (its authorization server and its resource
server, taken from the ``mcp`` sdist by run.sh) starts uvicorn itself; this wrapper is the
Python counterpart of ``ts_preload.cjs``: before the module runs, every ASGI app handed to
``uvicorn.Config`` is wrapped in a middleware that writes one JSON line per HTTP request to
``$INTEROP_DIR/server.log`` (``srv`` from INTEROP_SRV, method, path without the query, status,
the User-Agent's product and the Authorization scheme; no bodies, no tokens). Nothing else of
the module changes: it binds what it binds (the example says ``localhost``, which uvicorn binds
as 127.0.0.1 only).

Usage: ``python asgi_log.py MODULE [ARGS...]`` (the module runs as ``python -m MODULE ARGS``).
"""

import json
import os
import runpy
import sys
import time

import uvicorn

LOG = os.path.join(os.environ["INTEROP_DIR"], "server.log")
SRV = os.environ.get("INTEROP_SRV", "")


def log(entry):
    with open(LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps({"t": int(time.time() * 1000), "srv": SRV, **entry}) + "\n")


class RequestLog:
    """ASGI middleware: one log line per HTTP request once its status is known."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        agent = headers.get(b"user-agent", b"").decode("latin-1")
        scheme = headers.get(b"authorization", b"").decode("latin-1").split(" ")[0]
        entry = {"method": scope["method"], "path": scope["path"], "ua": agent.split("/")[0], "scheme": scheme}

        async def send_logged(message):
            if message["type"] == "http.response.start":
                log({**entry, "status": message["status"]})
            await send(message)

        return await self.app(scope, receive, send_logged)


original_init = uvicorn.Config.__init__


def logged_init(self, app, *args, **kwargs):
    if isinstance(app, str):
        raise SystemExit("asgi_log.py: the module hands uvicorn an import string, not an app")
    original_init(self, RequestLog(app), *args, **kwargs)


uvicorn.Config.__init__ = logged_init

if len(sys.argv) < 2:
    raise SystemExit("usage: python asgi_log.py MODULE [ARGS...]")
module = sys.argv[1]
sys.argv = [module, *sys.argv[2:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
