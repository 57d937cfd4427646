#!/usr/bin/env python3
"""Call fine-grained-monitor's MCP tools with the official MCP client library.

A node's viewer (streamable HTTP):

    kubectl -n monitoring port-forward pod/<monitor pod> 8050:8050 &
    python examples/mcp/call.py http://127.0.0.1:8050/mcp                  # list the tools
    python examples/mcp/call.py http://127.0.0.1:8050/mcp top_containers   # call one, no arguments
    python examples/mcp/call.py http://127.0.0.1:8050/mcp container_summary '{"container": "checkout"}'

The whole cluster (`kubectl fgm mcp` on stdin/stdout, started by the client):

    python examples/mcp/call.py --stdio "kubectl fgm mcp" top_containers

Prints one JSON object: {"tools": [...]} or {"tool": name, "is_error": bool, "result": ...}.
Needs the package in requirements.txt. An assistant (Claude Desktop, an IDE) is pointed at
the same URL as a "streamable HTTP" server.
"""
import asyncio
import contextlib
import json
import shlex
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client


@contextlib.asynccontextmanager
async def connect(server: str, stdio: bool):
    if stdio:
        command = shlex.split(server)
        params = StdioServerParameters(command=command[0], args=command[1:])
        async with stdio_client(params) as (read, write):
            yield read, write
    else:
        async with streamablehttp_client(server) as (read, write, _):
            yield read, write


async def main(server: str, stdio: bool, tool: str | None, args: dict) -> dict:
    async with connect(server, stdio) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            if tool is None:
                listed = await session.list_tools()
                return {
                    "server": init.serverInfo.name,
                    "protocol": init.protocolVersion,
                    "tools": [{"name": t.name, "description": t.description,
                               "input": t.inputSchema} for t in listed.tools],
                }
            result = await session.call_tool(tool, args)
            text = "".join(c.text for c in result.content if c.type == "text")
            try:
                body = json.loads(text)
            except ValueError:
                body = text
            return {"tool": tool, "is_error": result.isError, "result": body}


if __name__ == "__main__":
    argv = sys.argv[1:]
    stdio = bool(argv) and argv[0] == "--stdio"
    if stdio:
        argv = argv[1:]
    if not argv:
        sys.exit(__doc__)
    tool = argv[1] if len(argv) > 1 else None
    args = json.loads(argv[2]) if len(argv) > 2 else {}
    print(json.dumps(asyncio.run(main(argv[0], stdio, tool, args))))
