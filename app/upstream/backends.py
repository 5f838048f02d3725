"""Several Ollama servers behind one client: a request goes to a backend that has its model, least busy first,
and moves on to the next one when a backend fails before answering (refused, connect timeout, 502/503/504)."""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Sequence
from typing import Any

from loguru import logger

from ..errors import APIError
from ..errors import BackendsBusy
from ..errors import UpstreamUnavailable
from ..settings.backends import BackendConfig
from ..tally import current as current_tally
from .backend import Backend
from .backend import count_error
from .body import DEFAULT_LIMIT
from .ollama import TRANSPORT_ERRORS
from .ollama import OllamaClient
from .ollama import UpstreamResponse
from .ollama import answered
from .ollama import encode
from .ollama import failure_kind
from .ollama import raise_for_status
from .ollama import read_json
from .ollama import relay_headers

RETRY_STATUSES = frozenset({502, 503, 504})  # a proxy in front of a dead Ollama, or Ollama's own "server busy"
RETRY_AFTER = "1"
# Model management goes to the first healthy backend that has the model (else the first healthy one), so that
# blobs and the create that uses them land on the same server.
MANAGEMENT = frozenset({"/api/pull", "/api/push", "/api/create", "/api/copy", "/api/delete"})


class Backends:
    """The OllamaClient interface (request, relay, get_json, post_json) over one or more backends.

    Slots (`max_concurrency`, `queue`) are counted in this process only.
    """

    def __init__(self, configs: Sequence[BackendConfig], *, connect_timeout: float, read_timeout: float,
                 queue_timeout: float, counted: bool = True, max_line: int = DEFAULT_LIMIT):
        self.backends = [Backend(config, OllamaClient(config.url, connect_timeout=connect_timeout,
                                                      read_timeout=read_timeout, max_line=max_line), counted=counted)
                         for config in configs]
        self.max_line = max_line  # MAX_UPSTREAM_LINE: the longest reply line, or whole reply, read
        self.several = len(self.backends) > 1
        self.queue_timeout = queue_timeout
        self._cond = threading.Condition()
        self._waiters = 0

    def request(self, method: str, path: str, *, body: Any = None, request_id: str | None = None,
                timeout: float | None = None) -> UpstreamResponse:
        """Send one request; a non-2xx answer or a transport failure raises the mapped APIError. The answer holds
        its backend's slot until it is closed."""
        headers, data = encode(body, request_id)
        connect, read = self.backends[0].client.timeouts(timeout)
        response, _ = self._open(model_of(body, path), method, path, headers, data, connect=connect, read=read)
        return raise_for_status(response)

    def relay(self, method: str, path: str, *, data: bytes | None, content_type: str | None = None,
              request_id: str | None = None) -> UpstreamResponse:
        """A client's body as it is, Ollama's answer streamed whatever its status (close it when done)."""
        model = model_of(_parsed(data), path)
        first = path in MANAGEMENT or path.startswith("/api/blobs/")
        client = self.backends[0].client
        response, backend = self._open(model, method, path, relay_headers(content_type, request_id), data or None,
                                       connect=client.connect_timeout, read=client.read_timeout, first=first)
        if path == "/api/delete" and response.status_code == 200 and model:
            with self._cond:
                backend.forget(model)
        return response

    # Whole replies are read as they arrive too, so that their size is checked (the slot is held until then).
    def get_json(self, path: str, *, request_id: str | None = None, timeout: float | None = None) -> dict:
        return read_json(self.request("GET", path, request_id=request_id, timeout=timeout), self.max_line)

    def post_json(self, path: str, body: Any, *, request_id: str | None = None, timeout: float | None = None) -> dict:
        return read_json(self.request("POST", path, body=body, request_id=request_id, timeout=timeout),
                         self.max_line)

    def merged(self, path: str, request_id: str | None = None) -> dict:
        """`/api/tags` or `/api/ps` of every reachable backend, each model once (the first backend's entry)."""
        if not self.several:
            return self.get_json(path, request_id=request_id)
        with self._cond:
            asked = [b for b in self.backends if b.up] or list(self.backends)
        models: dict[str, dict] = {}
        error: APIError | None = None
        answered = False
        for backend in asked:
            try:
                found = backend.client.get_json(path, request_id=request_id).get("models") or []
            except APIError as err:
                error = err
                self._failed(backend, err)
                continue
            answered = True
            if path == "/api/tags":
                with self._cond:
                    backend.set_tags(found)
            for entry in found:
                if isinstance(entry, dict):
                    models.setdefault(str(entry.get("model") or entry.get("name")), entry)
        if not answered and error is not None:
            raise error
        return {"models": list(models.values())}

    def _open(self, model: str, method: str, path: str, headers: dict, data: bytes | None, *, connect: float,
              read: float, first: bool = False) -> tuple[UpstreamResponse, Backend]:
        tally = current_tally()
        if model:
            tally.model = model
        tried: list[Backend] = []
        error: APIError | None = None
        while True:
            backend = self._acquire(model, tried, first)
            if backend is None:  # the first round always has one; later ones follow a failure (`error`)
                raise error or UpstreamUnavailable("No Ollama backend is left to try")
            tally.backend = backend.name
            try:
                response = backend.client.send(method, path, headers, data, connect=connect, read=read)
            except TRANSPORT_ERRORS as err:
                self._release(backend)
                error = backend.client.transport_error(err)
                count_error(backend.name, failure_kind(err))
                if answered(err) or not self._retry(backend, model, tried, error.message):
                    raise error from None
                continue
            if response.status_code >= 500:
                count_error(backend.name, "http_5xx")
                if response.status_code in RETRY_STATUSES and self._retry(
                        backend, model, tried, f"answered HTTP {response.status_code}"):
                    response.close()
                    self._release(backend)
                    continue
            response.on_close(functools.partial(self._release, backend))  # once; also if dropped unclosed
            return response, backend

    def _retry(self, backend: Backend, model: str, tried: list[Backend], reason: str) -> bool:
        """Mark a backend that failed before answering down; whether another one is left to try."""
        tried.append(backend)
        if not self.several:
            return False
        with self._cond:
            if backend.up:
                logger.bind(backend=backend.name).warning("Ollama backend is down: {}", reason)
            backend.mark_down(reason)
            return bool(self._candidates(model, tried))

    def _failed(self, backend: Backend, err: APIError) -> None:
        if err.status >= 500 and self.several:
            with self._cond:
                backend.mark_down(err.message)

    def _candidates(self, model: str, exclude: list[Backend]) -> list[Backend]:
        """Healthy backends that have the model (any healthy one when no backend lists it); when none is
        healthy, the ones that are down, as a last resort. A backend whose list is not read yet may have it."""
        rest = [b for b in self.backends if b not in exclude]
        if not self.several:
            return rest
        if model and any(b.has(model) for b in self.backends):
            rest = [b for b in rest if b.may_have(model)]
        return [b for b in rest if b.up] or rest

    def _acquire(self, model: str, exclude: list[Backend], first: bool) -> Backend | None:
        """Take a slot on the best backend, waiting in a queue (at most BACKEND_QUEUE_TIMEOUT) when all are taken.

        :raises BackendsBusy: every slot and queue place is taken, or the wait ran out.
        """
        with self._cond:
            candidates = self._candidates(model, exclude)
            if not candidates:
                return None
            chosen = _pick(candidates, first)
            if chosen is None:
                chosen = self._wait(model, exclude, first, candidates)
                if chosen is None:
                    return None
            chosen.in_flight += 1
            chosen.served += 1
        chosen.gauge.inc()
        return chosen

    def _wait(self, model: str, exclude: list[Backend], first: bool, candidates: list[Backend]) -> Backend | None:
        spot = min((b for b in candidates if b.has_queue_room()), key=Backend.load, default=None)
        if spot is None:
            raise _busy("every Ollama backend is at its max_concurrency and its queue is full")
        spot.waiting += 1
        self._waiters += 1
        deadline = time.monotonic() + self.queue_timeout
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _busy("no Ollama backend had a free slot within BACKEND_QUEUE_TIMEOUT")
                self._cond.wait(remaining)
                candidates = self._candidates(model, exclude)
                if not candidates:
                    return None
                chosen = _pick(candidates, first)
                if chosen is not None:
                    return chosen
        finally:
            spot.waiting -= 1
            self._waiters -= 1

    def _release(self, backend: Backend) -> None:
        with self._cond:
            backend.in_flight -= 1
            if self._waiters:
                self._cond.notify_all()
        backend.gauge.dec()

    def notify(self) -> None:
        """Wake queued requests (a backend came back)."""
        with self._cond:
            self._cond.notify_all()

    @property
    def lock(self) -> threading.Condition:
        return self._cond


def _pick(candidates: list[Backend], first: bool) -> Backend | None:
    free = [b for b in candidates if b.has_slot()]
    if not free:
        return None
    return free[0] if first else min(free, key=Backend.load)


def _busy(reason: str) -> BackendsBusy:
    return BackendsBusy(f"The gateway is busy: {reason}. Retry shortly.", headers={"Retry-After": RETRY_AFTER})


def _parsed(data: bytes | None) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def model_of(body: Any, path: str) -> str:
    """The model a request body names (`source` for a copy), or ""."""
    if not isinstance(body, dict):
        return ""
    name = body.get("source") if path == "/api/copy" else body.get("model") or body.get("name")
    return name if isinstance(name, str) else ""
