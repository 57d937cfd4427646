#!/usr/bin/env python3
"""Call a node viewer's MCP tools with the official MCP client library.

    kubectl -n monitoring port-forward pod/<monitor pod> 8050:8050 &
    python examples/mcp/call.py http://127.0.0.1:8050/mcp                  # list the tools
    python examples/mcp/call.py http://127.0.0.1:8050/mcp top_containers   # call one, no arguments
    python examples/mcp/call.py http://127.0.0.1:8050/mcp container_summary '{"container": "checkout"}'

Prints one JSON object: {"tools": [...]} or {"tool": name, "is_error": bool, "result": ...}.
Needs the package in requirements.txt. An assistant (Claude Desktop, an IDE) is pointed at
the same URL as a "streamable HTTP" server.
"""
import asyncio
import json
import sys

from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client


async def main(url: str, tool: str | None, args: dict) -> dict:
    async with streamablehttp_client(url) as (read, write, _):
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
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    tool = sys.argv[2] if len(sys.argv) > 2 else None
    args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    print(json.dumps(asyncio.run(main(sys.argv[1], tool, args))))
