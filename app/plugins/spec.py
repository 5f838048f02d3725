"""The validated `plugins:` section: what to load, and each listed plugin's class and options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any


@dataclass(frozen=True)
class PluginSpec:
    """One listed plugin after discovery: its class (None when its import failed, with `error`) and options."""

    name: str
    source: str  # the file, or "entry point <module>:<attr>"
    cls: type | None
    error: str | None = None
    priority: int = 0
    timeout: float = 2.0
    on_error: str = "fail_closed"  # or "fail_open"
    config: Mapping[str, Any] = field(default_factory=dict, repr=False)  # validated by the class's Config
    detail: str | None = field(default=None, repr=False, compare=False)  # the traceback of a failed import


@dataclass(frozen=True)
class PluginsSettings:
    """``enabled`` false (PLUGINS_ENABLED=false) means nothing was imported and ``items`` is empty."""

    enabled: bool = True
    dirs: tuple[str, ...] = ()
    items: tuple[PluginSpec, ...] = ()
