"""``GET /api/v1/signaling``: where a join page may (re)connect its signaling WebSocket.

Multi-instance choice (docs/operations.md, "Distributed mode"): the page gets the list of
every instance's public URL (``signaling_urls``) and, when its socket drops, reconnects to
the next one and rejoins with the same participant id. With the setting empty, the lists are
empty and the page uses its own origin: the operator runs the instances behind one proxy URL,
and the page retries that URL (the proxy picks a live instance). This instance's own
``public_url`` is not offered instead: without one it is the listen address (0.0.0.0, or a
private name), which a browser may not reach. Public (no admin token, also with
``admin_listen``): it only reveals URLs the pages must reach anyway. WebSockets are not
bound by the same-origin policy, and ``/ws`` checks no ``Origin``, so a page loaded from one
instance may signal through another.
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
    urls = list(settings.signaling_urls)
    return web.json_response({
        "urls": urls,
        "ws": [_ws_url(u) for u in urls],
        "instance": router.store.instance_id,
        "shared_state": hasattr(router.store, "sync"),
    }, headers={"Cache-Control": "no-store"})


def add_discovery_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/signaling", signaling)
