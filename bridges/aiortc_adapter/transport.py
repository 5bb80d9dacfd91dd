"""A connection's sockets and ICE addresses, reached through aiortc/aioice private names.

- ``udp_transports`` and ``pause_reading`` (test helpers: a peer that stops reading, a socket
  that cannot drain) walk ``RTCIceTransport._connection`` -> ``aioice.Connection._protocols``;
- ``restrict_ice_addresses`` replaces ``aioice.ice.get_host_addresses`` (process-wide);
- ``ignore_close_races`` drops one known-harmless ``aiortc.exceptions.InvalidStateError``.

aiortc has no public API for any of these. The names are listed in ``hooks`` and checked by
``verify_hooks`` against the pinned aiortc (``hooks.PINNED_AIORTC``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import aioice.ice
from aiortc import RTCPeerConnection
from aiortc.exceptions import InvalidStateError

log = logging.getLogger(__package__)  # the logger name of the single module this package was


def udp_transports(pc: RTCPeerConnection) -> list[asyncio.DatagramTransport]:
    """The UDP transports of every ICE connection of ``pc`` (one per gathered host address)."""
    found: list[asyncio.DatagramTransport] = []
    for transceiver in pc.getTransceivers():
        connection = transceiver.sender.transport.transport._connection
        for protocol in connection._protocols:
            transport = protocol.transport
            if transport is not None and transport not in found:
                found.append(transport)
    return found


def pause_reading(pc: RTCPeerConnection) -> int:
    """Stop reading ``pc``'s UDP sockets: what arrives piles up in the kernel, then is lost.

    Returns how many sockets were paused.
    """
    transports = udp_transports(pc)
    for transport in transports:
        transport.pause_reading()  # type: ignore[attr-defined]
    return len(transports)


def restrict_ice_addresses(addresses: Sequence[str]) -> None:
    """Gather host candidates only on ``addresses`` (aioice skips 127.0.0.1 by default).

    Process-wide: every peer connection created afterwards uses these addresses.
    """
    chosen = list(addresses)

    def get_host_addresses(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


def ignore_close_races(loop: asyncio.AbstractEventLoop) -> None:
    """Drop one known-harmless aiortc 1.16 error instead of logging it with its traceback.

    A connection closed while its connect task is between steps makes that task fail with
    ``InvalidStateError("RTCIceTransport is closed")``, reported as "Task exception was never
    retrieved". Nothing is wrong (the connection is gone on purpose), and a logged traceback
    would keep the closed connection's objects alive as long as the log record lives.
    """

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, InvalidStateError) and "is closed" in str(exc):
            log.debug("ignored aiortc close race: %s", exc)
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
