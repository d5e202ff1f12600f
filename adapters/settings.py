"""All of Lifeline's settings, read once from `LIFELINE_*` environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

import msgspec

PREFIX = "LIFELINE_"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    # Where events and views live: sqlite:///path or postgresql://user@host:port/db
    database_url: str = "sqlite:///var/lifeline.db"
    # AES key (base64 of 16, 24 or 32 bytes) for the event store; when empty, a key is
    # generated once into key_file so a fresh machine still never stores secrets in clear.
    cipher_key: str = ""
    key_file: str = "var/lifeline.key"
    snapshot_interval: int = 50
    host: str = "127.0.0.1"
    port: int = 8000
    # Run the projections (and relay/provisioner) inside the API process.
    in_process: bool = True
    bootstrap_api_key: str = ""
    # NATS: empty means run without NATS.
    nats_url: str = ""
    nats_stream: str = "LIFELINE"
    # Subjects are <prefix>.<tenant>.<kind>.<id>.<Event>; a second deployment on the same
    # NATS server (or a test) picks its own prefix.
    nats_subject_prefix: str = "lifeline"
    nats_duplicate_window: float = 120.0
    nats_max_in_flight: int = 1000
    # Runtime provider: local (OS processes), or simulated (an in-memory fake for tests).
    provider: str = "local"
    runtime_dir: str = "var/runtimes"
    transition_timeout: float = 300.0
    # USD per 1,000 tokens, by model; "default" applies to unlisted models.
    model_prices: dict[str, str] = msgspec.field(
        default_factory=lambda: {"default": "0.002", "echo-1": "0.001"}
    )
    log_level: str = "info"


def _parse(raw: dict[str, str]) -> Settings:
    fields = {f.name: f for f in msgspec.structs.fields(Settings)}
    values: dict[str, Any] = {}
    for name in fields:
        text = raw.get(PREFIX + name.upper())
        if text is None:
            continue
        values[name] = text
    # One conversion pass: msgspec turns "8000" into 8000, "true" into True, JSON objects
    # into dicts, and reports a bad value with the setting's name.
    for name, text in list(values.items()):
        default = getattr(Settings(), name)
        if isinstance(default, dict):
            values[name] = msgspec.json.decode(text)
    try:
        return msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as e:
        raise SettingsError(str(e)) from None


class SettingsError(ValueError):
    """A LIFELINE_* variable has a value of the wrong kind."""


def load_settings(environ: dict[str, str] | None = None) -> Settings:
    return _parse(dict(os.environ if environ is None else environ))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return load_settings()
