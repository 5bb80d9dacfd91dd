"""Helpers that drive the join page through its DOM contract (DESIGN.md §5) and
``window.sfuStats()`` only."""

from __future__ import annotations

import time
from typing import Any, Protocol

CONNECT_TIMEOUT_MS = 60_000
DECODE_TIMEOUT_MS = 60_000
FAILOVER_TIMEOUT_MS = 60_000
FRAMES = 10  # decoded frames that must arrive after the first frame shows

# True once `other`'s remote video shows frames and `need` more were decoded since this
# predicate first saw them on the current bridge (a rejoin starts new counters). The predicate
# must be synchronous (wait_for_function takes a returned Promise for a truthy value): each poll
# starts window.sfuStats() and judges the result of the previous poll. Of several sources seen
# on `other`'s video m-line, the one that received a packet last counts.
DECODING = """
([other, need]) => {
  window.__poll = window.__poll || {};
  if (!window.__poll.pending) {
    window.__poll.pending = true;
    window.sfuStats().then(stats => { window.__poll.stats = stats; },
                           () => {}).finally(() => { window.__poll.pending = false; });
  }
  const body = document.body;
  const stats = window.__poll.stats;
  if (body.dataset.state !== 'connected' || !stats || stats.bridge !== body.dataset.bridge) {
    return false;
  }
  const video = document.querySelector(`video.remote[data-participant="${CSS.escape(other)}"]`);
  if (!video || video.videoWidth === 0) return false;
  const remote = stats.remotes
    .filter(r => r.participant === other && r.kind === 'video')
    .sort((a, b) => b.lastPacketReceivedTimestamp - a.lastPacketReceivedTimestamp)[0];
  if (!remote || remote.framesDecoded === 0) return false;
  window.__frames = window.__frames || {};
  const key = `${other}@${stats.bridge}`;
  // first sight, or counters restarted (a new source on a reused m-line): new baseline
  if (!(key in window.__frames) || remote.framesDecoded < window.__frames[key]) {
    window.__frames[key] = remote.framesDecoded;
  }
  window.__decoded = {...window.__decoded, [key]: remote.framesDecoded,
                      [`${key}:played`]: video.getVideoPlaybackQuality().totalVideoFrames};
  return remote.framesDecoded >= window.__frames[key] + need;
}
"""


async def open_page(browser: Any, url: str, log: list[str], name: str,
                    context: Any = None, sockets: list[str] | None = None) -> Any:
    """A page in its own browser context (or ``context``), its console kept in ``log``; the
    URL of every WebSocket it opens is appended to ``sockets``."""
    context = context or await browser.new_context()
    page = await context.new_page()
    page.on("console", lambda m: log.append(f"{time.time():.3f} {name} {m.type}: {m.text}"))
    page.on("pageerror", lambda e: log.append(f"{name} pageerror: {e}"))
    if sockets is not None:
        page.on("websocket", lambda ws: sockets.append(ws.url))
    await page.goto(url)
    return page


async def dataset(page: Any) -> dict[str, str]:
    return dict(await page.evaluate("({...document.body.dataset})"))


async def wait_connected(page: Any, *, not_on: str | None = None,
                         deadline_ms: float = CONNECT_TIMEOUT_MS) -> dict[str, str]:
    await page.wait_for_function(
        """(notOn) => document.body.dataset.state === 'connected'
              && document.body.dataset.bridge && document.body.dataset.bridge !== notOn""",
        arg=not_on, polling=100, timeout=deadline_ms)
    return await dataset(page)


async def wait_decoding(page: Any, other: str, deadline_ms: float = DECODE_TIMEOUT_MS) -> None:
    """Until ``other``'s video plays on ``page`` and FRAMES more frames were decoded."""
    await page.evaluate("window.__frames = {}; window.__poll = {}")
    await page.wait_for_function(DECODING, arg=[other, FRAMES], polling=200, timeout=deadline_ms)


class HasEvents(Protocol):
    """A server under test (DevServer, or a cluster) whose own log lines explain a failure."""

    def events(self, limit: int = 80) -> list[str]: ...


async def explain(pages: list[Any], log: list[str], server: HasEvents) -> str:
    lines = []
    for page in pages:
        lines.append(f"{await dataset(page)} {await page.evaluate('window.sfuStats()')} "
                     f"{await page.evaluate('window.__decoded')}")
    return "\n".join([*lines, "--- pages", *log[-60:], "--- balancer", *server.events()])
