"""One bridge's WebSocket link at ``/bridge``: requests with replies, and messages it pushes.

Rules:
- The first frame must be ``hello`` within ``HELLO_TIMEOUT_S``; anything else closes the link.
- Every undecodable or unexpected frame gets an ``error`` reply and the link stays open.
- ``request`` pairs a command with its reply through ``req``; an ``error`` reply raises
  ``BridgeCommandError``; a closed link or a timeout raises ``BridgeUnavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import WSMsgType, web

from sfu_balancer import wire

log = structlog.get_logger(__name__)

HELLO_TIMEOUT_S = 10.0


class BridgeUnavailable(Exception):
    """The bridge did not answer: its link is closed or it timed out."""


class BridgeCommandError(Exception):
    def __init__(self, error: wire.Error) -> None:
        super().__init__(f"{error.code}: {error.reason}")
        self.code = error.code
        self.reason = error.reason


Handler = Callable[["BridgeLink", wire.Message], Awaitable[None]]


class BridgeLink:
    def __init__(self, ws: web.WebSocketResponse, hello: wire.Hello) -> None:
        self.ws = ws
        self.hello = hello
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[wire.Message]] = {}
        self.closed = asyncio.Event()

    @property
    def bridge_id(self) -> str:
        return self.hello.id

    async def send(self, message: wire.Message) -> None:
        if self.ws.closed:
            raise BridgeUnavailable(f"link to {self.bridge_id} is closed")
        try:
            await self.ws.send_bytes(wire.encode(message))
        except (ConnectionError, RuntimeError) as exc:
            raise BridgeUnavailable(f"link to {self.bridge_id}: {exc}") from exc

    async def request(self, build: Callable[[int], wire.Message], limit_s: float) -> wire.Message:
        req = next(self._ids)
        future: asyncio.Future[wire.Message] = asyncio.get_running_loop().create_future()
        self._waiting[req] = future
        try:
            await self.send(build(req))
            # A timeout or a cancellation cancels ``future`` too: it is dropped from _waiting
            # below, and _resolve skips done futures (cheaper than wait_for(shield(...))).
            async with asyncio.timeout(limit_s):
                reply = await future
        except TimeoutError as exc:
            raise BridgeUnavailable(f"{self.bridge_id} did not answer in {limit_s} s") from exc
        finally:
            self._waiting.pop(req, None)
        if isinstance(reply, wire.Error):
            raise BridgeCommandError(reply)
        return reply

    def _resolve(self, message: wire.Message) -> bool:
        req = getattr(message, "req", None)
        future = self._waiting.get(req) if isinstance(req, int) else None
        if future is None or future.done():
            return False
        future.set_result(message)
        return True

    async def serve(self, on_message: Handler) -> None:
        """Read frames until the link closes; replies resolve requests, the rest go to
        ``on_message``."""
        try:
            async for frame in self.ws:
                if frame.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    break
                data = frame.data if frame.type == WSMsgType.BINARY else frame.data.encode()
                try:
                    message = wire.decode(data)
                except wire.WireError as exc:
                    log.warning("bridge_frame_refused", bridge=self.bridge_id, error=str(exc))
                    await self._safe_send(wire.error_reply(exc))
                    continue
                if self._resolve(message):
                    continue
                try:
                    await on_message(self, message)
                except Exception as exc:  # one bad message never takes the link down
                    log.exception("bridge_message_failed", bridge=self.bridge_id,
                                  type=message.TYPE)
                    await self._safe_send(wire.Error(code=wire.ErrorCode.INTERNAL,
                                                     reason=str(exc), about=message.TYPE))
        finally:
            self.closed.set()
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(BridgeUnavailable(f"link to {self.bridge_id} closed"))

    async def _safe_send(self, message: wire.Message) -> None:
        with contextlib.suppress(BridgeUnavailable):
            await self.send(message)

    async def close(self) -> None:
        await self.ws.close()


async def read_hello(ws: web.WebSocketResponse) -> wire.Hello | None:
    """The link's first frame, if it is a valid hello in time; otherwise answer and give up."""
    try:
        frame = await ws.receive(timeout=HELLO_TIMEOUT_S)
    except TimeoutError:
        return None
    if frame.type != WSMsgType.BINARY:
        return None
    try:
        message = wire.decode(frame.data)
    except wire.WireError as exc:
        await ws.send_bytes(wire.encode(wire.error_reply(exc)))
        return None
    if not isinstance(message, wire.Hello):
        await ws.send_bytes(wire.encode(wire.Error(
            code=wire.ErrorCode.MALFORMED, reason="the first frame must be hello",
            about=message.TYPE)))
        return None
    return message


def report_fields(report: wire.Report) -> dict[str, Any]:
    return {name: getattr(report, name) for name in (
        "cpu", "host_cpu", "bytes_in_per_s", "bytes_out_per_s", "packets_in_per_s",
        "packets_out_per_s", "participants", "rooms", "relay_streams")}
