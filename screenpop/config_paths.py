"""Which configuration a command uses, and where its files are.

One rule a user can predict: ``--config`` (before or after the sub-command),
else ``$SCREENPOP_CONFIG``, else the shipped ``config/demo.toml``, the file
``screenpop demo`` runs with.  The demo config's relative paths
(``var/demo/…``) are the checkout's whatever the working directory, so
``screenpop users list`` or ``tokens create`` beside a running demo read and
write the demo's own database.  Every command says on stderr which file and
which database it uses (:meth:`ConfigChoice.describe`).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from screenpop.config import Settings, load_settings

PROJECT_DIR = Path(__file__).resolve().parents[1]
DEMO_CONFIG = PROJECT_DIR / "config" / "demo.toml"
CONFIG_ENV = "SCREENPOP_CONFIG"  # the configuration file when no --config is given


@dataclass(frozen=True, slots=True)
class ConfigChoice:
    """Which configuration file a command runs with, and why: ``--config``,
    else ``$SCREENPOP_CONFIG``, else the shipped demo config (what
    ``screenpop demo`` runs), so ``users list`` or ``tokens create`` next to a
    running demo see the demo's own database."""

    path: Path | None  # None: built-in defaults (an install without config/demo.toml)
    origin: str  # "--config", "SCREENPOP_CONFIG" or "default"

    @property
    def is_demo(self) -> bool:
        try:
            return self.path is not None and self.path.resolve() == DEMO_CONFIG
        except OSError:
            return False

    def load(self, env: Mapping[str, str] | None = None) -> Settings:
        """The settings; the demo config's relative paths (``var/demo/…``)
        are the checkout's, whatever the working directory, so every command
        finds the files the demo uses."""
        return load_settings(self.path, env, base_dir=PROJECT_DIR if self.is_demo else None)

    def describe(self, settings: Settings, *, database: bool = True) -> str:
        """One line for stderr: the file and the database a command uses."""
        where = "built-in defaults" if self.path is None else str(self.path)
        why = {"--config": "--config", CONFIG_ENV: f"${CONFIG_ENV}"}.get(
            self.origin, f"the default: no --config or ${CONFIG_ENV}")
        line = f"config {where} ({why})"
        return f"{line}, database {describe_dsn(settings.storage.dsn)}" if database else line


def choose_config(given: str | os.PathLike | None, env: Mapping[str, str] | None = None) -> ConfigChoice:
    env = os.environ if env is None else env
    if given:
        return ConfigChoice(Path(given), "--config")
    if env.get(CONFIG_ENV):
        return ConfigChoice(Path(env[CONFIG_ENV]), CONFIG_ENV)
    return ConfigChoice(DEMO_CONFIG if DEMO_CONFIG.is_file() else None, "default")


def describe_dsn(dsn: str) -> str:
    """A database URL as a person checks it: an SQLite file as its absolute
    path, any other URL without its password."""
    from urllib.parse import urlsplit, urlunsplit

    sqlite = _sqlite_path(dsn)
    if sqlite is not None:
        return f"{Path(sqlite[1]).absolute()} (SQLite)" if sqlite[1] not in ("", ":memory:") else dsn
    try:
        parts = urlsplit(dsn)
        if parts.password:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
            return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        pass
    return dsn


def _sqlite_path(dsn: str) -> tuple[str, str, str] | None:
    """``(prefix, path, query)`` of an SQLite URL (``sqlite+aiosqlite:///var/x.db``), None for others."""
    match = re.match(r"^(sqlite(?:\+\w+)?:///)([^?]*)(\?.*)?$", dsn)
    return (match[1], match[2], match[3] or "") if match else None


def _anchor(dsn_or_path: str, base: Path, *, url: bool) -> str:
    if url:
        sqlite = _sqlite_path(dsn_or_path)
        if sqlite is None or sqlite[1] in ("", ":memory:") or Path(sqlite[1]).is_absolute():
            return dsn_or_path
        return f"{sqlite[0]}{base / sqlite[1]}{sqlite[2]}"
    return dsn_or_path if not dsn_or_path or Path(dsn_or_path).is_absolute() else str(base / dsn_or_path)


def anchor_paths(raw: dict, base: Path, *, storage_dsn: str, spill_path: str) -> None:
    """Relative database files and the spill file of ``raw`` (the file's
    values, before the environment's) made relative to ``base``; the
    defaults given are anchored too when the file does not set them."""
    storage = raw.setdefault("storage", {})
    if isinstance(storage, dict):
        storage["dsn"] = _anchor(str(storage.get("dsn", storage_dsn)), base, url=True)
    interactions = raw.setdefault("interactions", {})
    if isinstance(interactions, dict):
        interactions["spill_path"] = _anchor(str(interactions.get("spill_path", spill_path)), base, url=False)
    for source in raw.get("sources", []) if isinstance(raw.get("sources"), list) else []:
        if isinstance(source, dict) and isinstance(source.get("dsn"), str):
            source["dsn"] = _anchor(source["dsn"], base, url=True)
