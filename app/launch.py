"""Start-up shared by the launchers: settings check, logging, app; waitress serving for Windows."""

from __future__ import annotations

import errno
import gc
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask


_IN_USE = {errno.EADDRINUSE, 10048, 10013}  # 10048 WSAEADDRINUSE, 10013 WSAEACCES (exclusive bind refused)
MAX_REQUEST_HEAD = 64 * 1024  # a request head (request line and headers) longer than this is refused with 431
# Open connections waitress holds at once; select() on Windows handles at most 512 sockets.
_CONNECTION_LIMIT = 500 if os.name == "nt" else 1000


def fail(message: str, code: int = 2) -> None:
    """Stop start-up with one line on stderr."""
    print(f"llamagate: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


@contextmanager
def no_garbage_collection() -> Iterator[None]:
    """No garbage collection while start-up builds what lasts as long as the process (modules, settings, the app): it
    makes next to no garbage, and the collector would walk the growing heap again and again. Nothing is frozen after
    (gc.freeze): with the heap out of its count, full collections come far more often, and streams were ~10 % slower."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def build_app() -> Flask:
    """The gateway built from this process's settings (loaded once; under gunicorn, by the master), logging set up."""
    from . import create_app
    from .logs import configure_logging
    from .settings import ConfigError
    from .settings import process_settings

    try:
        with no_garbage_collection():
            settings = process_settings()
            configure_logging(settings)
            return create_app(settings=settings)
    except ConfigError as err:
        fail(str(err))
        raise  # unreachable; keeps type checkers content


def serve_with_waitress(app: Flask) -> None:
    """Serve on HOST:PORT with THREADS threads until SIGTERM/SIGINT (Ctrl+C, Ctrl+Break, a service stop).

    The first signal stops accepting and lets open requests and streams finish for up to
    SHUTDOWN_TIMEOUT; a second one stops at once. Per-process resources start before serving and
    stop after the drain. TLS is not served here: IIS, Apache or nginx terminate it in front.
    """
    from loguru import logger
    from waitress import create_server

    from .lifecycle import start_worker_resources
    from .lifecycle import stop_worker_resources
    from .waitress_channel import GatewayChannel

    settings = app.config
    host, port = settings["HOST"], settings["PORT"]
    if settings["TLS_ENABLED"]:
        fail("waitress does not serve TLS: set TLS_ENABLED=false and terminate TLS in IIS, Apache or nginx, "
             "or run under gunicorn on Linux")
    _check_port_free(host, port)
    sockets: dict = {}
    try:
        # waitress reads each request whole in its event loop, so slow clients hold a socket, never a thread.
        server = create_server(app, map=sockets, host=host, port=port, threads=settings["THREADS"],
                               channel_timeout=max(1, int(settings["IDLE_TIMEOUT"])), ident="llamagate",
                               cleanup_interval=1, clear_untrusted_proxy_headers=False, send_bytes=1,
                               connection_limit=_CONNECTION_LIMIT, asyncore_use_poll=os.name != "nt",
                               max_request_body_size=settings["MAX_REQUEST_BODY"],
                               max_request_header_size=MAX_REQUEST_HEAD)
    except OSError as err:
        if err.errno in _IN_USE or getattr(err, "winerror", None) in _IN_USE:
            _port_in_use(host, port)
        raise
    for listener in _listeners(sockets):
        listener.channel_class = GatewayChannel
        _close_silent_channels(listener, settings["HEADER_TIMEOUT"])
    stop = _StopSignals(server)
    logger.bind(host=host, port=port, threads=settings["THREADS"],
                shutdown_timeout=settings["SHUTDOWN_TIMEOUT"]).info("serving with waitress")
    start_worker_resources(app)
    try:
        _loop(server, sockets, until=lambda: stop.count > 0)
        logger.bind(shutdown_timeout=settings["SHUTDOWN_TIMEOUT"]).info("draining: no new connections")
        _stop_accepting(sockets)
        deadline = time.monotonic() + settings["SHUTDOWN_TIMEOUT"]
        _loop(server, sockets,
              until=lambda: stop.count > 1 or time.monotonic() >= deadline or not _busy(server, sockets))
        if _busy(server, sockets):
            logger.warning("shutdown timeout reached with requests still open; closing them")
    finally:
        stop.restore()
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
        _close_all(sockets)
        stop_worker_resources(app)
        logger.info("waitress stopped")
        logger.complete()


def _close_silent_channels(listener, header_timeout: float) -> None:
    """Also close, at each maintenance pass, connections that have sent nothing for HEADER_TIMEOUT since opening."""
    maintenance = listener.maintenance

    def with_silent(now: float) -> None:
        maintenance(now)
        cutoff = now - header_timeout
        for channel in list(listener.active_channels.values()):
            if channel.last_activity == channel.creation_time < cutoff and not channel.requests:
                channel.will_close = True

    listener.maintenance = with_silent


def _port_in_use(host: str, port: int) -> None:
    fail(f"cannot listen on {host}:{port}: Address already in use (is another gateway running?)", 1)


def _check_port_free(host: str, port: int) -> None:
    """Bind a probe first: on Windows waitress's SO_REUSEADDR would let a second server share the port."""
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror as err:
        fail(f"cannot listen on {host}:{port}: {err.strerror}", 1)
        return
    for family, kind, proto, _, address in infos:
        probe = socket.socket(family, kind, proto)
        try:
            if os.name == "nt":
                probe.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_EXCLUSIVEADDRUSE", -5), 1)
            else:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
        except OSError as err:
            if err.errno in _IN_USE or getattr(err, "winerror", None) in _IN_USE:
                _port_in_use(host, port)
            fail(f"cannot listen on {host}:{port}: {err.strerror}", 1)
        finally:
            probe.close()


class _StopSignals:
    """Counts SIGTERM/SIGINT/SIGBREAK and wakes the server loop; `restore()` puts the old handlers back."""

    def __init__(self, server):
        self.count = 0
        self.server = server
        self.previous = {}
        for name in ("SIGTERM", "SIGINT", "SIGBREAK"):
            number = getattr(signal, name, None)
            if number is not None:
                self.previous[number] = signal.signal(number, self._handle)

    def _handle(self, signum, frame) -> None:
        self.count += 1
        try:
            _trigger(self.server).pull_trigger()
        except Exception:  # noqa: S110 - the loop wakes up within a second anyway
            pass

    def restore(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)


def _trigger(server):
    trigger = getattr(server, "trigger", None)
    if trigger is None:  # several listening sockets: every server in the map shares the loop
        trigger = next(d.trigger for d in server.map.values() if hasattr(d, "trigger"))
    return trigger


def _loop(server, sockets: dict, until) -> None:
    from waitress import wasyncore

    while sockets and not until():
        wasyncore.loop(timeout=server.adj.asyncore_loop_timeout, map=sockets, use_poll=server.adj.asyncore_use_poll,
                       count=1)


def _listeners(sockets: dict) -> list:
    from waitress.server import BaseWSGIServer

    return [d for d in list(sockets.values()) if isinstance(d, BaseWSGIServer)]


def _stop_accepting(sockets: dict) -> None:
    """Close the listening sockets (new clients are refused) but keep the loop's trigger for the open ones."""
    from waitress import wasyncore

    for listener in _listeners(sockets):
        listener.accepting = False
        wasyncore.dispatcher.close(listener)


def _busy(server, sockets: dict) -> bool:
    """A request is queued or running, or a response is still being sent; idle keep-alive connections are closed."""
    from waitress.channel import HTTPChannel

    busy = bool(server.task_dispatcher.queue)
    for channel in list(sockets.values()):
        if not isinstance(channel, HTTPChannel):
            continue
        if channel.requests or channel.total_outbufs_len:
            busy = True
        else:
            channel.will_close = True  # no new request on an idle connection once draining
    return busy


def _close_all(sockets: dict) -> None:
    from waitress import wasyncore

    wasyncore.close_all(sockets)
