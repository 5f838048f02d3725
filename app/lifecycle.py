"""Per-process resources (the MCP pool, ...): started once the worker has its app, stopped after the drain.

A resource registers itself while the app is built::

    lifecycle.register(app, "mcp", start=pool.start, stop=pool.stop)

The launchers then call `start_worker_resources(app)` in each serving process (gunicorn's
`post_worker_init`, i.e. after the fork; waitress before it serves) and `stop_worker_resources(app)`
once in-flight requests have finished or the shutdown timeout has passed (gunicorn's `worker_exit`;
waitress after its drain). Starts run in registration order, stops in reverse; both are idempotent,
and a callback that raises is logged without keeping the others from running.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from loguru import logger

EXTENSION_KEY = "llamagate.lifecycle"


@dataclass
class _Resource:
    name: str
    start: Callable[[], Any] | None
    stop: Callable[[], Any] | None


@dataclass
class Lifecycle:
    """The resources of one app and which of them are running."""

    resources: list[_Resource] = field(default_factory=list)
    running: list[_Resource] = field(default_factory=list)
    started: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def _lifecycle(app: Any) -> Lifecycle | None:
    extensions = getattr(app, "extensions", None)
    if extensions is None:
        return None
    return extensions.setdefault(EXTENSION_KEY, Lifecycle())


def register(app: Any, name: str, start: Callable[[], Any] | None = None,
             stop: Callable[[], Any] | None = None) -> None:
    """Add a resource; registering a name again replaces it. Registered after the start, it starts at once."""
    state = _lifecycle(app)
    if state is None:
        raise TypeError("register() needs the Flask app")
    resource = _Resource(name, start, stop)
    with state.lock:
        state.resources = [r for r in state.resources if r.name != name] + [resource]
        late = state.started
    if late:
        _start(state, resource)


def start_worker_resources(app: Any) -> None:
    """Start every registered resource in this process (once)."""
    state = _lifecycle(app)
    if state is None:
        return
    with state.lock:
        if state.started:
            return
        state.started = True
        resources = list(state.resources)
    for resource in resources:
        _start(state, resource)


def stop_worker_resources(app: Any) -> None:
    """Stop what was started, newest first (once); meant for after in-flight requests have drained."""
    state = _lifecycle(app)
    if state is None:
        return
    with state.lock:
        running, state.running = state.running, []
        state.started = False
    for resource in reversed(running):
        if resource.stop is None:
            continue
        try:
            resource.stop()
            logger.bind(resource=resource.name).debug("worker resource stopped")
        except Exception:
            logger.bind(resource=resource.name).exception("worker resource failed to stop")


def _start(state: Lifecycle, resource: _Resource) -> None:
    try:
        if resource.start is not None:
            resource.start()
    except Exception:
        logger.bind(resource=resource.name).exception("worker resource failed to start")
        return
    with state.lock:
        state.running.append(resource)
    logger.bind(resource=resource.name).debug("worker resource started")
