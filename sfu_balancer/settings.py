"""Balancer settings: a TOML file (``--config``) and ``SFUB_*`` environment variables.

Precedence, highest first: keyword arguments (the CLI), environment, the TOML file, defaults.
Nested tables use ``__`` in the environment: ``SFUB_REDIS__URL``, ``SFUB_ROUTING__POLICY``.
``[routing]`` and ``[costs]`` are validated by the routing core itself, so the same table works
in ``sfu-sim`` scenario files and here. Every key is commented in ``config-sample.toml``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from sfu_balancer.core import CostTable, RoutingConfig


def _typed(table: dict[str, Any]) -> dict[str, Any]:
    """Environment values arrive as strings (SFUB_ROUTING__MAX_PER_BRIDGE=40): read those that
    are JSON (numbers, booleans, tables) as JSON; the rest stay strings ("balanced")."""
    result: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            result[key] = _typed(value)
        elif isinstance(value, str):
            try:
                result[key] = json.loads(value)
            except ValueError:
                result[key] = value
        else:
            result[key] = value
    return result


class RedisSettings(BaseModel):
    url: str | None = None  # None = in-memory state: one balancer process on its own
    prefix: str = "sfub"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SFUB_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )
    _toml_file: ClassVar[Path | None] = None

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    dev: bool = False  # no admin token, console logs
    public_url: str | None = None  # printed join URLs; default http://host:port
    admin_token: str | None = None  # bearer token for /api/v1 outside dev mode
    log_format: Literal["auto", "console", "json"] = "auto"
    log_level: str = "INFO"
    report_interval_s: float = Field(1.0, gt=0)
    failed_after_intervals: float = Field(3.0, ge=1)  # silent this long -> bridge failed
    rebalance_interval_s: float = Field(10.0, gt=0)
    allocate_timeout_s: float = Field(15.0, gt=0)
    decision_log: Path | None = None  # JSONL, one line per decision
    seed: int | None = None  # routing randomness; None = fresh entropy at start
    max_message_bytes: int = Field(256 * 1024, ge=1024)
    routing: dict[str, Any] = Field(default_factory=dict)
    costs: dict[str, Any] = Field(default_factory=dict)
    redis: RedisSettings = Field(default_factory=RedisSettings)

    @field_validator("routing")
    @classmethod
    def _valid_routing(cls, value: dict[str, Any]) -> dict[str, Any]:
        value = _typed(value)
        RoutingConfig.from_mapping(value)  # ValueError names the key
        return value

    @field_validator("costs")
    @classmethod
    def _valid_costs(cls, value: dict[str, Any]) -> dict[str, Any]:
        value = _typed(value)
        CostTable.from_mapping(value)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls._toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls._toml_file))
        return tuple(sources)

    @property
    def routing_config(self) -> RoutingConfig:
        return RoutingConfig.from_mapping(self.routing)

    @property
    def cost_table(self) -> CostTable:
        return CostTable.from_mapping(self.costs)

    @property
    def failed_after_s(self) -> float:
        return self.report_interval_s * self.failed_after_intervals

    def base_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Settings from ``config`` (TOML), the environment and ``overrides`` (None values skipped)."""
    if config is not None and not config.is_file():
        raise ValueError(f"config file {config} does not exist")
    Settings._toml_file = config
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    finally:
        Settings._toml_file = None
