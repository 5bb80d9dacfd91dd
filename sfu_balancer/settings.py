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
    lease_ttl_s: float = Field(10.0, gt=0)  # an instance silent this long is dead (reaped)
    timeout_s: float = Field(1.0, gt=0)  # a Redis call slower than this counts as an outage


class LimitSettings(BaseModel):
    """Abuse limits on participants (``[limits]``). A rate of 0 disables that limit."""

    allow_cidrs_file: Path | None = None  # only these networks may connect (one CIDR a line)
    block_cidrs_file: Path | None = None  # these may not; reloaded on SIGHUP
    connections_per_ip_per_min: float = Field(60.0, ge=0)
    joins_per_ip_per_min: float = Field(30.0, ge=0)
    burst: int = Field(10, ge=1)  # requests an address may make at once before the rate applies
    max_room_participants: int = Field(100, ge=0)  # 0 = no limit
    ws_messages_per_s: float = Field(20.0, ge=0)  # per socket
    ws_burst: int = Field(50, ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SFUB_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )
    _toml_file: ClassVar[Path | None] = None

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    dev: bool = False  # no admin token, console logs
    public_url: str | None = None  # printed join URLs; default http://host:port
    # Every instance's public URL, given to join pages (GET /api/v1/signaling) so a page whose
    # instance dies reconnects to another; empty = the page retries its own URL (a proxy).
    signaling_urls: list[str] = Field(default_factory=list)
    admin_token: str | None = None  # bearer token for /api/v1 outside dev mode
    log_format: Literal["auto", "console", "json"] = "auto"
    log_level: str = "INFO"
    report_interval_s: float = Field(1.0, gt=0)
    failed_after_intervals: float = Field(3.0, ge=1)  # silent this long -> bridge failed
    rebalance_interval_s: float = Field(10.0, gt=0)
    allocate_timeout_s: float = Field(15.0, gt=0)
    decision_log: Path | None = None  # JSONL, one line per decision
    seed: int | None = None  # routing randomness; None = fresh entropy at start
    max_message_bytes: int = Field(64 * 1024, ge=1024)  # largest /ws message (and HTTP body)
    # A /ws socket silent this long is pinged, and closed if still silent as long again
    # (service/liveness.py): a vanished participant is dropped 2-3 intervals after its last frame.
    ws_ping_interval_s: float = Field(10.0, gt=0)
    # "auto" = uvloop when installed (it is a dependency), else asyncio with a notice
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    # Garbage collector (service/gc_tuning.py): freeze the start-up heap out of its walks, and
    # collect the young generation every this many allocations (0 = Python's default, 700).
    gc_freeze: bool = True
    gc_young_threshold: int = Field(50_000, ge=0)
    routing: dict[str, Any] = Field(default_factory=dict)
    costs: dict[str, Any] = Field(default_factory=dict)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    # Security (docs/operations.md, "Security")
    api_keys: dict[str, str] = Field(default_factory=dict)  # token issuer (iss) -> HS256 secret
    token_algorithms: list[str] = Field(default_factory=lambda: ["HS256"])
    token_leeway_s: float = Field(10.0, ge=0)  # clock skew allowed on exp / nbf
    token_audience: str | None = None  # required "aud" (Jitsi-shaped tokens), if set
    bridge_secret: str | None = None  # bridges prove it in hello; required outside dev
    admin_listen: str | None = None  # "127.0.0.1:9090": admin API only on this listener
    limits: LimitSettings = Field(default_factory=LimitSettings)

    @field_validator("token_algorithms")
    @classmethod
    def _known_algorithms(cls, value: list[str]) -> list[str]:
        allowed = {"HS256", "HS384", "HS512"}
        bad = [a for a in value if a not in allowed]
        if bad or not value:
            raise ValueError(f"token_algorithms must be a non-empty subset of {sorted(allowed)}, "
                             f"got {value!r}")
        return value

    @field_validator("api_keys")
    @classmethod
    def _long_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        short = sorted(key for key, secret in value.items() if len(secret) < 32)
        if short:
            raise ValueError(f"api_keys secrets must be at least 32 characters (HS256, RFC 7518 "
                             f"3.2); too short for: {short}")
        return value

    @field_validator("bridge_secret")
    @classmethod
    def _long_bridge_secret(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 16:
            raise ValueError("bridge_secret must be at least 16 characters")
        return value

    @field_validator("admin_listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
                raise ValueError(f"admin_listen must be HOST:PORT, got {value!r}")
        return value

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
