"""Chromium through ``sfu-balancer dev --bridges 2``: planned moves and a dropped socket.

- Draining the pages' bridge (``POST /api/v1/bridges/{id}/drain``) moves both pages to the other
  bridge by ``rejoin`` on the same socket, and they decode each other again.
- When a page's WebSocket drops (closed by Playwright, which proxies it), the page reconnects,
  rejoins with the same participant id, and both pages decode again.
- Leave: the page that left shows ``failed`` with ``data-error="left"``, and the other page
  removes its video.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from .conftest import DevServer
from .pages import (
    CONNECT_TIMEOUT_MS,
    FAILOVER_TIMEOUT_MS,
    dataset,
    explain,
    open_page,
    wait_connected,
    wait_decoding,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def test_drain_moves_pages_and_a_dropped_socket_reconnects(
        dev_server: DevServer, browser: Any) -> None:
    room = f"move-{uuid.uuid4().hex[:8]}"
    log: list[str] = []
    sockets: list[Any] = []  # page0's /ws connections, proxied by Playwright

    async def proxy(ws: Any) -> None:
        ws.connect_to_server()
        sockets.append(ws)

    pages = []
    for i in range(2):
        context = await browser.new_context()
        if i == 0:
            await context.route_web_socket(re.compile(r".*/ws$"), proxy)
        pages.append(await open_page(browser, dev_server.url(f"/r/{room}"), log, f"page{i}",
                                     context=context))
    try:
        before = [await wait_connected(p) for p in pages]
        ids = [d["participant"] for d in before]
        await wait_decoding(pages[0], ids[1])
        await wait_decoding(pages[1], ids[0])
        source = before[0]["bridge"]
        assert before[1]["bridge"] == source

        # planned move: drain with no grace, everyone on the source rejoins elsewhere
        assert dev_server.session is not None
        async with dev_server.session.post(dev_server.url(f"/api/v1/bridges/{source}/drain"),
                                           json={"deadline_s": 0}) as response:
            assert response.status == 200, await response.text()
        moved = [await wait_connected(p, not_on=source, deadline_ms=FAILOVER_TIMEOUT_MS)
                 for p in pages]
        assert [d["participant"] for d in moved] == ids
        await wait_decoding(pages[0], ids[1])
        await wait_decoding(pages[1], ids[0])

        # page0's socket drops: it reconnects and rejoins as itself
        assert len(sockets) == 1
        await pages[0].evaluate("window.__states = []; new MutationObserver(() => "
                                "window.__states.push(document.body.dataset.state))"
                                ".observe(document.body, {attributes: true})")
        await sockets[0].close()
        await pages[0].wait_for_function("window.__states.includes('reconnecting')",
                                         polling=100, timeout=CONNECT_TIMEOUT_MS)
        again = await wait_connected(pages[0], deadline_ms=FAILOVER_TIMEOUT_MS)
        assert again["participant"] == ids[0]
        assert len(sockets) == 2
        await wait_decoding(pages[0], ids[1])
        await wait_decoding(pages[1], ids[0])

        # page1 leaves: its state says so, and page0 drops its video
        await pages[1].get_by_role("button", name="Leave").click()
        left = await dataset(pages[1])
        assert (left["state"], left["error"]) == ("failed", "left")
        await pages[0].wait_for_function(
            "document.querySelectorAll('video.remote').length === 0",
            polling=100, timeout=CONNECT_TIMEOUT_MS)
    except Exception as exc:
        raise AssertionError(f"{exc}\n{await explain(pages, log, dev_server)}") from exc
    finally:
        for page in pages:
            await page.context.close()
