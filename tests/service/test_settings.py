import inspect
import re
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sfu_balancer.cli import main
from sfu_balancer.core import CostTable, RoutingConfig
from sfu_balancer.settings import LimitSettings, RedisSettings, Settings, load_settings

SAMPLE = Path(__file__).resolve().parents[2] / "config-sample.toml"


def test_config_sample_loads_and_covers_every_setting() -> None:
    settings = load_settings(SAMPLE)
    assert settings.routing_config.policy == "balanced"
    table = tomllib.loads(SAMPLE.read_text())
    commented = set(table) | {line.split("=")[0].strip("# ").strip()
                              for line in SAMPLE.read_text().splitlines() if "=" in line}
    assert set(Settings.model_fields) <= commented


SECTION = re.compile(r"^\[([A-Za-z_.]+)\]")
# a key set ("key = ...") or shown commented out ("# key = ..."); prose lines never look so
KEY = re.compile(r"^(?:# ?)?([a-z_][a-z0-9_]*) = ")
MODELS: dict[str, Any] = {"": Settings, "limits": LimitSettings, "redis": RedisSettings}


def sample_keys() -> list[tuple[str, str, str]]:
    """(table, key, line without a leading "# ") for every key of config-sample.toml."""
    table, found = "", []
    for line in SAMPLE.read_text().splitlines():
        if section := SECTION.match(line):
            table = section[1]
        elif key := KEY.match(line):
            found.append((table, key[1], line[2:] if line.startswith("# ") else line.lstrip("#")))
    return found


def inline_comment(line: str) -> str:
    """The comment after a ``key = value`` line's value ("" if none)."""
    whole = tomllib.loads(line)
    for at in (i for i, c in enumerate(line) if c == "#"):
        try:
            if tomllib.loads(line[:at]) == whole:
                return line[at + 1:].strip()
        except tomllib.TOMLDecodeError:
            continue  # a "#" inside a string
    return ""


def check_setting(table: str, key: str, value: Any, policy: str) -> None:
    """Raise unless ``key = value`` is a real, valid setting of ``table``."""
    if table in MODELS:
        assert key in MODELS[table].model_fields, f"[{table}] {key} is not a setting"
        if table:
            MODELS[table](**{key: value})
        else:
            Settings(**{key: value})
    elif table == "routing":
        assert key != "params", "[routing.params] is a table of its own"
        RoutingConfig.from_mapping({key: value})
    elif table == "routing.params":
        RoutingConfig.from_mapping({"policy": policy, "params": {key: value}})
    elif table == "costs":
        CostTable.from_mapping({key: value})
    else:
        raise AssertionError(f"[{table}] is not a settings table")


def test_every_key_of_every_table_in_the_sample_is_a_commented_setting() -> None:
    keys = sample_keys()
    policy = tomllib.loads(SAMPLE.read_text())["routing"]["policy"]
    assert {t for t, _, _ in keys} == {"", "routing", "routing.params", "costs", "limits",
                                       "redis"}
    uncommented, unreal = [], []
    for table, key, line in keys:
        (name, value), = tomllib.loads(line).items()
        assert name == key
        try:
            check_setting(table, key, value, policy)
        except (AssertionError, ValueError) as exc:
            unreal.append(f"[{table}] {key}: {exc}")
        if not inline_comment(line):
            uncommented.append(f"[{table}] {key}")
    assert not unreal, unreal
    assert not uncommented, f"keys without a comment on their line: {uncommented}"
    # and every setting of every table is in the sample
    present = {(t, k) for t, k, _ in keys}
    policy_class = type(RoutingConfig(policy=policy).build_policy())
    expected = ({("", k) for k in Settings.model_fields if k not in MODELS and k not in (
                    "routing", "costs")}
                | {(t, k) for t, model in MODELS.items() if t for k in model.model_fields}
                | {("routing", f.name) for f in fields(RoutingConfig) if f.name != "params"}
                | {("costs", f.name) for f in fields(CostTable)}
                | {("routing.params", k) for k in inspect.signature(policy_class).parameters})
    assert expected - present == set(), "settings missing from config-sample.toml"


def test_environment_overrides_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFUB_PORT", "9999")
    monkeypatch.setenv("SFUB_ROUTING__MAX_PER_BRIDGE", "40")
    settings = load_settings(SAMPLE)
    assert settings.port == 9999 and settings.routing_config.max_per_bridge == 40
    assert settings.routing_config.policy == "balanced"  # the rest of the file's table stays
    assert load_settings(SAMPLE, port=1234).port == 1234  # the command line wins


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[routing]\npolicy = "nope"\n', "known policies"),
        ("[routing]\nmax_per_bridge = 0\n", "max_per_bridge"),
        ("[costs]\nvideo_kbps = -1\n", "video_kbps"),
        ("prot = 1\n", "prot"),
        ("port = 70000\n", "port"),
    ],
)
def test_bad_settings_are_refused_with_the_key(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_settings(path)


def test_serve_reports_bad_config_clearly(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[routing]\npolicy = "nope"\n')
    result = CliRunner().invoke(main, ["serve", "--config", str(path)])
    assert result.exit_code != 0 and "known policies" in result.output
    missing = CliRunner().invoke(main, ["serve", "--config", str(tmp_path / "none.toml")])
    assert missing.exit_code != 0 and "does not exist" in missing.output
