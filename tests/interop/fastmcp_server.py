"""FastMCP as a Python MCP server author sets it up: with its built-in OAuth provider, or as
a resource server in front of another product's authorization server.

The authorization server is FastMCP's ``InMemoryOAuthProvider``: the MCP Python SDK's
authorization routes (metadata, dynamic registration, ``/authorize`` that approves at once,
``/token`` with PKCE and rotating refresh tokens, ``/revoke``) on the same origin as the MCP
endpoint ``/mcp``, which serves one tool, ``add``. Nothing of FastMCP is changed: the one
setting this script touches is the provider module's access token lifetime
(``DEFAULT_ACCESS_TOKEN_EXPIRY_SECONDS``, read at each token issue), so that a refresh after a
real expiry fits in the run. The same script serves FastMCP 2.14 (run.sh's ``fastmcp-2.14``,
its own venv), whose provider module has the same setting.

With INTEROP_ISSUER set, FastMCP is a resource server only (FastMCP 4.x): its ``JWTVerifier``
checks the JWT access tokens of the authorization server at INTEROP_ISSUER by signature (the
server's JWKS at INTEROP_JWKS), issuer and audience (the MCP URL) and the scope ``mcp``, and its
``RemoteAuthProvider`` names that authorization server in the protected resource metadata. It
takes the ``Bearer`` scheme only and says nothing of DPoP.

Usage: ``python fastmcp_server.py`` with INTEROP_DIR (``server.json`` with the URLs is written
there once listening, and ``server.log``, one JSON line per request: method, path, status, the
User-Agent's product and the Authorization scheme, an MCP request's JSON-RPC method and the
order of arrivals and answers; no query strings, no bodies, no tokens), INTEROP_AT_TTL (seconds,
default 3600) and INTEROP_TRANSPORT (``http``, the default: Streamable HTTP at ``/mcp``;
``sse``: FastMCP's HTTP+SSE transport of protocol revision 2024-11-05 at ``/sse``, messages
POSTed to ``/messages/``). Binds 127.0.0.1 on INTEROP_PORT, or on a free port.
"""

import json
import os
import socket
import time

import uvicorn
from fastmcp import FastMCP

DIR = os.environ["INTEROP_DIR"]
LOG = os.path.join(DIR, "server.log")
ISSUER = os.environ.get("INTEROP_ISSUER")
TRANSPORT = os.environ.get("INTEROP_TRANSPORT", "http")
PATH = "/sse" if TRANSPORT == "sse" else "/mcp"

sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", int(os.environ.get("INTEROP_PORT", "0"))))
# Listening before server.json exists: a client that reads it is queued, never refused.
sock.listen(128)
port = sock.getsockname()[1]
origin = f"http://127.0.0.1:{port}"

if ISSUER:
    from fastmcp.server.auth import RemoteAuthProvider
    from fastmcp.server.auth.providers.jwt import JWTVerifier

    verifier = JWTVerifier(
        jwks_uri=os.environ["INTEROP_JWKS"],
        issuer=ISSUER,
        audience=f"{origin}{PATH}",
        required_scopes=["mcp"],
    )
    # The issuer as a plain string: a URL object would gain a trailing slash, and the metadata
    # would name another issuer than the one the authorization server has.
    auth = RemoteAuthProvider(token_verifier=verifier, authorization_servers=[ISSUER], base_url=origin)
    issuer = ISSUER
else:
    from fastmcp.server.auth.providers import in_memory
    from fastmcp.server.auth.providers.in_memory import InMemoryOAuthProvider
    from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions

    in_memory.DEFAULT_ACCESS_TOKEN_EXPIRY_SECONDS = int(os.environ.get("INTEROP_AT_TTL", "3600"))
    auth = InMemoryOAuthProvider(
        base_url=origin,
        client_registration_options=ClientRegistrationOptions(
            enabled=True, valid_scopes=["mcp:tools"], default_scopes=["mcp:tools"]
        ),
        revocation_options=RevocationOptions(enabled=True),
        required_scopes=["mcp:tools"],
    )
    issuer = f"{origin}/"
mcp = FastMCP("interop-fastmcp", auth=auth)


@mcp.tool
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


def log(entry):
    with open(LOG, "a", encoding="utf-8") as f:
        f.write(json.dumps({"t": int(time.time() * 1000), **entry}) + "\n")


class RequestLog:
    """ASGI middleware: one log line per HTTP request once its status is known.

    Requests and answers are numbered in the order this server saw them (``seq_in`` when the
    request arrived, ``seq`` when its answer started), and an MCP POST also logs its JSON-RPC
    method (read from the body, which is then handed on unchanged): the run can tell whether a
    client's message left before the answer to the one before it had come back.
    """

    def __init__(self, app):
        self.app = app
        self.seq = 0

    def next_seq(self):
        self.seq += 1
        return self.seq

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        seq_in = self.next_seq()
        headers = dict(scope["headers"])
        agent = headers.get(b"user-agent", b"").decode("latin-1")
        # The Authorization scheme alone (Bearer, DPoP), never the token.
        scheme = headers.get(b"authorization", b"").decode("latin-1").split(" ")[0]
        entry = {"method": scope["method"], "path": scope["path"], "ua": agent.split("/")[0], "scheme": scheme}
        if scope["method"] == "POST" and scope["path"] in ("/mcp", "/messages/"):
            entry["seq_in"] = seq_in
            receive, entry["rpc"] = await self.peek_rpc_method(receive)

        async def send_logged(message):
            if message["type"] == "http.response.start":
                log({**entry, "status": message["status"], "seq": self.next_seq()})
            await send(message)

        return await self.app(scope, receive, send_logged)

    @staticmethod
    async def peek_rpc_method(receive):
        """The JSON-RPC method of the request body (no params: they may carry anything), and a
        receive function that hands the app the same body."""
        messages = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages)
        try:
            parsed = json.loads(body)
            method = parsed.get("method") if isinstance(parsed, dict) else "(batch)"
        except ValueError:
            method = "(not JSON)"

        async def replay():
            if messages:
                return messages.pop(0)
            return await receive()

        return replay, method


app = RequestLog(mcp.http_app(path=PATH, transport=TRANSPORT))
with open(os.path.join(DIR, "server.json"), "w", encoding="utf-8") as f:
    json.dump(
        {
            "pid": os.getpid(),
            "origin": origin,
            "issuer": issuer,
            "mcp": f"{origin}{PATH}",
            "prm": f"{origin}/.well-known/oauth-protected-resource{PATH}",
        },
        f,
    )
config = uvicorn.Config(app, log_level="warning", lifespan="on")
uvicorn.Server(config).run(sockets=[sock])
