"""Every setting escotag reads from its environment, in one object read once per process (pydantic-settings).

``get_settings()`` is what the modules use; the CLI and ``create_app(settings=…)`` install their own with
``use_settings`` (command-line options win over ``ESCOTAG_*`` variables); nothing else reads ``os.environ``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import ConfigError


class Settings(BaseSettings):
    """escotag's settings: each field is also the ``ESCOTAG_<FIELD>`` environment variable."""

    model_config = SettingsConfigDict(env_prefix="ESCOTAG_", env_ignore_empty=True, frozen=True)

    home: Path = Path("~/.cache/escotag")  # built indices, merged encoders, review queue, rules
    models: Path | None = None  # trained heads (escotag train); None: home/models
    esco_dir: str | None = None  # a CSV export folder or zip, or a packed snapshot; None: the embedded snapshot
    encoder: str | None = None  # the encoder plan; None: accurate
    rules: Path | None = None  # the rules CSV; None: home/rules.csv when it exists
    device: str = "auto"  # where torch encoders run: auto, cpu, cuda, cuda:N
    database_url: str | None = None  # the review queue; None: SQLite under home
    # the HTTP service
    api_key: str | None = None
    cors_origins: Annotated[list[str], NoDecode] = []  # comma-separated in the environment
    max_items: int = 256
    max_topk: int = 100
    max_title_chars: int = 1_000
    max_description_chars: int = 100_000
    max_body_bytes: int = 8 * 1024 * 1024
    max_json_depth: int = 32

    @field_validator("home", "models", "rules", mode="after")
    @classmethod
    def _expand(cls, path: Path | None) -> Path | None:
        return path.expanduser() if path is not None else None

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return [o.strip() for o in value.split(",") if o.strip()] if isinstance(value, str) else value

    @property
    def models_dir(self) -> Path:
        return self.models or self.home / "models"

    @property
    def rules_file(self) -> Path | None:
        """The rules CSV to read: ``rules``, else home/rules.csv when that file exists, else None (no rules)."""
        if self.rules:
            return self.rules
        default = self.home / "rules.csv"
        return default if default.exists() else None

    @property
    def review_database(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'review.sqlite3'}"


_current: Settings | None = None


def get_settings() -> Settings:
    """This process's settings: those installed with ``use_settings``, else the environment's, read once."""
    global _current
    if _current is None:
        try:
            _current = Settings()
        except ValidationError as exc:
            bad = "; ".join(f"ESCOTAG_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"bad setting in the environment: {bad}") from None
    return _current


def use_settings(settings: Settings | None) -> None:
    """Install the settings this process runs with (None: read the environment again on next use)."""
    global _current
    _current = settings


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
