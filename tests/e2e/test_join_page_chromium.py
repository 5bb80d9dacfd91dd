"""Chromium through ``sfu-balancer dev --bridges 2``: the join page and the dashboard.

Two pages join one room and decode each other's video; their bridge is killed with SIGKILL and
both pages rejoin by themselves on the other bridge and decode again. The pages are read only
through the DOM contract (DESIGN.md §5) and ``window.sfuStats()``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from typing import Any

import pytest

from .conftest import DevServer
from .pages import (
    CONNECT_TIMEOUT_MS,
    FAILOVER_TIMEOUT_MS,
    FRAMES,
    explain,
    open_page,
    wait_connected,
    wait_decoding,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


async def test_two_pages_decode_each_other_and_rejoin_after_bridge_kill(
        dev_server: DevServer, browser: Any) -> None:
    room = f"e2e-{uuid.uuid4().hex[:8]}"
    log: list[str] = []
    pages = [await open_page(browser, dev_server.url(f"/r/{room}"), log, f"page{i}")
             for i in range(2)]
    try:
        before = await asyncio.gather(*(wait_connected(p) for p in pages))
        ids = [d["participant"] for d in before]
        assert ids[0] and ids[1] and ids[0] != ids[1]
        await asyncio.gather(wait_decoding(pages[0], ids[1]), wait_decoding(pages[1], ids[0]))

        victim = before[0]["bridge"]
        assert before[1]["bridge"] == victim, "a room of two stays on one bridge"
        bridges = {b["id"]: b for b in await dev_server.bridges()}
        assert bridges[victim]["state"] == "serving"
        survivors = [b for b in bridges.values() if b["id"] != victim and b["state"] == "serving"]
        assert survivors, bridges
        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        os.kill(bridges[victim]["pid"], signal.SIGKILL)

        after = await asyncio.gather(*(wait_connected(p, not_on=victim,
                                                      deadline_ms=FAILOVER_TIMEOUT_MS)
                                       for p in pages))
        assert [d["participant"] for d in after] == ids, "rejoin keeps the participant id"
        assert {d["bridge"] for d in after} <= {b["id"] for b in survivors}
        await asyncio.gather(wait_decoding(pages[0], ids[1]), wait_decoding(pages[1], ids[0]))
        print(f"kill -9 to both pages decoding {FRAMES} new frames: "
              f"{loop.time() - killed_at:.2f} s; frames decoded/played per bridge: "
              f"{[await p.evaluate('window.__decoded') for p in pages]}")
        assert (await dev_server.bridges()) and {
            b["id"]: b["state"] for b in await dev_server.bridges()}[victim] == "failed"
        for page in pages:  # one remote video each, nothing left of the old bridge
            remotes = await page.evaluate(
                "[...document.querySelectorAll('video.remote')].map(v => v.dataset.participant)")
            assert len(remotes) == 1
    except Exception as exc:
        raise AssertionError(f"{exc}\n{await explain(pages, log, dev_server)}") from exc
    finally:
        for page in pages:
            await page.context.close()


async def test_dashboard_lists_bridges_and_rooms(dev_server: DevServer, browser: Any) -> None:
    log: list[str] = []
    dashboard = await open_page(browser, dev_server.url("/dashboard"), log, "dashboard")
    room = f"dash-{uuid.uuid4().hex[:8]}"
    member = await open_page(browser, dev_server.url(f"/r/{room}"), log, "member")
    try:
        await dashboard.wait_for_function(
            """() => document.querySelectorAll('#bridges tbody tr[data-bridge]').length === 2
                     && [...document.querySelectorAll('#bridges tbody tr[data-bridge]')]
                        .every(tr => tr.children[8].textContent !== '–')""",
            polling=200, timeout=CONNECT_TIMEOUT_MS)
        shown = await dashboard.evaluate(
            "[...document.querySelectorAll('#bridges tbody tr[data-bridge]')]"
            ".map(tr => [tr.dataset.bridge, tr.dataset.state])")
        api = sorted((b["id"], b["state"]) for b in await dev_server.bridges())
        assert sorted(tuple(row) for row in shown) == api
        assert await dashboard.evaluate("document.querySelector('h1').textContent")

        joined = await wait_connected(member)
        await dashboard.wait_for_function(
            """([room, bridge]) => {
                 const tr = document.querySelector(`#rooms tr[data-room="${room}"]`);
                 return tr && tr.textContent.includes(`${bridge}: 1`);
               }""",
            arg=[room, joined["bridge"]], polling=200, timeout=CONNECT_TIMEOUT_MS)
    except Exception as exc:
        raise AssertionError(f"{exc}\n{await explain([member], log, dev_server)}") from exc
    finally:
        for page in (dashboard, member):
            await page.context.close()


@pytest.mark.admin_token("e2e-admin-secret")
async def test_dashboard_sends_the_admin_token_from_its_url(
        dev_server: DevServer, browser: Any) -> None:
    log: list[str] = []
    refused = await open_page(browser, dev_server.url("/dashboard"), log, "no-token")
    allowed = await open_page(browser, dev_server.url("/dashboard?token=e2e-admin-secret"), log,
                              "token")
    try:
        await refused.wait_for_function(
            "document.getElementById('error').textContent.includes('token')",
            polling=200, timeout=CONNECT_TIMEOUT_MS)
        assert await refused.evaluate(
            "document.querySelectorAll('#bridges tbody tr[data-bridge]').length") == 0
        await allowed.wait_for_function(
            "document.querySelectorAll('#bridges tbody tr[data-bridge]').length === 2",
            polling=200, timeout=CONNECT_TIMEOUT_MS)
        assert await allowed.evaluate("document.getElementById('error').textContent") == ""
    except Exception as exc:
        raise AssertionError(f"{exc}\n{log}\n{dev_server.log_tail()}") from exc
    finally:
        for page in (refused, allowed):
            await page.context.close()
