"""One asyncio lock per room, kept only while some task holds or waits for it.

Why: a ``defaultdict(asyncio.Lock)`` keeps a lock for every room name ever seen, so a day of
16,000 conferences, or a client inventing room names, grows it without end. Here a room's entry
counts its holders and waiters and is dropped when the last one leaves; a task that arrives
while the lock is held finds the same entry, so mutual exclusion per room is unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class RoomLocks:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[asyncio.Lock, int]] = {}  # room -> (lock, users)

    def __len__(self) -> int:
        return len(self._entries)

    @asynccontextmanager
    async def hold(self, room: str) -> AsyncIterator[None]:
        lock, users = self._entries.get(room) or (asyncio.Lock(), 0)
        self._entries[room] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._entries[room]
            if users == 1:
                del self._entries[room]
            else:
                self._entries[room] = (lock, users - 1)
