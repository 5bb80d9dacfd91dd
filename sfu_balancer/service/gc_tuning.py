"""Garbage-collector tuning of a serving balancer (settings ``gc_freeze``, ``gc_young_threshold``).

Why: after start-up the process holds a large heap that lives as long as it does (the compiled
routing rules, numpy, pydantic, aiohttp). CPython's cyclic collector walks every tracked object
of the generations it collects, and a full collection walks them all: with the start-up heap
in the oldest generation, every full collection costs that walk again, and joins wait on it.
- ``gc_freeze``: once started, everything alive is moved (``gc.freeze()``) to the permanent
  generation, which no collection walks. Objects made later are collected as usual.
- ``gc_young_threshold``: allocations between young collections (Python's default is 700; a
  join allocates hundreds). Larger = fewer collections, each of the same few objects.

Invariant: ``tune`` returns the function that undoes it, called when the app stops, so a
process that runs several apps in turn (the tests) ends with the collector as it found it.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

from sfu_balancer.settings import Settings


def tune(settings: Settings) -> Callable[[], None]:
    """Apply the settings' collector tuning now; the returned function restores it."""
    thresholds = gc.get_threshold()
    frozen = False
    if settings.gc_young_threshold:
        gc.set_threshold(settings.gc_young_threshold, *thresholds[1:])
    if settings.gc_freeze and gc.get_freeze_count() == 0:  # never thaw someone else's freeze
        gc.collect()  # start-up garbage is freed, not frozen
        gc.freeze()
        frozen = True

    def restore() -> None:
        gc.set_threshold(*thresholds)
        if frozen:
            gc.unfreeze()

    return restore
