"""Pure RTP header rewriting for one outgoing stream (no aiortc, no I/O; unit-tested directly).

For every subscriber leg the bridge rewrites a publisher's packet into the leg's own stream:
- SSRC and payload type become the ones negotiated on the subscriber's connection;
- sequence number = input + ``seq_offset`` and timestamp = input + ``ts_offset`` (mod 2^16 and
  2^32). Offsets, not counters, so an upstream loss stays a visible gap the subscriber can NACK,
  and a retransmission from the publisher (RTX) lands on the right number;
- the header extensions are rebuilt with the leg's ids: its MID, plus abs-send-time (video) or
  the publisher's audio level (audio). Everything else from the publisher is dropped.

When a leg (re)starts on a source (first packet, or a transceiver reused for another publisher)
``start`` picks offsets so the output continues where it stopped: next sequence number, and a
timestamp advanced by the wall-clock time since the last packet. Video legs start only on a
keyframe, so a subscriber never receives a picture it cannot decode.
"""

from __future__ import annotations

import random
import struct

HEADER = struct.Struct("!BBHII")
_U16 = struct.Struct("!H")
HISTORY_SIZE = 512  # packets kept per video leg for NACK (~3 s at 1.5 Mbps); a power of two
_HISTORY_MASK = HISTORY_SIZE - 1
# one retransmission of a packet per this many seconds, whatever the NACKs ask: about one
# round trip on the networks a bridge serves, so a lost repair is still repaired again
REPAIR_INTERVAL_S = 0.1


def vp8_keyframe_start(payload: bytes) -> bool:
    """True if ``payload`` (VP8 RTP payload, RFC 7741) starts a keyframe."""
    n = len(payload)
    if n == 0:
        return False
    b0 = payload[0]
    if not b0 & 0x10 or b0 & 0x07:  # S bit set, partition index 0
        return False
    i = 1
    if b0 & 0x80:  # X: extended control bits
        if n < 2:
            return False
        x = payload[1]
        i = 2
        if x & 0x80:  # I: picture id, 7 or 15 bits
            if n <= i:
                return False
            i += 2 if payload[i] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            i += 1
        if x & 0x30:  # T or K: TID/Y/KEYIDX
            i += 1
    return n > i and not payload[i] & 0x01  # P bit of the VP8 frame header: 0 = keyframe


class ExtensionLayout:
    """One-byte-header extension block (RFC 8285) with a static MID and one dynamic element."""

    __slots__ = ("dynamic_size", "prefix", "static", "suffix")

    def __init__(self, mid: str | None, mid_id: int | None, dyn_id: int | None, dyn_size: int):
        elements = b""
        if mid and mid_id:
            raw = mid.encode()
            if not 1 <= len(raw) <= 16 or not 1 <= mid_id <= 14:
                raise ValueError(f"MID {mid!r} / extension id {mid_id} cannot be encoded")
            elements = bytes([(mid_id << 4) | (len(raw) - 1)]) + raw
        self.static = _block(elements)  # used when the dynamic value is absent
        if dyn_id and 1 <= dyn_id <= 14 and dyn_size:
            total = len(elements) + 1 + dyn_size
            pad = (-total) % 4
            self.prefix = (
                b"\xbe\xde" + _U16.pack((total + pad) // 4) + elements
                + bytes([(dyn_id << 4) | (dyn_size - 1)])
            )
            self.suffix = b"\x00" * pad
            self.dynamic_size = dyn_size
        else:
            self.prefix = self.suffix = b""
            self.dynamic_size = 0

    def block(self, dynamic: bytes | None) -> bytes:
        if dynamic is not None and self.dynamic_size:
            return self.prefix + dynamic + self.suffix
        return self.static


def _block(elements: bytes) -> bytes:
    if not elements:
        return b""
    pad = (-len(elements)) % 4
    return b"\xbe\xde" + _U16.pack((len(elements) + pad) // 4) + elements + b"\x00" * pad


class OutStream:
    """Rewrite state of one leg: what the subscriber sees as one continuous RTP stream."""

    __slots__ = (
        "clock_rate", "ext", "first_seq", "history", "last_ts", "last_wall", "max_seq", "pt",
        "repaired_at", "rtx_pt", "rtx_seq", "rtx_ssrc", "seq_offset", "ssrc", "started",
        "ts_offset",
    )

    def __init__(
        self, *, pt: int, ssrc: int, clock_rate: int, ext: ExtensionLayout,
        rtx_pt: int | None = None, rtx_ssrc: int = 0, keep_history: bool = False,
    ) -> None:
        self.pt, self.ssrc, self.clock_rate, self.ext = pt, ssrc, clock_rate, ext
        self.rtx_pt, self.rtx_ssrc = rtx_pt, rtx_ssrc
        self.rtx_seq = random.randint(0, 32767)
        self.history: list[bytes | None] | None = [None] * HISTORY_SIZE if keep_history else None
        # when each history slot was last retransmitted: a receiver re-NACKs every number it
        # still misses on each new gap, so without a floor repairs snowball once it lags
        self.repaired_at: list[float] = [-1e9] * HISTORY_SIZE if keep_history else []
        self.started = False
        self.seq_offset = self.ts_offset = 0
        self.first_seq = 0
        # Lower half of the range, as aiortc does: SRTP's rollover guess is safest far from wrap.
        self.max_seq = random.randint(0, 32767)
        self.last_ts = random.getrandbits(32)
        self.last_wall: float | None = None

    def start(self, in_seq: int, in_ts: int, now: float) -> None:
        """Continue the output stream from input packet (``in_seq``, ``in_ts``) onwards."""
        seq = (self.max_seq + 1) & 0xFFFF
        wall = self.last_wall
        step = 1 if wall is None else max(1, int((now - wall) * self.clock_rate))
        self.seq_offset = (seq - in_seq) & 0xFFFF
        self.ts_offset = (self.last_ts + step - in_ts) & 0xFFFFFFFF
        self.first_seq = seq
        self.max_seq = seq
        self.started = True

    def stop(self) -> None:
        """The source went away; the next ``start`` continues the numbering."""
        self.started = False

    def rewrite(
        self, in_seq: int, in_ts: int, marker: int, payload: bytes, padding: int,
        dynamic: bytes | None, now: float,
    ) -> tuple[bytes, int] | None:
        """The packet as this leg sends it, and its timestamp; None if it predates the start."""
        seq = (in_seq + self.seq_offset) & 0xFFFF
        if (seq - self.first_seq) & 0xFFFF >= 0x8000:
            return None  # reordered from before this leg's start: the number is not ours
        ts = (in_ts + self.ts_offset) & 0xFFFFFFFF
        ext = self.ext.block(dynamic)
        b0 = 0x90 if ext else 0x80
        if padding:
            b0 |= 0x20
            data = b"".join((
                HEADER.pack(b0, (marker << 7) | self.pt, seq, ts, self.ssrc), ext, payload,
                bytes(padding - 1), bytes((padding,)),
            ))
        else:
            data = HEADER.pack(b0, (marker << 7) | self.pt, seq, ts, self.ssrc) + ext + payload
        if (seq - self.max_seq) & 0xFFFF < 0x8000:
            self.max_seq = seq
            self.last_ts = ts
            self.last_wall = now
        if self.history is not None:
            self.history[seq & _HISTORY_MASK] = data
            self.repaired_at[seq & _HISTORY_MASK] = -1e9
        return data, ts

    def repair(self, seq: int, now: float = 0.0) -> bytes | None:
        """The retransmission of output packet ``seq`` (RTX-wrapped if negotiated), if kept
        and not already retransmitted in the last ``REPAIR_INTERVAL_S``."""
        if self.history is None:
            return None
        slot = seq & _HISTORY_MASK
        data = self.history[slot]
        if data is None or _U16.unpack_from(data, 2)[0] != seq:
            return None
        if now - self.repaired_at[slot] < REPAIR_INTERVAL_S:
            return None
        self.repaired_at[slot] = now
        if self.rtx_pt is None:
            return data
        b0 = data[0]
        header_len = 12 + 4 * (b0 & 0x0F)
        if b0 & 0x10:
            header_len += 4 + 4 * _U16.unpack_from(data, header_len + 2)[0]
        payload = data[header_len:]
        if b0 & 0x20:
            payload = payload[: len(payload) - data[-1]]
        rtx_seq = self.rtx_seq
        self.rtx_seq = (rtx_seq + 1) & 0xFFFF
        ts = struct.unpack_from("!I", data, 4)[0]
        return (
            HEADER.pack(b0 & ~0x20 & 0xFF, (data[1] & 0x80) | self.rtx_pt, rtx_seq, ts,
                        self.rtx_ssrc)
            + data[12:header_len] + data[2:4] + payload
        )
