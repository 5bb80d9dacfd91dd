import subprocess
import sys

import sfu_balancer.core as core

FORBIDDEN = ("asyncio", "aiohttp", "redis", "aiortc")


def test_core_imports_nothing_impure_in_a_fresh_interpreter() -> None:
    code = (
        "import sys, sfu_balancer.core, sfu_balancer.core.policies;"
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == ""


def test_core_all_is_complete_and_resolvable() -> None:
    public = {name for name in vars(core) if not name.startswith("_")}
    modules = {"admission", "config", "decide", "ledger", "load", "migration", "model",
               "placement", "policies", "record", "fleet_table"}
    assert set(core.__all__) == public - modules
    for name in core.__all__:
        assert getattr(core, name) is not None
