"""Traffic counters of one bridge process: plain integers bumped on the packet path.

Invariant: only the forwarding code increments them, and only bridges.stats reads them (as
deltas over a report interval), so no locking or reset is ever needed.
"""

from __future__ import annotations


class TrafficCounters:
    __slots__ = ("bytes_in", "bytes_out", "dropped_out", "packets_in", "packets_out")

    def __init__(self) -> None:
        self.packets_in = 0
        self.bytes_in = 0  # RTP bytes after SRTP removal (header + payload + padding)
        self.packets_out = 0
        self.bytes_out = 0  # SRTP bytes handed to the socket, retransmissions included
        self.dropped_out = 0  # not connected yet, or the socket's user-space buffer is full
