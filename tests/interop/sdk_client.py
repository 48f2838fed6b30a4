"""The MCP Python SDK's own client (``mcp.client.Client``, the version pinned in
requirements.txt) as a stdio MCP client of ``mcp-oauth proxy URL``: it starts the bridge as a
local server, negotiates in the mode given, lists the tools and calls one. Prints one JSON line:
the protocol version the session speaks, the tool names, the tool's text result.

Usage: ``python sdk_client.py MODE TOOL ARGS_JSON -- PROXY_COMMAND...`` where MODE is ``auto``,
``legacy`` or a protocol revision (``2026-07-28``). Exits non-zero on any failure, with the
error on stderr. Bounded: 60 s in all.
"""

import asyncio
import json
import sys

from mcp.client import Client
from mcp.client.stdio import StdioServerParameters


async def main():
    mode, tool, arguments = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    command = sys.argv[sys.argv.index("--") + 1 :]
    server = StdioServerParameters(command=command[0], args=command[1:])
    async with Client(server, mode=mode, raise_exceptions=True) as client:
        tools = await client.list_tools()
        result = await client.call_tool(tool, arguments)
        text = [c.text for c in result.content if getattr(c, "type", "") == "text"]
        version = getattr(client.session, "protocol_version", None)
        print(json.dumps({
            "protocol_version": str(version) if version is not None else None,
            "tools": [t.name for t in tools.tools],
            "text": text,
            "is_error": bool(result.is_error),
        }))


asyncio.run(asyncio.wait_for(main(), 60))
