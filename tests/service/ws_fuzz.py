"""Generated /ws inputs and the check applied to each reply (shared by the fuzz test and
bench/fuzz.py). Every input gets exactly one reply: ``pong`` for a ping, ``left`` for a
leave, and an ``error`` with a code for everything else the balancer cannot accept."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

TYPES = ["join", "answer", "leave", "ping", "offer", "joined", "", "JOIN", "rejoin"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)

field_values = st.one_of(
    json_values,
    st.sampled_from(["v=0", "v=0\r\n", "room-1", "../../etc", "a" * 70, "*", "x y", "é"]),
)

messages = st.one_of(
    st.text(max_size=200),  # not JSON, or JSON of the wrong shape
    json_values.map(json.dumps),
    st.fixed_dictionaries(
        {"type": st.sampled_from(TYPES)},
        optional={"room": field_values, "sdp": field_values, "seq": field_values,
                  "participant": field_values, "token": field_values},
    ).map(json.dumps),
)


def expected_reply_type(raw: str) -> str:
    try:
        message: Any = json.loads(raw)
    except ValueError:
        return "error"
    if isinstance(message, dict) and message.get("type") == "ping":
        return "pong"
    if isinstance(message, dict) and message.get("type") == "leave":
        return "left"
    return "error"
