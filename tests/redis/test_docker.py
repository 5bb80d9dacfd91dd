"""The docker/ files, checked without a Docker engine: every command they run is a real console
script whose options parse, every SFUB_* variable is a real setting (and the values load),
bridges dial every balancer instance, Prometheus scrapes every instance.

PyYAML is not a dependency, so the compose files keep to a small YAML subset (block mappings
and sequences, sequences of mappings, plain/quoted scalars, one-line JSON-style flow lists,
``{}``); ``read_yaml`` reads exactly that and fails loudly on anything else. When PyYAML
happens to be installed, it must read the same data.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest

from sfu_balancer.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
COMPOSE_FILES = ["compose.yml", "compose.prometheus.yml"]
IMAGE_COMMANDS = {"redis-server"}  # commands of third-party images, not ours


def _scalar(text: str, where: str) -> Any:
    text = text.strip()
    if text == "{}":
        return {}
    if text.startswith("["):
        return json.loads(text)  # one-line flow list, JSON-compatible
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("'"):
        if not text.endswith("'"):
            raise ValueError(f"{where}: unterminated quote")
        return text[1:-1].replace("''", "'")
    if text[:1] in "&*!|>{" or " #" in text:
        raise ValueError(f"{where}: outside the supported YAML subset: {text!r}")
    return text


def read_yaml(path: Path) -> Any:
    lines = [(i + 1, line.rstrip()) for i, line in enumerate(path.read_text().splitlines())
             if line.strip() and not line.lstrip().startswith("#")]
    if any("\t" in line[: len(line) - len(line.lstrip())] for _, line in lines):
        raise ValueError(f"{path}: tabs in indentation")

    def block(start: int, indent: int) -> tuple[Any, int]:
        first = lines[start][1]
        if first[indent:].startswith("- "):
            items: list[Any] = []
            i = start
            while i < len(lines) and lines[i][1].startswith(" " * indent + "- "):
                number, line = lines[i]
                item = line[indent + 2:]
                if re.match(r"[A-Za-z0-9_.-]+:( |$)", item):
                    # "- key: value" opens a mapping whose keys sit two columns in
                    lines[i] = (number, " " * (indent + 2) + item)
                    value, i = block(i, indent + 2)
                    items.append(value)
                else:
                    items.append(_scalar(item, f"{path}:{number}"))
                    i += 1
            return items, i
        mapping: dict[str, Any] = {}
        i = start
        while i < len(lines):
            number, line = lines[i]
            depth = len(line) - len(line.lstrip())
            if depth < indent:
                break
            if depth > indent:
                raise ValueError(f"{path}:{number}: unexpected indentation")
            key, sep, rest = line.strip().partition(":")
            if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]+", key):
                raise ValueError(f"{path}:{number}: expected 'key: value'")
            if key in mapping:
                raise ValueError(f"{path}:{number}: duplicate key {key!r}")
            if rest.strip():
                mapping[key] = _scalar(rest, f"{path}:{number}")
                i += 1
            else:
                child = lines[i + 1][1] if i + 1 < len(lines) else ""
                child_indent = len(child) - len(child.lstrip())
                if child_indent <= indent:
                    raise ValueError(f"{path}:{number}: {key!r} has no value")
                mapping[key], i = block(i + 1, child_indent)
        return mapping, i

    data, end = block(0, 0)
    assert end == len(lines)
    return data


def interpolate(value: str) -> str:
    """Compose's ``${VAR:-default}`` with the defaults (no .env is read here)."""
    return re.sub(r"\$\{([A-Z_]+):-([^}]*)\}", lambda m: m.group(2), value)


def compose(name: str) -> dict[str, Any]:
    data = read_yaml(DOCKER / name)
    try:
        import yaml  # optional: cross-check the subset reader
    except ImportError:
        return data
    assert yaml.safe_load((DOCKER / name).read_text()) == data
    return data


def console_scripts() -> dict[str, click.Command]:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    commands = {}
    for name, target in scripts.items():
        module, _, attr = target.partition(":")
        try:
            commands[name] = getattr(__import__(module, fromlist=[attr]), attr)
        except ImportError:  # e.g. the sim extra is not installed: not used by docker/
            continue
    return commands


def check_command(argv: list[str]) -> None:
    """``argv`` names a console script of ours and its options parse (nothing is run)."""
    scripts = console_scripts()
    assert argv[0] in scripts, f"{argv[0]!r} is not a console script ({sorted(scripts)})"
    command = scripts[argv[0]]
    args = [interpolate(a) for a in argv[1:]]
    with command.make_context(argv[0], list(args), resilient_parsing=False) as context:
        if isinstance(command, click.Group):
            name, sub, rest = command.resolve_command(context, list(args))
            assert sub is not None, f"{argv}: no such subcommand"
            sub.make_context(name, rest, parent=context)


def setting_path(variable: str) -> list[str]:
    """SFUB_REDIS__URL -> ["redis", "url"], checked against the settings models."""
    assert variable.startswith("SFUB_"), variable
    parts = variable[len("SFUB_"):].lower().split("__")
    model: Any = Settings
    for part in parts:
        assert model is not None and part in model.model_fields, (
            f"{variable}: {part!r} is not a setting")
        annotation = model.model_fields[part].annotation
        model = annotation if isinstance(annotation, type) and hasattr(
            annotation, "model_fields") else None
    return parts


def env_example() -> dict[str, str]:
    result = {}
    for line in (DOCKER / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), line
            result[key] = value
    return result


def services() -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for name in COMPOSE_FILES:
        for service, spec in compose(name)["services"].items():
            merged.setdefault(service, {}).update(spec)
    return merged


def test_every_command_is_a_console_script_with_valid_options() -> None:
    checked = 0
    for name, spec in services().items():
        command = spec.get("command")
        if command is None or command[0].startswith("--"):
            continue  # the image's own entry point (prometheus) with flags
        if command[0] in IMAGE_COMMANDS:
            assert "build" not in spec, f"{name}: our image runs {command[0]}"
            continue
        check_command(command)
        checked += 1
    assert checked == 4  # two balancers, two bridges
    for dockerfile in DOCKER.glob("Dockerfile.*"):
        cmd = re.search(r"^CMD (\[.*\])$", dockerfile.read_text(), re.M)
        assert cmd is not None, dockerfile
        check_command(json.loads(cmd.group(1)))


def test_unknown_command_or_option_is_caught() -> None:
    with pytest.raises(AssertionError):
        check_command(["sfu-nothing"])
    with pytest.raises(click.UsageError):
        check_command(["sfu-bridge", "--balancer", "http://x", "--no-such-option"])
    with pytest.raises(AssertionError):
        setting_path("SFUB_REDIS__URLL")


def test_every_setting_is_real_and_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    example = env_example()
    for name, spec in services().items():
        environment = spec.get("environment", {})
        if not environment:
            continue
        for key in os.environ:
            if key.startswith("SFUB_"):
                monkeypatch.delenv(key)
        variables = {k: interpolate(str(v)) for k, v in (example | environment).items()
                     if k.startswith("SFUB_")}
        for variable, value in variables.items():
            setting_path(variable)
            monkeypatch.setenv(variable, value)
        settings = Settings()  # values parse (types, ranges)
        assert settings.redis.url and settings.signaling_urls, name
        assert f"http://127.0.0.1:{settings.port}" in settings.signaling_urls


def test_bridges_dial_every_instance_and_prometheus_scrapes_each() -> None:
    all_services = services()
    ports = sorted(str(spec["environment"]["SFUB_PORT"]) for spec in all_services.values()
                   if spec.get("command", [""])[0] == "sfu-balancer")
    assert len(ports) == 2
    for name, spec in all_services.items():
        if spec.get("command", [""])[0] == "sfu-bridge":
            command = spec["command"]
            dialed = sorted(command[i + 1].rsplit(":", 1)[1]
                            for i, arg in enumerate(command) if arg == "--balancer")
            assert dialed == ports, f"{name} dials {dialed}, instances listen on {ports}"
            assert spec["network_mode"] == "host", "media needs host networking"
    prometheus = read_yaml(DOCKER / "prometheus.yml")
    targets = sorted(t.rsplit(":", 1)[1] for job in prometheus["scrape_configs"]
                     for group in job["static_configs"] for t in group["targets"])
    assert targets == ports


def test_dockerfiles_install_like_the_readme() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for dockerfile in DOCKER.glob("Dockerfile.*"):
        text = dockerfile.read_text()
        install = re.search(r"pip install [^\n]*'\.\[([a-z,]+)\]'", text)
        assert install is not None, f"{dockerfile.name}: no pip install of the project"
        assert set(install.group(1).split(",")) <= set(extras)
        assert "python -m venv .venv" in text
        for source in re.findall(r"^COPY (\S+)", text, re.M):
            assert (ROOT / source).exists(), f"{dockerfile.name} copies missing {source}"
    assert shlex.split("a 'b c'") == ["a", "b c"]  # shlex is what compose strings would use
