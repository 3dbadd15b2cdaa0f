"""`schedcpctl mcp`: the SchedCP tools over MCP (stdio, or streamable HTTP on loopback).

The tool list comes from the one registry (``schedcpd.tools.REGISTRY``); every call goes to
the daemon over D-Bus (``CallTool``), so it runs with the calling user's identity and the
daemon decides what that user may do. This process never needs root. A daemon refusal
becomes an MCP tool error whose text starts with the error kind (``NotFound: ...``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

from schedcpd.client import DaemonClient, DaemonUnavailable
from schedcpd.errors import RequestError
from schedcpd.tools import REGISTRY, Tool

# An agent's context is the scarce resource: no tool answer may flood it.
MAX_OUTPUT_CHARS = 64 * 1024
INSTRUCTIONS = ("SchedCP: observe workloads and the running CPU scheduler, propose verified "
                "sched_ext schedulers and follow their deployment. Tools that change the "
                "system need the daemon's permission for your user.")


def mcp_tool(tool: Tool) -> types.Tool:
    return types.Tool(
        name=tool.name, description=tool.description, input_schema=tool.schema,
        annotations=types.ToolAnnotations(read_only_hint=not tool.mutating,
                                          destructive_hint=tool.mutating,
                                          open_world_hint=False))


def success(value: Any) -> types.CallToolResult:
    text = json.dumps(value, sort_keys=True)
    if len(text) > MAX_OUTPUT_CHARS:
        note = (f"\n[output truncated: {len(text)} characters, first {MAX_OUTPUT_CHARS} "
                "shown; ask for less, e.g. a smaller limit]")
        return types.CallToolResult(content=[types.TextContent(
            text=text[:MAX_OUTPUT_CHARS] + note)])
    structured = value if isinstance(value, dict) else {"result": value}
    return types.CallToolResult(content=[types.TextContent(text=text)],
                                structured_content=structured)


def failure(kind: str, message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=f"{kind}: {message}")],
                                structured_content={"error": kind, "message": message},
                                is_error=True)


class DaemonLink:
    """One D-Bus connection to the daemon, made on first use and again after it broke."""

    def __init__(self, bus: str) -> None:
        self.bus = bus
        self._client: DaemonClient | None = None

    async def call(self, name: str, args: dict[str, Any]) -> Any:
        if self._client is None:
            self._client = await DaemonClient.connect(self.bus)
        try:
            return await self._client.tool(name, **args)
        except DaemonUnavailable:
            self.close()
            raise

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def build_server(link: DaemonLink) -> Server[Any]:
    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None
                         ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[mcp_tool(t) for t in REGISTRY.tools()])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams
                        ) -> types.CallToolResult:
        try:
            # Checked here too, so a bad input is answered without a round trip.
            args = params.arguments or {}
            REGISTRY.get(params.name).check(args)
            return success(await link.call(params.name, args))
        except DaemonUnavailable as exc:
            return failure("Unavailable", f"{exc.message} (is schedcpd running on the "
                                          f"{link.bus} bus?)")
        except RequestError as exc:
            return failure(exc.kind, exc.message)

    return Server("schedcp", version=_version(), instructions=INSTRUCTIONS,
                  on_list_tools=list_tools, on_call_tool=call_tool)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("schedcp")
    except PackageNotFoundError:
        return "0"


async def serve_stdio(bus: str) -> None:
    link = DaemonLink(bus)
    server = build_server(link)
    try:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
    finally:
        link.close()


async def serve_http(bus: str, port: int) -> None:
    import uvicorn

    link = DaemonLink(bus)
    app = build_server(link).streamable_http_app(host="127.0.0.1")
    # Loopback only: the daemon authorizes by the uid of this process, so anyone who can
    # reach the port acts as this user.
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    try:
        await uvicorn.Server(config).serve()
    finally:
        link.close()


def run(args: argparse.Namespace) -> int:
    """`schedcpctl mcp` (registered by schedcpd.cli_client, which imports this lazily)."""
    if args.http:
        print(f"schedcp MCP: http://127.0.0.1:{args.port}/mcp (daemon on the {args.bus} bus)",
              file=sys.stderr)
        asyncio.run(serve_http(args.bus, args.port))
    else:
        asyncio.run(serve_stdio(args.bus))
    return 0
