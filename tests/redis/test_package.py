"""``sfu_balancer.state.redis`` is a package named like redis-py: it must still import the
library (absolute imports), and its split must keep the single module's public names."""

from __future__ import annotations

import subprocess
import sys


def test_redis_inside_the_package_is_the_library() -> None:
    code = (
        "import sfu_balancer.state.redis as pkg, sfu_balancer.state.redis.connection as c\n"
        "import redis, redis.asyncio\n"
        "assert redis.__file__ != pkg.__file__ and not hasattr(redis, 'RedisStore')\n"
        "assert c.Redis is redis.asyncio.Redis and c.redis_errors is redis.exceptions\n"
        "print(redis.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "redis"


def test_public_names_are_kept() -> None:
    from sfu_balancer.state import redis as store_module
    from sfu_balancer.state.errors import StoreUnavailable

    assert store_module.RedisStore.__name__ == "RedisStore"
    assert store_module.StoreUnavailable is StoreUnavailable
    assert store_module.SCHEMA == "v1"
    assert set(store_module.__all__) == {"RedisStore", "StoreUnavailable"}
