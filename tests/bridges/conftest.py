"""Shared fixtures for bridge tests: loopback-only ICE and an in-process bridge harness."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from media_clients import Publisher, Subscriber

from bridges import aiortc_adapter
from bridges.sfu.worker import Worker
from sfu_balancer import wire

aiortc_adapter.restrict_ice_addresses(["127.0.0.1"])


@dataclass
class Member:
    room: str
    id: str
    publisher: Publisher
    subscriber: Subscriber


class Harness:
    """Drives a ``Worker`` directly, standing in for the balancer: relays offers and answers."""

    def __init__(self) -> None:
        self.worker = Worker(on_offer=self._on_offer)
        self.members: dict[tuple[str, str], Member] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.answer_errors: list[str] = []

    def _on_offer(self, offer: wire.Offer) -> None:
        member = self.members.get((offer.room, offer.participant))
        if member is None:
            return
        task = asyncio.get_running_loop().create_task(self._answer(member, offer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, member: Member, offer: wire.Offer) -> None:
        try:
            sdp = await member.subscriber.handle_offer(offer)
            await self.worker.answer(offer.room, offer.participant, offer.seq, sdp)
        except Exception as exc:  # e.g. an offer racing the member's leave; kept as text only,
            self.answer_errors.append(repr(exc))  # so no traceback pins closed connections

    async def join(self, room: str, pid: str, **publisher_args: Any) -> Member:
        member = Member(room, pid, Publisher(**publisher_args), Subscriber())
        self.members[(room, pid)] = member
        answer = await self.worker.allocate(room, pid, await member.publisher.offer())
        await member.publisher.accept(answer)
        return member

    async def leave(self, member: Member) -> None:
        await self.worker.release(member.room, member.id)
        self.members.pop((member.room, member.id), None)
        await member.publisher.close()
        await member.subscriber.close()

    async def close(self) -> None:
        for member in list(self.members.values()):
            with contextlib.suppress(Exception):
                await self.leave(member)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.worker.close()


@pytest.fixture(autouse=True)
async def _quiet_close_races() -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    aiortc_adapter.ignore_close_races(loop)
    yield
    loop.set_exception_handler(previous)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    h = Harness()
    try:
        yield h
    finally:
        await h.close()
