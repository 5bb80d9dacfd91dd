import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from sfu_balancer.cli import main
from sfu_balancer.settings import Settings, load_settings

SAMPLE = Path(__file__).resolve().parents[2] / "config-sample.toml"


def test_config_sample_loads_and_covers_every_setting() -> None:
    settings = load_settings(SAMPLE)
    assert settings.routing_config.policy == "balanced"
    table = tomllib.loads(SAMPLE.read_text())
    commented = set(table) | {line.split("=")[0].strip("# ").strip()
                              for line in SAMPLE.read_text().splitlines() if "=" in line}
    assert set(Settings.model_fields) <= commented


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
