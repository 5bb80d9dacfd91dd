"""Keyframe requests towards a publisher: at most one PLI per second, none lost (fake clock)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from bridges.counters import TrafficCounters
from bridges.sfu.forwarder import KeyframeThrottle, Source


@dataclass
class FakeTimer:
    when: float
    callback: Callable[[], object]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class FakeTimers:
    """A loop's clock and timers, advanced by hand."""

    now: float = 1000.0
    timers: list[FakeTimer] = field(default_factory=list)

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[[], object], /) -> FakeTimer:
        timer = FakeTimer(when, callback)
        self.timers.append(timer)
        return timer

    @property
    def pending(self) -> list[FakeTimer]:
        return [t for t in self.timers if not t.cancelled]

    def advance_to(self, t: float) -> None:
        while True:
            due = [x for x in self.pending if x.when <= t]
            if not due:
                break
            timer = min(due, key=lambda x: x.when)
            self.timers.remove(timer)
            self.now = max(self.now, timer.when)
            timer.callback()
        self.now = max(self.now, t)

    def advance(self, dt: float) -> None:
        self.advance_to(self.now + dt)


def _throttle() -> tuple[KeyframeThrottle, FakeTimers, list[float]]:
    timers = FakeTimers()
    sent: list[float] = []
    return KeyframeThrottle(lambda: sent.append(timers.now), 1.0, timers), timers, sent


def test_a_burst_sends_once_then_once_coalesced_a_second_later() -> None:
    throttle, timers, sent = _throttle()
    t0 = timers.now
    for _ in range(20):  # 20 subscribers' PLIs arrive together
        throttle.request()
    assert sent == [t0]  # the first goes upstream at once
    assert len(timers.pending) == 1 and timers.pending[0].when == t0 + 1.0
    timers.advance(0.4)
    for _ in range(5):
        throttle.request()
    timers.advance(0.5)  # t0 + 0.9: still quiet
    assert sent == [t0] and len(timers.pending) == 1
    timers.advance(0.1)  # t0 + 1.0: the requests made meanwhile go up as one
    assert sent == [t0, t0 + 1.0]
    timers.advance(10)  # nothing asked since: nothing sent
    assert sent == [t0, t0 + 1.0] and not timers.pending
    assert (throttle.requested, throttle.sent) == (25, 2)


def test_a_request_after_a_quiet_second_goes_at_once() -> None:
    throttle, timers, sent = _throttle()
    throttle.request()
    timers.advance(1.5)
    throttle.request()
    assert sent == [1000.0, 1001.5]
    timers.advance(0.2)
    throttle.request()  # 0.2 s after the last: waits until 1002.5
    timers.advance(0.79)
    assert len(sent) == 2
    timers.advance(0.01)
    assert sent[-1] == 1002.5


def test_never_more_than_one_per_second_and_no_request_is_lost() -> None:
    throttle, timers, sent = _throttle()
    rng = random.Random(11)
    asked: list[float] = []
    t = timers.now
    for _ in range(2000):  # bursts and gaps over ~10 minutes
        t += rng.choice([0.0, 0.0, 0.001, 0.05, 0.3, 0.9, 1.0, 2.5])
        timers.advance_to(t)
        asked.append(timers.now)
        throttle.request()
    timers.advance(2)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= 1.0 - 1e-9, min(gaps)
    assert len(sent) > 100  # it did keep sending
    for r in asked:  # every request is answered by a send within a second
        assert any(r <= s <= r + 1.0 + 1e-9 for s in sent), r


def test_close_cancels_the_coalesced_send() -> None:
    throttle, timers, sent = _throttle()
    throttle.request()
    throttle.request()
    throttle.close()
    timers.advance(5)
    assert len(sent) == 1


def _source(kind: str, timers: FakeTimers, plis: list[tuple[int, float]]) -> Source:
    source = Source(
        key=f"p:{kind}", participant="p", kind=kind, origin="local",
        rtx_payload_types=frozenset(), counters=TrafficCounters(),
        send_pli=lambda ssrc: plis.append((ssrc, timers.now)), timers=timers,
    )
    source.media_ssrc = 4321 if kind == "video" else 1234
    return source


def test_each_publisher_is_throttled_separately_and_audio_never_asks() -> None:
    timers = FakeTimers()
    plis_a: list[tuple[int, float]] = []
    plis_b: list[tuple[int, float]] = []
    a, b = _source("video", timers, plis_a), _source("video", timers, plis_b)
    audio_plis: list[tuple[int, float]] = []
    audio = _source("audio", timers, audio_plis)
    for _ in range(10):
        a.request_keyframe()
        b.request_keyframe()
        audio.request_keyframe()
        timers.advance(0.25)  # 10 requests each, from t0 to t0 + 2.25
    timers.advance(2)
    t0 = 1000.0  # then one a second; the one asked at t0 + 2.25 goes at t0 + 3
    assert plis_a == [(4321, t0 + i) for i in range(4)]
    assert plis_b == plis_a  # b's own requests, not suppressed by a's
    assert audio_plis == []
