"""The collector settings: applied when the app starts, undone when it stops."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from aiohttp import web

from sfu_balancer.service.app import create_app
from sfu_balancer.service.gc_tuning import tune
from sfu_balancer.settings import Settings


@pytest.fixture(autouse=True)
def collector_as_found() -> Iterator[None]:
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    yield
    gc.set_threshold(*thresholds)
    if not frozen:
        gc.unfreeze()


def test_defaults_freeze_and_raise_the_young_threshold() -> None:
    settings = Settings()
    assert settings.gc_freeze is True
    assert settings.gc_young_threshold == 50_000


def test_tune_applies_and_restore_undoes() -> None:
    before = gc.get_threshold()
    restore = tune(Settings(gc_freeze=True, gc_young_threshold=12_345))
    assert gc.get_threshold() == (12_345, *before[1:])
    assert gc.get_freeze_count() > 0
    restore()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_zero_and_false_leave_the_collector_alone() -> None:
    before = gc.get_threshold()
    restore = tune(Settings(gc_freeze=False, gc_young_threshold=0))
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    restore()
    assert gc.get_threshold() == before


def test_a_freeze_made_by_someone_else_is_not_thawed() -> None:
    gc.freeze()
    frozen = gc.get_freeze_count()
    restore = tune(Settings(gc_freeze=True, gc_young_threshold=0))
    restore()
    assert gc.get_freeze_count() >= frozen > 0


def test_negative_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="gc_young_threshold"):
        Settings(gc_young_threshold=-1)


async def test_the_app_tunes_while_it_runs() -> None:
    before = gc.get_threshold()
    runner = web.AppRunner(create_app(Settings(dev=True, gc_young_threshold=4_321)))
    await runner.setup()
    try:
        assert gc.get_threshold()[0] == 4_321
        assert gc.get_freeze_count() > 0
    finally:
        await runner.cleanup()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
