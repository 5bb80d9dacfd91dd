"""``sync`` (docs/protocol.md): a bridge that dials in again keeps only the participants the
balancer still has on it. Real emulated bridge processes (``sfu-bridge --emulate``)."""

from __future__ import annotations

from media_clients import wait_for

from .test_fleet_scenarios import Signaling, connected


async def test_a_bridge_back_after_its_link_dropped_drops_who_moved(cluster_factory) -> None:  # type: ignore[no-untyped-def]
    cluster = await cluster_factory(bridges=0)
    await cluster.add_bridge("e1", "--emulate")
    await cluster.add_bridge("e2", "--emulate")
    router, fleet = cluster.router, cluster.router.fleet
    members: list[Signaling] = [await connected(cluster.url, "sync")]
    try:
        members += [await connected(cluster.url, "sync") for _ in range(2)]
        first = members[0].bridge
        assert first is not None and all(m.bridge == first for m in members)
        other = "e2" if first == "e1" else "e1"

        def reports(bridge: str, participants: int) -> bool:
            report = fleet.entries[bridge].report
            return report is not None and report.participants == participants

        await wait_for(lambda: reports(first, 3), 10, f"{first} to report its 3 participants")
        link = fleet.link(first)
        # The link drops while the bridge lives on (media would still flow): the balancer
        # moves everyone, and the bridge dials in again holding them.
        await router.bridge_failed(first, "silent")
        await wait_for(lambda: all(m.bridge == other for m in members), 20,
                       f"everyone to rejoin on {other}")
        await wait_for(lambda: fleet.link(first) not in (None, link), 30,
                       f"{first} to dial in again")
        await wait_for(lambda: reports(first, 0) and reports(other, 3), 20,
                       f"{first} to release the 3 who moved (sync) and {other} to hold them")
    finally:
        for m in members:
            await m.close()
