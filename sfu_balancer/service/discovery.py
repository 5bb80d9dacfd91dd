"""``GET /api/v1/signaling``: where a join page may (re)connect its signaling WebSocket.

Multi-instance choice (docs/operations.md, "Distributed mode"): the page gets the list of
every instance's public URL (``signaling_urls``) and, when its socket drops, reconnects to
the next one and rejoins with the same participant id. With the list empty, the answer is
this instance's own URL: the operator runs the instances behind one proxy URL, and the page
retries that URL (the proxy picks a live instance). Public (no admin token): it only
reveals URLs the pages must reach anyway.
"""

from __future__ import annotations

from aiohttp import web

from .keys import ROUTER


def _ws_url(base: str) -> str:
    base = base.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://"):] + "/ws"
    if base.startswith("http://"):
        return "ws://" + base[len("http://"):] + "/ws"
    return base + "/ws"


async def signaling(request: web.Request) -> web.Response:
    router = request.app[ROUTER]
    settings = router.settings
    urls = list(settings.signaling_urls) or [settings.base_url()]
    return web.json_response({
        "urls": urls,
        "ws": [_ws_url(u) for u in urls],
        "instance": router.store.instance_id,
        "shared_state": hasattr(router.store, "sync"),
    }, headers={"Cache-Control": "no-store"})


def add_discovery_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/signaling", signaling)
