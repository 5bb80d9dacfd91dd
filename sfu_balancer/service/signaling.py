"""``/ws``: participant signaling in JSON (documented in docs/protocol.md).

Rules:
- Every message is a JSON object with a string ``type``. Anything else — not JSON, too large,
  unknown type, missing or mistyped field — is answered with an ``error`` (``fatal`` false)
  and the connection stays open.
- One WebSocket carries one participant at a time; ``join`` again on the same socket is a
  rejoin (same participant id) after a ``rejoin`` hint or a failure.
- A ``join`` naming a ``participant`` this socket does not hold must carry that id's
  ``resume`` secret (service/resume.py): nobody takes over someone else's id.
- Closing the socket is leaving.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from typing import Any

import orjson
import structlog
from aiohttp import WSMsgType, web

from .abuse import TokenBucket
from .guard import Guard, Refused
from .keys import GUARD, LIVENESS, ROUTER, SOCKETS
from .router import JoinRefused, Router

log = structlog.get_logger(__name__)

ROOM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
PARTICIPANT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_SDP_CHARS = 64 * 1024
# aiohttp closes the socket (1009) on a frame over its own limit, before any handler sees it.
# Set well above max_message_bytes, so that a message somewhat too large is answered with a
# too_large error here (and counted) instead.
FRAME_SLACK_BYTES = 4096


def frame_limit(max_message_bytes: int) -> int:
    return 2 * max_message_bytes + FRAME_SLACK_BYTES


def too_large(raw: str, limit: int) -> bool:
    """Is ``raw``, UTF-8 encoded, over ``limit`` bytes? (Encodes only when it may be.)"""
    return len(raw) > limit or (len(raw) * 4 > limit and len(raw.encode()) > limit)
# Errors after which retrying the same join cannot succeed (the page stops and explains).
FATAL = frozenset({"capacity", "quota", "forbidden", "no_bridge", "room_full"})


class BadMessage(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _field(message: dict[str, Any], name: str, kind: type, *, required: bool = True) -> Any:
    value = message.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise BadMessage("bad_request", f"field {name!r} must be a {kind.__name__}")
    return value


def message_type(raw: str) -> str:
    """The ``type`` of a raw message, or "" when it has none (for ``about`` in errors)."""
    try:
        message = orjson.loads(raw)
    except ValueError:  # orjson.JSONDecodeError is one
        return ""
    kind = message.get("type") if isinstance(message, dict) else None
    return kind[:32] if isinstance(kind, str) else ""


class ParticipantSocket:
    def __init__(self, ws: web.WebSocketResponse, router: Router, guard: Guard,
                 remote: str | None) -> None:
        self.ws = ws
        self.router = router
        self.guard = guard
        self.remote = remote
        self.room: str | None = None
        self.participant: str | None = None
        self.identity: str | None = None  # the token's sub that got self.participant
        # Set when the balancer sends ``rejoin``: the join it asked for is not charged to the
        # address's join rate, or every participant behind one NAT (a school, a hospital)
        # would be refused at once after a bridge failure or a drain.
        self.rejoin_owed = False
        limits = router.settings.limits
        # This socket's message rate: one bucket (None = no limit), not a keyed RateLimiter.
        self.messages = (TokenBucket(limits.ws_messages_per_s, float(limits.ws_burst),
                                     float(limits.ws_burst), router.clock())
                         if limits.ws_messages_per_s > 0 else None)

    async def send(self, message: dict[str, Any]) -> None:
        # No lock of our own: aiohttp writes each frame whole, in call order (its writer
        # serialises the compressed ones), so concurrent sends never interleave.
        if self.ws.closed:
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            # orjson: a 3 KiB SDP encodes in 1 us instead of 12 (json); compact, UTF-8 as is
            await self.ws.send_str(orjson.dumps(message).decode())

    async def rejoin(self, reason: str) -> None:
        self.rejoin_owed = True
        await self.send({"type": "rejoin", "reason": reason})

    async def error(self, code: str, message: str, *, fatal: bool = False,
                    about: str = "") -> None:
        """``about`` names the type of the refused message, when it could be read."""
        self.router.metrics.ws_errors.labels(code).inc()
        await self.send({"type": "error", "code": code, "message": message, "fatal": fatal,
                         "about": about})

    async def handle(self, raw: str) -> None:
        if self.messages is not None and not self.messages.take(self.router.clock()):
            raise self.guard.refuse("rate_limited", "too many messages; slow down")
        limit = self.router.settings.max_message_bytes
        if too_large(raw, limit):
            self.router.metrics.refusals.labels("too_large").inc()
            raise BadMessage("too_large", f"message over {limit} bytes")
        try:
            # orjson: strict JSON (no NaN), nesting limited, 2-3x faster than json on an SDP
            message = orjson.loads(raw)
        except ValueError:  # orjson.JSONDecodeError is one
            raise BadMessage("bad_request", "message is not JSON") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise BadMessage("bad_request", "message must be an object with a string 'type'")
        kind = message["type"]
        if kind == "join":
            await self._join(message)
        elif kind == "answer":
            if self.room is None or self.participant is None:
                raise BadMessage("bad_request", "answer before join")
            sdp = _field(message, "sdp", str)
            seq = _field(message, "seq", int)
            try:
                await self.router.answer(self.room, self.participant, sdp, seq)
            except JoinRefused as exc:
                raise BadMessage(exc.code, exc.message) from None
        elif kind == "leave":
            await self.leave()
            await self.send({"type": "left"})
        elif kind == "ping":
            await self.send({"type": "pong"})
        else:
            raise BadMessage("bad_request", f"unknown message type {kind!r}")

    async def _join(self, message: dict[str, Any]) -> None:
        started = time.perf_counter()
        room = _field(message, "room", str)
        sdp = _field(message, "sdp", str)
        requested = _field(message, "participant", str, required=False)
        token = _field(message, "token", str, required=False)
        resume = _field(message, "resume", str, required=False)
        if not ROOM_NAME.match(room):
            raise BadMessage("bad_request", "room names are 1-64 letters, digits, '.', '_' or "
                                            "'-', starting with a letter or digit")
        if len(sdp) > MAX_SDP_CHARS or "v=0" not in sdp:
            raise BadMessage("bad_request", "sdp must be an SDP offer")
        if requested is not None and not PARTICIPANT_ID.match(requested):
            raise BadMessage("bad_request", "participant ids are 1-64 letters, digits, _ or -")
        grant = self.guard.check_join(self.remote, room, token)
        holds = (self.room, self.participant, self.identity) == (room, requested, grant.identity)
        resumed = requested is not None and not holds
        if resumed:
            # Resuming from another socket (a dropped one, another instance): prove the id.
            self.guard.check_resume(room, requested or "", grant.identity, resume)
        # Neither a rejoin the balancer asked for nor a proven resume is a new join.
        if not (self.rejoin_owed or resumed):
            self.guard.check_join_rate(self.remote)
        self.rejoin_owed = False
        if self.room is not None and self.room != room:
            await self.leave()
        # A rejoin on this socket keeps the id; a fresh socket resumes one with its secret.
        # A new id is 48 random bits in hex (12 characters).
        same = self.identity == grant.identity
        participant = requested or (self.participant if same else None) or secrets.token_hex(6)
        self.room, self.participant, self.identity = room, participant, grant.identity
        try:
            joined = await self.router.join(self, room, participant, sdp,
                                            tier=grant.tier, tenant=grant.tenant)
        except JoinRefused as exc:
            # A participant already in the call keeps retrying while bridges come back.
            fatal = exc.code in FATAL and not (exc.code == "no_bridge" and requested)
            await self.error(exc.code, exc.message, fatal=fatal, about="join")
            return
        self.router.metrics.join_seconds.observe(time.perf_counter() - started)
        await self.send({"type": "joined", "room": room, "participant": joined.participant,
                         "bridge": joined.bridge, "sdp": joined.sdp,
                         "resume": self.guard.resume.issue(room, joined.participant,
                                                           grant.identity)})

    async def leave(self) -> None:
        if self.room is not None and self.participant is not None:
            await self.router.leave(self.room, self.participant, self)
        self.room = None


async def websocket_handler(request: web.Request) -> web.StreamResponse:
    router: Router = request.app[ROUTER]
    guard = request.app[GUARD]
    try:
        guard.check_connection(request.remote)
    except Refused as exc:
        status = 429 if exc.code == "rate_limited" else 403
        return web.json_response({"code": exc.code, "message": exc.message}, status=status)
    # No heartbeat= nor autoping: liveness.py pings silent sockets in one sweep, and pings
    # are answered below (aiohttp's heartbeat costs a timer per socket and a callback per read).
    # No permessage-deflate (browsers offer it): its zlib state is ~100 KiB per held socket and
    # it deflates every frame, to save a few KiB per join.
    ws = web.WebSocketResponse(autoping=False, compress=False,
                               max_msg_size=frame_limit(router.settings.max_message_bytes))
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    peer = request.app[LIVENESS].add(ws, request.transport)
    socket = ParticipantSocket(ws, router, guard, request.remote)
    tasks: set[asyncio.Task[None]] = set()

    async def run(raw: str) -> None:
        try:
            await socket.handle(raw)
        except BadMessage as exc:
            await socket.error(exc.code, exc.message, about=message_type(raw))
        except Refused as exc:  # already counted by the guard
            await socket.send({"type": "error", "code": exc.code, "message": exc.message,
                               "fatal": exc.code in FATAL, "about": message_type(raw)})
        except Exception:
            log.exception("ws_message_failed")
            await socket.error("internal", "internal error", about=message_type(raw))

    try:
        async for frame in ws:
            peer.active = True
            if frame.type == WSMsgType.TEXT:
                # joins wait on bridges; answers and pings must not queue behind them
                task = asyncio.create_task(run(frame.data))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            elif frame.type == WSMsgType.BINARY:
                await socket.error("bad_request", "send JSON text frames")
            elif frame.type == WSMsgType.PING:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.pong(frame.data)
            elif frame.type != WSMsgType.PONG:
                break
    finally:
        request.app[LIVENESS].discard(peer)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await socket.leave()
    return ws
