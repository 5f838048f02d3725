"""One Ollama backend's live state: its models, its requests in flight, and whether it is up."""

from __future__ import annotations

import time

from flask import current_app
from flask import has_app_context

from ..metrics import UPSTREAM_ERRORS
from ..metrics import UPSTREAM_IN_FLIGHT
from ..settings.backends import BackendConfig
from .ollama import OllamaClient

BACKOFF_FIRST = 1.0  # seconds before the first probe of a backend that failed
BACKOFF_MAX = 30.0


class Backend:
    """A backend and its counters; the pool changes them under its lock."""

    def __init__(self, config: BackendConfig, client: OllamaClient, *, counted: bool = True):
        self.config = config
        self.name = config.name
        self.client = client
        self.in_flight = 0
        self.waiting = 0  # requests queued for a slot, counted against this backend's `queue`
        self.served = 0  # requests sent, the tie-break between equally busy backends
        self.tags: list[dict] = []  # the last /api/tags entries
        self.names: list[str] | None = None  # their model names; None until a list was read
        self.models: frozenset[str] = frozenset()  # the names, and `name` for each `name:latest`
        self.up = True
        self.failures = 0
        self.probe_at = 0.0  # monotonic time of the next probe while down
        self.error = ""
        self.version: str | None = None
        self.gauge = UPSTREAM_IN_FLIGHT.labels(config.name) if counted else _NOT_COUNTED

    def has_slot(self) -> bool:
        return not self.config.max_concurrency or self.in_flight < self.config.max_concurrency

    def has_queue_room(self) -> bool:
        return self.waiting < self.config.queue

    def load(self) -> tuple[float, float]:
        """Sort key, least busy first: in flight per capacity, then requests served per weight."""
        capacity = self.config.weight * (self.config.max_concurrency or 1)
        return self.in_flight / capacity, self.served / self.config.weight

    def has(self, model: str) -> bool:
        return model in self.models

    def may_have(self, model: str) -> bool:
        """Lists the model, or its list has not been read yet."""
        return self.names is None or model in self.models

    def set_tags(self, tags: list[dict]) -> None:
        self.tags = [tag for tag in tags if isinstance(tag, dict)]
        names = {str(tag.get("model") or tag.get("name") or "") for tag in self.tags} - {""}
        self.names = sorted(names)
        self.models = frozenset(names | {name[: -len(":latest")] for name in names if name.endswith(":latest")})

    def forget(self, model: str) -> None:
        """Drop a deleted model at once (the next refresh would)."""
        self.set_tags([tag for tag in self.tags if model not in (tag.get("model"), tag.get("name"))
                       and f"{model}:latest" not in (tag.get("model"), tag.get("name"))])

    def mark_down(self, reason: str) -> None:
        self.up = False
        self.failures += 1
        self.error = reason
        self.probe_at = time.monotonic() + min(BACKOFF_FIRST * 2 ** (self.failures - 1), BACKOFF_MAX)

    def mark_up(self, version: str | None) -> None:
        self.up = True
        self.failures = 0
        self.error = ""
        self.version = version

    def report(self, anonymous: str | None = None) -> dict:
        """The backend as /health shows it; under an `anonymous` name, without its address."""
        named = {"name": anonymous} if anonymous else {"name": self.name, "url": self.config.url}
        out = {**named, "status": "up" if self.up else "down", "models": self.names,
               "in_flight": self.in_flight, "queued": self.waiting, "max_concurrency": self.config.max_concurrency,
               "queue": self.config.queue, "weight": self.config.weight}
        if self.error:
            out["error"] = self.error
        return out


class _NotCounted:
    """The in-flight gauge with METRICS_ENABLED=false."""

    def inc(self) -> None:
        pass

    def dec(self) -> None:
        pass


_NOT_COUNTED = _NotCounted()


def count_error(backend: str, kind: str) -> None:
    """One failed upstream request in UPSTREAM_ERRORS (unless METRICS_ENABLED=false)."""
    if has_app_context() and not current_app.config.get("METRICS_ENABLED", True):
        return
    UPSTREAM_ERRORS.labels(backend, kind).inc()
