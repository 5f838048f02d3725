"""gunicorn's threaded worker, made safe for slow and silent clients, and for malformed HTTP.

A connection gets a thread only once its request head has arrived whole, within HEADER_TIMEOUT of connecting (or of
becoming readable again after a kept-alive pause): until then the worker's event loop reads it. After an answer, its
thread waits up to LINGER for the next head before handing the connection back. A socket then waits at most
IDLE_TIMEOUT for the client to send or take bytes. The requests gunicorn's parser rejects are answered with
the gateway's JSON error envelope, which echoes nothing of the request, and logged without their text.
"""

from __future__ import annotations

import errno
import json
import select
import selectors
import socket
import ssl
import time
from collections import deque
from functools import partial

from gunicorn.http import wsgi
from gunicorn.http.body import LengthReader
from gunicorn.http.errors import ParseException
from gunicorn.http.parser import RequestParser
from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import TConn
from gunicorn.workers.gthread import ThreadWorker

from .errors import CLIENT_STALLED
from .errors import envelope
from .launch import MAX_REQUEST_HEAD
from .socket_timeouts import AVAILABLE as KERNEL_TIMEOUTS
from .socket_timeouts import kernel_timeouts

_HEAD_ENDS = (b"\n\r\n", b"\n\n")  # a bare-LF head is handed to the parser too, which refuses it
_RECV = 64 * 1024
HEARTBEAT = 1.0  # seconds between the worker's signs of life to the master
ACCEPT_PAUSE = 0.001  # seconds a busy worker leaves new connections to the other workers
# Seconds a request thread waits on its kept-alive connection for the next request, when it is the worker's only
# connection in a thread. A client sending one request after another (a script, an agent's loop) then costs no trip
# through the event loop: two hand-overs between threads a request, each a sleeping thread woken. Under load the
# event loop's batches serve better: threads each woken by their own connection contend for the GIL (with every
# thread free to wait, pass-through at 16 connections was 14 % slower).
LINGER = 0.002
_PARK = object()  # handle()'s result for a connection whose next head has begun: the event loop reads the rest

# gunicorn's parser errors, by class name: (status, reason, code, message). Anything else is a 400.
_REFUSALS = {
    "LimitRequestLine": (414, "URI Too Long", "request_line_too_long", "The request line is too long."),
    "LimitRequestHeaders": (431, "Request Header Fields Too Large", "request_headers_too_large",
                            "The request has too many headers or a header that is too long."),
    "UnsupportedTransferCoding": (501, "Not Implemented", "unsupported_transfer_coding",
                                  "The request's Transfer-Encoding is not supported."),
    "ExpectationFailed": (417, "Expectation Failed", "expectation_failed", "The request's Expect header is not supported."),
    "ForbiddenProxyRequest": (403, "Forbidden", "proxy_protocol_forbidden", "PROXY protocol is not allowed from this address."),
}
_MALFORMED = (400, "Bad Request", "malformed_http", "The request is not valid HTTP/1.1.")
_SERVER_FAULTS = ("InvalidResponseHeader", "InvalidResponseHeaderName", "ConfigurationProblem")


def error_bytes(status: int, reason: str, code: str, message: str, kind: str = "invalid_request_error") -> bytes:
    """A whole HTTP/1.1 response carrying the JSON error envelope, closing the connection."""
    body = json.dumps(envelope(message, kind, None, code)).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def settle_settings(cfg) -> None:
    """gunicorn's settings as plain attributes of this worker's config. Its parser and response read a few dozen a
    request, each through `Config.__getattr__` and the setting's `get()`; a worker's settings never change (a reload
    starts new workers). The ones the config computes in a property (`worker_class`, `sendfile`, ...) stay so."""
    for name, setting in cfg.settings.items():
        if not hasattr(type(cfg), name):  # a property (which has no setter)
            object.__setattr__(cfg, name, setting.get())  # past Config.__setattr__, which refuses setting names


class BlockingClientSocket(socket.socket):
    """A plain HTTP/1.1 client socket that stays in blocking mode, its stalls bounded by the kernel's timeouts.

    gthread switches a kept-alive socket to non-blocking for its event loop and back for the request thread, one
    system call (and one hand-over of the GIL) each way, every request; the event loop's own reads and sends pass
    MSG_DONTWAIT instead, so the mode never has to change.
    """

    __slots__ = ()

    def setblocking(self, flag: bool) -> None:
        pass


class OneWriteResponse(wsgi.Response):
    """gunicorn's HTTP/1.1 response with its head sent together with the first body bytes: one send (one system call,
    one hand-over of the GIL, one segment for the client to read) instead of two, for every answer."""

    _held = b""

    def send_headers(self) -> None:
        if self.headers_sent or self._omits_body:
            super().send_headers()
            return
        lines = [*self.default_headers(), *(f"{name}: {value}\r\n" for name, value in self.headers)]
        self._held = ("".join(lines) + "\r\n").encode("latin-1")
        self.headers_sent = True

    def _emit_body(self, data: bytes) -> None:
        if not self._held:
            super()._emit_body(data)
            return
        if self.chunked:
            data = b"%X\r\n%s\r\n" % (len(data), data)
        head, self._held = self._held, b""
        self.sock.sendall(head + data)

    def sendfile(self, respiter) -> bool:
        self.send_headers()
        self._send_held()  # before the kernel sends the file's bytes
        return super().sendfile(respiter)

    def close(self) -> None:
        self.send_headers()  # an answer whose body yielded nothing has not even held its head yet
        self._send_held()
        super().close()

    def _send_held(self) -> None:
        """The held head on its own, when no body bytes came through `_emit_body` to go with it."""
        if self._held:
            head, self._held = self._held, b""
            self.sock.sendall(head)


class ReadBodyParser(RequestParser):
    """gunicorn's HTTP/1.1 parser, with no drain of a body the app has read to its end: that drain reads nothing,
    yet sets and restores the socket's timeout around it (three system calls a request, with the next one's)."""

    def finish_body(self, deadline=None, max_bytes=None) -> bool:
        body = getattr(self.mesg, "body", None)
        reader = getattr(body, "reader", None)
        if type(reader) is LengthReader and reader.length == 0 and not body.buf.tell() and not body.failed:
            return True
        return super().finish_body(deadline, max_bytes)


class HeadFirstConn(TConn):
    """A connection whose request head may have been read ahead by the event loop (`head`)."""

    def __init__(self, cfg, sock, client, server, *, reads_ahead: bool):
        super().__init__(cfg, sock, client, server)
        self.reads_ahead = reads_ahead  # plain HTTP/1.1: its heads are read by the event loop
        self.head = bytearray()
        self.deadline = 0.0
        self.lingered: str | None = None  # what read_head found when the thread's wait ended in bytes
        self._readable: select.poll | None = None

    def readable_within(self, seconds: float) -> bool:
        if self._readable is None:
            self._readable = select.poll()
            self._readable.register(self.sock.fileno(), select.POLLIN)
        return bool(self._readable.poll(seconds * 1000))

    def init(self) -> None:
        first = not self.initialized
        super().init()  # once per connection; the rest runs before every request on it
        # Plain HTTP/1.1 on Linux: IDLE_TIMEOUT is the kernel's, set once. TLS and HTTP/2 keep Python's socket timeout.
        if not isinstance(self.sock, BlockingClientSocket):
            self.sock.settimeout(self.cfg.keepalive or None)
        elif first:
            kernel_timeouts(self.sock, self.cfg.keepalive)
            self.parser = ReadBodyParser(self.cfg, self.sock, self.client)  # nothing read yet by gunicorn's own
        if self.head:
            self.parser.unreader.unread(bytes(self.head))
            self.head.clear()

    def head_complete(self, new: int) -> bool:
        """Whether the head has ended, looking only at the ``new`` bytes just added (and the few before them)."""
        start = max(0, len(self.head) - new - 3)
        return any(self.head.find(end, start) >= 0 for end in _HEAD_ENDS)


class GatewayWorker(ThreadWorker):
    """gthread with connections parked in the event loop until their request head is in."""

    _next_beat = 0.0
    _next_parent_check = 0.0
    _accept_paused_until = 0.0

    def notify(self) -> None:
        """The heartbeat to the master at most once a second: gunicorn sends it (a syscall) at every turn of the
        event loop, that is on every request, while the master waits `timeout` (120 s) for one."""
        now = time.monotonic()
        if now >= self._next_beat:
            self._next_beat = now + HEARTBEAT
            super().notify()

    def is_parent_alive(self) -> bool:
        """Asked at every turn of the event loop too; the parent is looked up (a system call) at most once a second."""
        now = time.monotonic()
        if now < self._next_parent_check:
            return True
        self._next_parent_check = now + HEARTBEAT
        return super().is_parent_alive()

    def init_process(self) -> None:
        self.parked: deque[HeadFirstConn] = deque()  # ordered by deadline: each gets the same HEADER_TIMEOUT
        # gthread builds each HTTP/1.1 response with wsgi.create(), which takes this module's Response (this process
        # only: it is the worker's own).
        wsgi.Response = OneWriteResponse
        settle_settings(self.cfg)
        super().init_process()

    @property
    def header_timeout(self) -> float:
        return float(getattr(self.wsgi, "config", {}).get("HEADER_TIMEOUT", 10.0))

    def reads_ahead(self, client) -> bool:
        """TLS and HTTP/2 prior knowledge need the socket in a thread from the first byte (gunicorn's own way)."""
        return not self.cfg.is_ssl and not negotiation.prior_knowledge_allowed(self.cfg, client)

    def set_accept_enabled(self, enabled: bool) -> None:
        if enabled and time.monotonic() < self._accept_paused_until:
            enabled = False
        changed = enabled != self._accepting
        super().set_accept_enabled(enabled)
        if changed and enabled and self.cfg.workers > 1:
            self.accept_exclusively()

    def pause_accepting_when_busy(self) -> None:
        """With several workers, one that takes a connection while it is serving others leaves the next ones to the
        rest for ACCEPT_PAUSE: a burst of connections (a client's pool opening) is spread over the workers, not
        taken whole by the first to wake. With no idle worker, the connection waits ACCEPT_PAUSE at most."""
        active = self.nr_conns - len(self.keepalived_conns)  # served, or with their head on the way
        if self.cfg.workers > 1 and active > 1:
            self._accept_paused_until = time.monotonic() + ACCEPT_PAUSE
            self.set_accept_enabled(False)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        paused = self._accept_paused_until - time.monotonic()
        if paused > 0 and not self._accepting:  # wake up when the pause ends, to accept again
            timeout = min(timeout, paused)
        super().wait_for_and_dispatch_events(timeout)

    def accept_exclusively(self) -> None:
        """With several workers on one listening socket, a new connection wakes one waiting worker (epoll's
        EPOLLEXCLUSIVE): an idle one, while the busy ones are serving. Otherwise every worker wakes and races for it,
        and the quickest, often the busiest, can take a whole burst of connections."""
        epoll = getattr(self.poller, "_selector", None)
        exclusive = getattr(select, "EPOLLEXCLUSIVE", 0)
        if not exclusive or not isinstance(epoll, select.epoll):
            return
        for listener in self.sockets:
            fd = listener.fileno()
            try:
                epoll.unregister(fd)
                epoll.register(fd, select.EPOLLIN | exclusive)
            except OSError:  # a kernel without it (before Linux 4.5): as gunicorn registered it
                epoll.register(fd, select.EPOLLIN)

    def accept(self, listener) -> None:
        try:
            sock, client = listener.accept()
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        reads_ahead = self.reads_ahead(client)
        if reads_ahead and KERNEL_TIMEOUTS:  # blocking as accepted: Linux does not pass on the listener's O_NONBLOCK
            sock = BlockingClientSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
        conn = HeadFirstConn(self.cfg, sock, client, listener.getsockname(), reads_ahead=reads_ahead)
        if conn.reads_ahead:
            self.park(conn)
        else:
            sock.setblocking(True)
            self.enqueue_req(conn)
        self.pause_accepting_when_busy()

    def on_client_socket_readable(self, conn: HeadFirstConn, client) -> None:
        """A kept-alive connection has bytes again: its next head is read here too."""
        if not conn.reads_ahead:
            super().on_client_socket_readable(conn, client)
            return
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self.park(conn)

    def park(self, conn: HeadFirstConn) -> None:
        """Read the head here; most often it has arrived already, and goes to a thread without a trip to the poller.

        Its reads do not wait (MSG_DONTWAIT): no syscall here that would hand the GIL to the request threads and make
        the event loop wait to get it back.
        """
        conn.deadline = time.monotonic() + self.header_timeout
        outcome = self.read_head(conn)
        if outcome is not None:
            self.settle(conn, outcome)
            return
        self.parked.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_head_bytes, conn))

    def unpark(self, conn: HeadFirstConn) -> None:
        self.poller.unregister(conn.sock)
        self.parked.remove(conn)

    def on_head_bytes(self, conn: HeadFirstConn, sock) -> None:
        outcome = self.read_head(conn)
        if outcome is not None:
            self.unpark(conn)
            self.settle(conn, outcome)

    def read_head(self, conn: HeadFirstConn) -> str | None:
        """Take what has arrived: "complete", "gone" (the client left first), "too large", or None for more to come."""
        try:
            data = conn.sock.recv(_RECV, socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            data = b""
        if not data:
            return "gone"
        conn.head += data
        if conn.head_complete(len(data)):
            return "complete"
        return "too large" if len(conn.head) > MAX_REQUEST_HEAD else None

    def settle(self, conn: HeadFirstConn, outcome: str) -> None:
        if outcome == "complete":
            conn.data_ready = True
            self.enqueue_req(conn)
        else:
            self.drop(conn, _REFUSALS["LimitRequestHeaders"] if outcome == "too large" else None)

    def murder_pending(self) -> None:
        """Also close parked connections past their HEADER_TIMEOUT (a 408 when they had begun), or all when stopping."""
        super().murder_pending()
        now = time.monotonic()
        while self.parked and (self.parked[0].deadline <= now or not self.alive):
            conn = self.parked[0]
            self.unpark(conn)
            began = bool(conn.head) and self.alive
            self.drop(conn, (408, "Request Timeout", "request_timeout",
                             "The request head did not arrive within HEADER_TIMEOUT.") if began else None)

    def drop(self, conn: HeadFirstConn, refusal: tuple | None = None) -> None:
        """Close a parked connection, after one non-blocking try at sending ``refusal``'s JSON error."""
        if refusal is not None:
            try:
                conn.sock.send(error_bytes(*refusal), socket.MSG_DONTWAIT)
            except OSError:
                pass
        self.nr_conns -= 1
        conn.close()

    def handle(self, conn):
        """gthread's, then the connection's next requests as long as each arrives within LINGER of the answer."""
        result = super().handle(conn)
        while result is True and conn.reads_ahead:
            outcome = self.next_head(conn)
            if outcome is None:
                break  # back to the event loop, kept alive
            if outcome != "complete":
                conn.lingered = outcome
                return _PARK
            result = super().handle(conn)
        return result

    def next_head(self, conn: HeadFirstConn) -> str | None:
        """Wait up to LINGER for the connection's next head, when no other connection is being served or waits for a
        thread: read_head's outcome ("begun" for a head yet to end), or None when nothing came or there was no wait."""
        work = getattr(self.tpool, "_work_queue", None)
        if not self.alive or work is None or not work.empty():
            return None
        if conn.parser.unreader.buf.getvalue():
            return "complete"  # pipelined: the parser holds the next request already
        if not isinstance(conn.sock, BlockingClientSocket):
            return None
        if self.cfg.threads < 2 or self.nr_conns - len(self.keepalived_conns) - len(self.parked) > 1:
            return None  # other connections are being served (their counts are the event loop's, read as they are)
        if not conn.readable_within(LINGER):
            return None
        outcome = self.read_head(conn)
        return "begun" if outcome is None and conn.head else outcome

    def finish_request(self, conn, fs) -> None:
        """A connection whose next head began during its thread's wait is parked; the rest as gthread does."""
        if not fs.cancelled() and fs.exception() is None and fs.result() is _PARK:
            outcome, conn.lingered = conn.lingered, None
            if outcome == "begun":
                self.park(conn)
            else:
                self.settle(conn, outcome)
            return
        super().finish_request(conn, fs)

    def handle_request(self, req, conn) -> bool:
        try:
            return super().handle_request(req, conn)
        except CLIENT_STALLED:  # the client took nothing of its answer for IDLE_TIMEOUT: not a fault of the server
            self.log.info("closed a connection whose client stopped reading for IDLE_TIMEOUT")
            return False

    def _keepalive_after(self, conn, keepalive) -> bool:
        """The answer is sent already: a broken rest of the body (drained here) only ends the connection."""
        try:
            return super()._keepalive_after(conn, keepalive)
        except ParseException:
            return False

    def handle_error(self, req, client, addr, exc) -> None:
        """gunicorn's refusals as JSON, naming the problem but never quoting the request (it may hold a key)."""
        name = type(exc).__name__
        addr = addr or ("", -1)
        if name in _SERVER_FAULTS or not isinstance(exc, (ParseException, ssl.SSLError)):
            self.log.exception("error handling a request")
            refusal = (500, "Internal Server Error", "internal_error", "The gateway failed to handle the request.",
                       "api_error")
        else:
            refusal = _REFUSALS.get(name, _MALFORMED)
            self.log.warning("refused a malformed request from ip=%s: %s", addr[0], name)
        try:
            client.settimeout(1.0)
            client.sendall(error_bytes(*refusal))
        except OSError:
            self.log.debug("could not send the error response")

