"""The balancer's aiohttp application: routes, bridge links and the periodic loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from sfu_balancer import wire
from sfu_balancer.core.decide import warm_up
from sfu_balancer.hello_auth import HelloRefused, verify_hello
from sfu_balancer.settings import Settings
from sfu_balancer.state import MemoryStore, StateStore

from .admin import add_routes
from .bridge_link import BridgeLink, BridgeUnavailable, read_hello
from .decision_log import DecisionLog
from .discovery import add_discovery_routes
from .fleet import Fleet
from .gc_tuning import tune
from .guard import Guard
from .keys import GUARD, LIVENESS, ROUTER, SOCKETS
from .liveness import Liveness
from .metrics import Metrics
from .reconcile import reconcile
from .router import Router
from .signaling import websocket_handler

log = structlog.get_logger(__name__)


def _bridge_auth_refusal(settings: Settings, hello: wire.Hello) -> str | None:
    """Why this hello may not link, or None. Outside dev a bridge_secret is mandatory."""
    if settings.bridge_secret is None:
        return None if settings.dev else "bridge_secret is not configured: bridges are refused"
    try:
        verify_hello(hello.auth, hello.id, settings.bridge_secret, time.time(),
                     max_age_s=max(120.0, settings.token_leeway_s))
    except HelloRefused as exc:
        return str(exc)
    return None


async def bridge_handler(request: web.Request) -> web.WebSocketResponse:
    router: Router = request.app[ROUTER]
    ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=wire.MAX_FRAME_BYTES)
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    hello = await read_hello(ws)
    if hello is None:
        router.metrics.refusals.labels("bridge_hello").inc()
        await ws.close()
        return ws
    refusal = _bridge_auth_refusal(router.settings, hello)
    if refusal is not None:
        router.metrics.refusals.labels("bridge_auth").inc()
        log.warning("bridge_refused", bridge=hello.id, peer=request.remote, reason=refusal)
        await ws.send_bytes(wire.encode(wire.Error(
            code=wire.ErrorCode.MALFORMED, reason=refusal, about="hello")))
        await ws.close()
        return ws
    if not router.fleet.reserve(hello.id):
        # No bridge can take the id of a bridge that is still connected (or connecting: the
        # id is reserved before the await below, so two hellos for one id cannot both pass).
        router.metrics.refusals.labels("bridge_id_taken").inc()
        await ws.send_bytes(wire.encode(wire.Error(
            code=wire.ErrorCode.CONFLICT, reason=f"bridge id {hello.id!r} is connected",
            about="hello")))
        await ws.close()
        return ws
    link = BridgeLink(ws, hello)
    try:
        drains = await router.store.drains()
        # This instance's participants on the bridge, read while it takes no new ones.
        held = [wire.Seat(room=r.room, participant=r.participant)
                for r in await router.store.participants_on(hello.id)
                if r.instance == router.store.instance_id]
    except BaseException:
        router.fleet.unreserve(hello.id)
        raise
    router.fleet.attach(link, drains.get(hello.id))  # no await since the reservation
    router.metrics.bridge_up.labels(hello.id).set(1)
    log.info("bridge_connected", bridge=hello.id, host=hello.host, pid=hello.pid)
    try:
        # The first frame after attach, written before any allocate can be (send writes before
        # it yields): the bridge releases what it holds for us and is not in ``held``.
        with contextlib.suppress(BridgeUnavailable):
            await link.send(wire.Sync(participants=held))
        await link.serve(router.on_bridge_message)
    finally:
        if router.fleet.detach(link):
            await router.bridge_failed(hello.id, "link_lost")
    return ws


async def _periodic(router: Router) -> None:
    interval = min(router.settings.report_interval_s / 2, 0.5)
    next_rebalance = router.clock() + router.settings.rebalance_interval_s
    while True:
        await asyncio.sleep(interval)
        try:
            await router.check_silent()
            await router.run_drains()
            await reconcile(router)  # shared state: leases, outage replay, split links
            if router.clock() >= next_rebalance:
                next_rebalance = router.clock() + router.settings.rebalance_interval_s
                await router.rebalance()
        except Exception:
            log.exception("periodic_failed")


def create_app(settings: Settings, store: StateStore | None = None) -> web.Application:
    app = web.Application(client_max_size=settings.max_message_bytes)
    metrics = Metrics()
    fleet = Fleet(settings.report_interval_s, settings.failed_after_s)
    store = store if store is not None else MemoryStore()
    decisions = DecisionLog(settings.decision_log)
    router = Router(settings, store, fleet, metrics, decisions)
    started = time.perf_counter()
    log.info("routing_compiling", note="first start on this machine: about a minute")
    # before any socket is served: a cold compile of the routing rules inside the running
    # loop would stall every bridge link past its failure timeout
    warm_up(router.config.build_policy(), router.config, router.costs)
    log.info("routing_compiled", seconds=round(time.perf_counter() - started, 3))
    app[ROUTER] = router
    app[GUARD] = Guard(settings, metrics)
    liveness = app[LIVENESS] = Liveness(settings.ws_ping_interval_s)
    app.router.add_get("/ws", websocket_handler)
    app.router.add_get("/bridge", bridge_handler)
    add_routes(app, public=True, admin=settings.admin_listen is None)
    add_discovery_routes(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(_periodic(router)), asyncio.create_task(liveness.run())]
        restore_gc = tune(settings)  # started: what is alive now lives as long as the app
        yield
        restore_gc()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for entry in list(fleet.entries.values()):
            if entry.link is not None:
                with contextlib.suppress(Exception):
                    await entry.link.send(wire.Bye(reason="balancer shutdown"))
                    await entry.link.close()
        decisions.close()
        await store.close()

    async def close_sockets(app: web.Application) -> None:
        # Open WebSockets would otherwise hold the shutdown for its whole timeout.
        sockets = app[SOCKETS]
        for ws in list(sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1001, message=b"balancer shutdown")

    app[SOCKETS] = weakref.WeakSet()
    app.on_shutdown.append(close_sockets)
    app.cleanup_ctx.append(lifecycle)
    return app
