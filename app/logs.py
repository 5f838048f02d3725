"""Loguru set-up: one JSON object per line, request ids and key names stamped, secrets redacted, stdlib routed in."""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from typing import TextIO

from flask import g
from flask import has_request_context
from loguru import logger

from .json_codec import dumps

REDACTED = "[REDACTED]"
# Bearer tokens, API-key headers and key-like strings, wherever they appear in a message.
# Each pattern is (kept prefix)(secret)(kept suffix).
_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)([^\s\"',;]+)()"),
    re.compile(r"(?i)((?:x-api-key|api[_-]?key|authorization|token|password|secret)[\"']?\s*[:=]\s*[\"']?)"
               r"((?!bearer\b)[^\s\"',;&]+)()"),
    # A key header in any shape: no colon, odd separators (a malformed request line quoted by a server's log).
    re.compile(r"(?i)((?:x-api-key|authorization)[^A-Za-z0-9\n[]{1,8}?)((?!bearer\b)[A-Za-z0-9][^\s\"',;&]*)()"),
    re.compile(r"()(\bsk-[A-Za-z0-9_-]{8,})()"),
    re.compile(r"(?i)(://[^/\s:@]+:)([^@\s/]+)(@)"),
]
# Cheap test for "could this text hold a secret at all": most log text cannot, and skips the patterns.
_HINTS = r"bearer|key|auth|token|passw|secret|sk-|://"
_SECRET_HINT = re.compile("(?i)" + _HINTS)
_RESERVED = {"request_id"}


class Redactor:
    """Masks known secret values and secret-shaped text."""

    def __init__(self, secrets: Iterable[str] = ()):
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        # One search tells whether a text may need any work at all (most log text does not); matching the secrets
        # regardless of case only makes it say "maybe" more often.
        self._hint = re.compile("(?i)" + "|".join([*map(re.escape, self.secrets), _HINTS]))

    def __call__(self, text: str) -> str:
        if not self._hint.search(text):
            return text
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        if _SECRET_HINT.search(text):
            for pattern in _SECRET_PATTERNS:
                text = pattern.sub(r"\1" + REDACTED + r"\3", text)
        return text


def _json_line(record, redact: Redactor) -> str:
    """A loguru record's line; the request's id and key name come from the request context when not bound."""
    extra = record["extra"]
    in_request = has_request_context()
    request_id = extra.get("request_id") or (g.get("request_id") if in_request else None)
    # A line written after the request context is gone (the access line, when the response closes) binds its tally.
    tally = extra.get("_tally") or (g.get("tally") if in_request else None)
    exception = None
    if record["exception"] is not None:
        kind, value, tb = record["exception"]
        exception = "".join(traceback.format_exception(kind, value, tb))
    return _line(record["time"].astimezone(UTC), record["level"].name.lower(), record["message"], extra, redact,
                 request_id=request_id, key_name=tally.key_name if tally is not None else "", exception=exception)


def _line(moment: datetime, level: str, message: str, extra: Mapping, redact: Redactor, *, request_id: str | None,
          key_name: str = "", exception: str | None = None) -> str:
    """The one JSON object of a log line, its text values redacted, ending with a newline."""
    entry = {
        "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level,
        "message": redact(message),
    }
    if request_id:
        entry["request_id"] = request_id
    if key_name:  # the key's name, never the key
        entry["key"] = key_name
    for key, value in extra.items():
        if key in _RESERVED or key.startswith("_"):
            continue
        entry[key] = redact(value) if isinstance(value, str) else value
    if exception is not None:
        entry["exception"] = redact(exception)
    return dumps(entry, default=str).decode() + "\n"


def _line_format(record) -> str:
    """A callable format: loguru appends a plain-text traceback after string formats, never after these (the
    traceback is inside the JSON line already)."""
    return "{extra[_json]}"


class LineSink:
    """One destination of the JSON lines (stdout, LOG_FILE); loguru writes its lines here, `access_line` its own.

    Whole lines, in order, never interleaved. One thread writes at a time, and takes with it the lines the others
    handed in meanwhile: under load many lines go out in one write, and no thread waits for another's write.
    """

    def __init__(self, stream: TextIO, *, owned: bool = False):
        self.stream = stream
        self.owned = owned  # a file opened for LOG_FILE, closed when logging is configured again
        self.lock = threading.Condition()  # held only to hand lines over, never during a write
        self.pending: list[str] = []
        self.writing = False

    def __call__(self, line: str) -> None:
        with self.lock:
            self.pending.append(line)
            if self.writing:  # the thread writing now writes this line next
                return
            self.writing = True
        try:
            while True:
                with self.lock:
                    if not self.pending:
                        self.writing = False  # in the same hold as the look: no line is left behind unwritten
                        self.lock.notify_all()  # a close() waiting for the writes to end
                        return
                    lines, self.pending = self.pending, []
                self.stream.write(lines[0] if len(lines) == 1 else "".join(lines))
                self.stream.flush()
        except BaseException:
            with self.lock:
                self.writing = False  # the next line's thread writes what is pending
                self.lock.notify_all()
            raise

    def close(self) -> None:
        if self.owned:
            with self.lock:
                self.lock.wait_for(lambda: not self.writing)
                self.stream.close()


class _Lines:
    """The sinks and redactor of the current configuration (none until `configure_logging`)."""

    sinks: tuple[LineSink, ...] = ()
    redact = Redactor()


def configure_logging(settings: dict) -> None:
    """Replace every loguru sink with JSON sinks (stdout and LOG_FILE); idempotent."""
    named = [key.secret for key in settings.get("KEYS") or ()]
    redact = Redactor([settings.get("API_KEY", ""), settings.get("ADMIN_API_KEY", ""), *named])
    level = "DEBUG" if settings.get("DEBUG") else "INFO"

    def patch(record):
        record["extra"]["_json"] = _json_line(record, redact)

    logger.remove()
    for sink in _Lines.sinks:
        sink.close()
    sinks = [LineSink(sys.stdout)]
    if settings.get("LOG_FILE"):
        path = os.path.abspath(settings["LOG_FILE"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        sinks.append(LineSink(open(path, "a", buffering=1, encoding="utf-8"), owned=True))  # noqa: SIM115
    _Lines.sinks, _Lines.redact = tuple(sinks), redact
    logger.configure(patcher=patch)
    for sink in sinks:
        logger.add(sink, format=_line_format, level=level, backtrace=False, diagnose=False, colorize=False)
    logging.basicConfig(handlers=[InterceptHandler()], level=logging.getLevelName(level), force=True)
    for noisy in ("urllib3", "werkzeug", "httpx", "httpcore", "mcp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def access_line(fields: Mapping, *, request_id: str | None, key_name: str) -> None:
    """A request's access line ("HTTP request", info: never below the level, which is INFO or DEBUG), written
    straight to the sinks: a loguru record (its frame lookup, clock, patcher and handler) costs more than the
    line itself, on every request. Without `configure_logging` it goes through loguru like any line."""
    if not _Lines.sinks:
        logger.bind(**fields, request_id=request_id).info("HTTP request")
        return
    line = _line(datetime.now(UTC), "info", "HTTP request", fields, _Lines.redact, request_id=request_id,
                 key_name=key_name)
    for sink in _Lines.sinks:
        sink(line)


class InterceptHandler(logging.Handler):
    """Sends stdlib logging records (gunicorn, werkzeug, libraries) to loguru."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame, depth = logging.currentframe(), 2
        while frame and frame.f_code.co_filename == logging.__file__:
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).bind(logger=record.name).log(level, record.getMessage())


def settings_for_logging() -> dict:
    """The process's settings for a launcher's log set-up; ``{}`` (the defaults) when the config is invalid."""
    from .settings import ConfigError
    from .settings import process_settings

    try:
        return process_settings()
    except ConfigError:
        return {}


try:
    from gunicorn.glogging import Logger as _GunicornBaseLogger
except ImportError:  # waitress on Windows has no gunicorn
    _GunicornBaseLogger = object  # type: ignore[assignment,misc]


class GunicornLogger(_GunicornBaseLogger):  # type: ignore[misc,valid-type]
    """gunicorn's logger with its error log routed through loguru's JSON sinks."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        configure_logging(settings_for_logging())
        for name in ("gunicorn.error", "gunicorn.access"):
            target = logging.getLogger(name)
            target.handlers = [InterceptHandler()]
            target.propagate = False
