"""Operator HTTP: JSON API, drain control, Prometheus metrics, health, dashboard and pages.

The admin API needs ``Authorization: Bearer <admin_token>`` outside dev mode. ``/healthz``
answers while the event loop runs and depends on nothing else (never on Redis); ``/readyz``
is ready once at least one bridge is serving.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .keys import ROUTER
from .router import Router

WEB = Path(__file__).parent / "web"


def _router(request: web.Request) -> Router:
    router: Router = request.app[ROUTER]
    return router


def _require_admin(request: web.Request) -> None:
    settings = _router(request).settings
    if settings.dev and not settings.admin_token:
        return
    expected = settings.admin_token
    given = request.headers.get("Authorization", "")
    if not expected or not hmac.compare_digest(given.encode(), f"Bearer {expected}".encode()):
        _router(request).metrics.refusals.labels("admin_auth").inc()
        raise web.HTTPUnauthorized(text=json.dumps({"error": "admin token required"}),
                                   content_type="application/json")


def bridge_json(router: Router, bridge_id: str) -> dict[str, Any]:
    entry = router.fleet.entries[bridge_id]
    info, report = entry.info, entry.report
    now = router.clock()
    load = None
    bridge_stress = None
    if report is not None:
        load = {name: getattr(report, name) for name in (
            "cpu", "host_cpu", "bytes_in_per_s", "bytes_out_per_s", "packets_in_per_s",
            "packets_out_per_s", "participants", "rooms", "relay_streams")}
        load["age_s"] = round(max(now - report.measured_at, 0.0), 3)
        measured = router.fleet.stress(bridge_id, router.config.thresholds)
        bridge_stress = None if measured is None else round(measured, 4)
    return {
        "id": info.id, "host": info.host, "region": info.region, "version": info.version,
        "state": info.state.value, "pid": entry.pid,
        "capacity": {"cpu": info.capacity.cpu, "egress_mbps": info.capacity.egress_mbps,
                     "ingress_mbps": info.capacity.ingress_mbps},
        "drain_deadline_s": None if info.drain_deadline is None
        else round(max(info.drain_deadline - now, 0.0), 3),
        "load": load, "stress": bridge_stress,
    }


async def list_bridges(request: web.Request) -> web.Response:
    _require_admin(request)
    router = _router(request)
    return web.json_response({"bridges": [bridge_json(router, b) for b in router.fleet.entries]})


async def list_rooms(request: web.Request) -> web.Response:
    _require_admin(request)
    router = _router(request)
    rooms = []
    for name, members in sorted((await router.store.rooms()).items()):
        rooms.append({"name": name, "participants": sum(members.values()), "bridges": members,
                      "relays": [list(pair) for pair in await router.store.relays(name)]})
    return web.json_response({"rooms": rooms})


async def _bridge_or_404(request: web.Request) -> str:
    _require_admin(request)
    bridge = request.match_info["bridge_id"]
    if bridge not in _router(request).fleet.entries:
        raise web.HTTPNotFound(text=json.dumps({"error": f"unknown bridge {bridge!r}"}),
                               content_type="application/json")
    return bridge


async def drain_bridge(request: web.Request) -> web.Response:
    bridge = await _bridge_or_404(request)
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        body = None
    deadline = body.get("deadline_s", 0) if isinstance(body, dict) else None
    if isinstance(deadline, bool) or not isinstance(deadline, int | float) or deadline < 0:
        raise web.HTTPBadRequest(text=json.dumps(
            {"error": 'body must be {"deadline_s": <number >= 0>}'}),
            content_type="application/json")
    await _router(request).drain(bridge, float(deadline))
    return web.json_response(bridge_json(_router(request), bridge))


async def undrain_bridge(request: web.Request) -> web.Response:
    bridge = await _bridge_or_404(request)
    await _router(request).undrain(bridge)
    return web.json_response(bridge_json(_router(request), bridge))


async def routing(request: web.Request) -> web.Response:
    """GET the live ``[routing]`` table; PUT a new one (JSON object) to swap it in."""
    _require_admin(request)
    router = _router(request)
    if request.method == "PUT":
        try:
            table = await request.json()
            if not isinstance(table, dict):
                raise ValueError("body must be a JSON object: the [routing] table")
            router.reload_routing(table)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=json.dumps({"error": str(exc)}),
                                     content_type="application/json") from None
    return web.json_response({"routing": router.routing_table,
                              "policy": router.config.policy})


async def metrics(request: web.Request) -> web.Response:
    router = _router(request)
    rooms = await router.store.rooms()
    router.metrics.participants.set(sum(sum(m.values()) for m in rooms.values()))
    router.metrics.rooms.set(len(rooms))
    body = generate_latest(router.metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz(request: web.Request) -> web.Response:
    # "loop" names the event loop's package ("uvloop" or "asyncio"), so an operator (and the
    # signaling benchmark) can see which one a running instance got
    loop_package = type(asyncio.get_running_loop()).__module__.split(".")[0]
    return web.json_response({"status": "ok", "loop": loop_package})


async def readyz(request: web.Request) -> web.Response:
    serving = _router(request).fleet.serving()
    status = 200 if serving else 503
    return web.json_response({"ready": bool(serving), "serving_bridges": len(serving)},
                             status=status)


async def join_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB / "join.html")


async def dashboard(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB / "dashboard.html")


def add_routes(app: web.Application, *, public: bool, admin: bool) -> None:
    """Public pages and/or the operator API on ``app``; with ``admin_listen`` set, the admin
    part is served only by a second listener (``create_admin_app``)."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if WEB.is_dir():
        app.router.add_static("/static/", WEB)
    if public:
        app.router.add_get("/r/{room}", join_page)
    if admin:
        app.router.add_get("/api/v1/bridges", list_bridges)
        app.router.add_get("/api/v1/rooms", list_rooms)
        app.router.add_post("/api/v1/bridges/{bridge_id}/drain", drain_bridge)
        app.router.add_post("/api/v1/bridges/{bridge_id}/undrain", undrain_bridge)
        app.router.add_get("/api/v1/routing", routing)
        app.router.add_put("/api/v1/routing", routing)
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/dashboard", dashboard)


def create_admin_app(router: Router) -> web.Application:
    app = web.Application()
    app[ROUTER] = router
    add_routes(app, public=False, admin=True)
    return app
