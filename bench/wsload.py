"""A minimal WebSocket client (RFC 6455) for load generation: cheap enough that one core of
clients can keep a balancer's core busy, which aiohttp's client cannot.

It speaks just what ``/ws`` needs: the upgrade handshake (its ``Sec-WebSocket-Accept`` is
checked), masked text frames out, unmasked text/ping/close frames in, a clean close. No
extensions are offered (no permessage-deflate), no fragmentation. Each text message is stamped
with ``time.perf_counter()`` when its bytes arrive (in ``data_received``), so a latency read
from it does not include the time the waiting coroutine took to be scheduled.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import struct
import time
from collections import deque
from typing import cast

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


def frame(opcode: int, payload: bytes) -> bytes:
    """One final, masked client frame (a fresh random mask per frame, as RFC 6455 asks)."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    key = os.urandom(4)
    stream = (key * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "little") ^ int.from_bytes(stream, "little"))
    return header + key + masked.to_bytes(n, "little")


class RawSocket(asyncio.Protocol):
    def __init__(self, key: bytes) -> None:
        loop = asyncio.get_running_loop()
        self.accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded: asyncio.Future[None] = loop.create_future()
        self.messages: deque[tuple[float, str]] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError("connection closed"))

    def _fail(self, exc: Exception) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(exc)
        if not self.closed.done():
            self.closed.set_result(None)
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        arrived = time.perf_counter()
        self.buffer += data
        if not self.upgraded.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            del self.buffer[:end + 4]
            accepted = b"\r\nsec-websocket-accept: " + self.accept
            if not head.startswith(b"HTTP/1.1 101") or accepted.lower() not in head.lower():
                self._fail(ConnectionError(f"no upgrade: {head[:80]!r}"))
                return
            self.upgraded.set_result(None)
        self._frames(arrived)

    def _frames(self, arrived: float) -> None:
        buf = self.buffer
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            size, start = b1 & 0x7F, 2
            if b1 & 0x80 or not b0 & 0x80:
                self._fail(ConnectionError("masked or fragmented frame from the server"))
                return
            if size == 126:
                if len(buf) < 4:
                    return
                size, start = struct.unpack_from("!H", buf, 2)[0], 4
            elif size == 127:
                if len(buf) < 10:
                    return
                size, start = struct.unpack_from("!Q", buf, 2)[0], 10
            if len(buf) < start + size:
                return
            payload = bytes(buf[start:start + size])
            del buf[:start + size]
            opcode = b0 & 0x0F
            if opcode == TEXT:
                self.messages.append((arrived, payload.decode()))
                self._wake()
            elif opcode == PING and self.transport is not None:
                self.transport.write(frame(PONG, payload))
            elif opcode == CLOSE:
                if not self.closed.done():
                    self.closed.set_result(None)
                self._wake()

    def send(self, message: str) -> None:
        if self.transport is None or self.transport.is_closing():
            raise ConnectionError("socket closed")
        self.transport.write(frame(TEXT, message.encode()))

    async def receive(self, wanted: str, limit_s: float = 30.0
                      ) -> tuple[float, dict[str, object]]:
        """(arrival time, message) of the next message of type ``wanted``; an ``error`` message
        raises RuntimeError(code), a closed socket ConnectionError."""
        deadline = time.monotonic() + limit_s
        while True:
            while self.messages:
                arrived, raw = self.messages.popleft()
                data: dict[str, object] = json.loads(raw)
                if data["type"] == wanted:
                    return arrived, data
                if data["type"] == "error":
                    raise RuntimeError(str(data.get("code")))
            if self.closed.done():
                raise ConnectionError(f"socket closed waiting for {wanted}")
            self.waiter = asyncio.get_running_loop().create_future()
            await asyncio.wait_for(self.waiter, max(0.0, deadline - time.monotonic()))

    async def close(self, limit_s: float = 10.0) -> None:
        """Close handshake: send close (1000), wait for the server's, then drop the TCP."""
        if self.transport is None:
            return
        if not self.closed.done() and not self.transport.is_closing():
            self.transport.write(frame(CLOSE, struct.pack("!H", 1000)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.closed), limit_s)
        self.transport.close()


async def connect(host: str, port: int, path: str = "/ws", limit_s: float = 30.0) -> RawSocket:
    key = base64.b64encode(os.urandom(16))
    loop = asyncio.get_running_loop()
    _, sock = await loop.create_connection(lambda: RawSocket(key), host, port)
    assert sock.transport is not None
    sock.transport.write(
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + f"{host}:{port}".encode()
        + b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key
        + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    try:
        await asyncio.wait_for(sock.upgraded, limit_s)
    except BaseException:
        sock.transport.close()
        raise
    return sock
