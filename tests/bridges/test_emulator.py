"""sfu-bridge --emulate: the worker answers like a real one at the command level and reports
the load the simulator's cost model gives its rooms."""

from __future__ import annotations

import numpy as np
import pytest

from bridges.emulator import CostModelSampler, EmulatedWorker
from bridges.sfu.sdp import BridgeError
from sfu_balancer.wire import Capacity, ErrorCode
from simulations.costmodel import CostModel

OFFER = "v=0\r\n"


async def test_reports_the_cost_model_load_of_its_rooms() -> None:
    worker = EmulatedWorker()
    sampler = CostModelSampler(worker, Capacity(cpu=4.0, egress_mbps=1000.0, ingress_mbps=1000.0))
    for p in range(5):
        await worker.allocate("a", f"p{p}", OFFER)
    for p in range(2):
        await worker.allocate("b", f"q{p}", OFFER)
    expected = CostModel.from_scenario({}).room_load(np.array([5]))[0] + \
        CostModel.from_scenario({}).room_load(np.array([2]))[0]
    report = sampler.sample()
    assert (report.participants, report.rooms, report.relay_streams) == (7, 2, 0)
    assert report.cpu == pytest.approx(expected[0])
    assert report.bytes_out_per_s == pytest.approx(expected[1] * 125_000)
    assert report.bytes_in_per_s == pytest.approx(expected[2] * 125_000)
    assert report.capacity is not None and report.capacity.cpu == 4.0
    await worker.relay_open("a", "r1", "other", None)
    assert sampler.sample().relay_streams == 5  # the room's 5 publishers, once to the peer
    assert sampler.sample().cpu > report.cpu


async def test_refuses_what_a_real_worker_refuses() -> None:
    worker = EmulatedWorker()
    await worker.allocate("a", "p", OFFER)
    with pytest.raises(BridgeError) as exc:
        await worker.allocate("a", "p", OFFER)
    assert exc.value.code == ErrorCode.CONFLICT
    with pytest.raises(BridgeError) as exc:
        await worker.release("a", "nobody")
    assert exc.value.code == ErrorCode.UNKNOWN_PARTICIPANT
    worker.draining = True
    with pytest.raises(BridgeError) as exc:
        await worker.allocate("new", "x", OFFER)
    assert exc.value.code == ErrorCode.DRAINING
    await worker.allocate("a", "late", OFFER)  # a room it holds still takes members
    assert not worker.emptied.is_set()
    await worker.release_all()
    assert worker.emptied.is_set() and worker.participant_count == 0
