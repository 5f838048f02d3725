"""Keeping the backends' state fresh: their model lists every BACKEND_REFRESH, probes that bring failed ones back,
and the live check behind /health."""

from __future__ import annotations

import threading
import time

from loguru import logger

from ..errors import APIError
from .backend import Backend
from .backends import Backends

TICK = 0.5  # seconds between looks at which failed backends are due for a probe


def refresh_models(pool: Backends, backend: Backend, timeout: float) -> None:
    """Read one backend's `/api/tags`; unreachable or failing (5xx), it is marked down."""
    try:
        tags = backend.client.get_json("/api/tags", timeout=timeout).get("models")
    except APIError as err:
        if err.status >= 500:
            with pool.lock:
                backend.mark_down(err.message)
        return
    with pool.lock:
        backend.set_tags(tags if isinstance(tags, list) else [])


def probe(pool: Backends, backend: Backend, timeout: float) -> APIError | None:
    """Ask a backend for `/api/version`: up (and its models re-read when it was down), or down with the error."""
    try:
        version = backend.client.get_json("/api/version", timeout=timeout).get("version")
    except APIError as err:
        with pool.lock:
            backend.mark_down(err.message)
        return err
    with pool.lock:
        was_down = not backend.up
        backend.mark_up(version if isinstance(version, str) else None)
    if was_down and pool.several:
        logger.bind(backend=backend.name).info("Ollama backend is up again")
        refresh_models(pool, backend, timeout)
        pool.notify()
    return None


def check(pool: Backends, timeout: float) -> tuple[str | None, APIError | None]:
    """For /health: probe every backend that is up or due for a probe; the first healthy one's version, or the
    last error when none is up."""
    now = time.monotonic()
    error: APIError | None = None
    version: str | None = None
    for backend in pool.backends:
        if backend.up or backend.probe_at <= now or not pool.several:
            error = probe(pool, backend, timeout) or error
        if backend.up and version is None:
            version = backend.version
    if any(b.up for b in pool.backends):
        return version, None
    return None, error


class Watcher:
    """The daemon thread of one worker process that refreshes model lists and probes failed backends."""

    def __init__(self, pool: Backends, *, refresh: float, timeout: float):
        self.pool = pool
        self.refresh = refresh
        self.timeout = timeout
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="llamagate-backends", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 1)
            self._thread = None

    def _run(self) -> None:
        next_refresh = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_refresh:
                    for backend in self.pool.backends:
                        if backend.up:
                            refresh_models(self.pool, backend, self.timeout)
                    next_refresh = time.monotonic() + self.refresh
                now = time.monotonic()
                for backend in self.pool.backends:
                    if not backend.up and backend.probe_at <= now:
                        probe(self.pool, backend, self.timeout)
            except Exception:  # the watcher must outlive any surprise
                logger.exception("backend refresh failed")
            self._stop.wait(min(TICK, max(0.0, next_refresh - time.monotonic())))
