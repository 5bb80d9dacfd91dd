"""Trace input: CSV ``t_s,room,participant,event`` with event = join | leave.

Rules:
- The header row is required; rows are in non-decreasing ``t_s`` (seconds >= 0).
- A participant joins a room at most once at a time and leaves only after joining; a session
  still open at the end of the file never leaves.
- Any malformed or out-of-order row raises ``TraceError`` with its line number (1-based, the
  header being line 1), so the file can be fixed where it is wrong.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from .workload import MAX_MEMBERS, Sessions

HEADER = ["t_s", "room", "participant", "event"]


class TraceError(ValueError):
    pass


def load_trace(path: str | Path, tick_s: float = 1.0) -> tuple[Sessions, list[str]]:
    """Sessions of the trace and the room names (index = room number).

    A member number freed by a leave is reused only from the next ``tick_s`` tick on: the
    engine places a tick's joins before its leaves, so both must not name the same member."""
    path = Path(path)
    try:
        handle = path.open(newline="")
    except OSError as exc:
        raise TraceError(f"trace {str(path)!r}: cannot open: {exc}") from None
    rooms: dict[str, int] = {}
    open_sessions: dict[tuple[int, str], int] = {}
    free_members: dict[int, list[tuple[int, int]]] = {}  # room -> heap of (member, tick freed)
    next_member: dict[int, int] = {}
    join_t: list[float] = []
    leave_t: list[float] = []
    room_of: list[int] = []
    member_of: list[int] = []
    last_t = 0.0
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != HEADER:
            raise TraceError(f"{path}:1: the header must be {','.join(HEADER)}, got {header!r}")
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != 4:
                raise TraceError(f"{path}:{line}: expected 4 fields {HEADER}, got {len(row)}")
            t_text, room_name, participant, event = (cell.strip() for cell in row)
            try:
                t = float(t_text)
            except ValueError:
                raise TraceError(f"{path}:{line}: t_s must be a number, got {t_text!r}") from None
            if not (math.isfinite(t) and t >= 0):
                raise TraceError(f"{path}:{line}: t_s must be a finite number >= 0, got {t}")
            if t < last_t:
                raise TraceError(f"{path}:{line}: out of order: t_s {t} comes after {last_t}")
            if not room_name or not participant:
                raise TraceError(f"{path}:{line}: room and participant must be non-empty")
            last_t = t
            room = rooms.setdefault(room_name, len(rooms))
            key = (room, participant)
            if event == "join":
                if key in open_sessions:
                    raise TraceError(f"{path}:{line}: {participant!r} joins {room_name!r} "
                                     "again without leaving")
                free = free_members.setdefault(room, [])
                tick = int(t // tick_s)
                reusable = [entry for entry in free if entry[1] < tick]
                if reusable:
                    entry = min(reusable)
                    free.remove(entry)
                    member = entry[0]
                else:
                    member = next_member.get(room, 0)
                    next_member[room] = member + 1
                if member >= MAX_MEMBERS:
                    raise TraceError(f"{path}:{line}: room {room_name!r} has more than "
                                     f"{MAX_MEMBERS} participants at once")
                open_sessions[key] = len(join_t)
                join_t.append(t)
                leave_t.append(math.inf)
                room_of.append(room)
                member_of.append(member)
            elif event == "leave":
                session = open_sessions.pop(key, None)
                if session is None:
                    raise TraceError(f"{path}:{line}: {participant!r} leaves {room_name!r} "
                                     "without having joined")
                leave_t[session] = t
                free_members[room].append((member_of[session], int(t // tick_s)))
            else:
                raise TraceError(f"{path}:{line}: event must be join or leave, got {event!r}")
    sessions = Sessions(np.array(join_t, dtype=np.float64), np.array(leave_t, dtype=np.float64),
                        np.array(room_of, dtype=np.int64), np.array(member_of, dtype=np.int64),
                        len(rooms))
    return sessions, list(rooms)
