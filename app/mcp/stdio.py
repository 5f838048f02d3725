"""stdio transport: runs an MCP server as a child with a minimal environment and logs its stderr.

The SDK's own stdio client hides the child process and merges a wider environment allow-list, so
the gateway spawns the process itself. The shutdown follows the MCP lifecycle: close stdin, wait,
SIGTERM the child's process group, wait, SIGKILL; leftovers in the group are terminated too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Mapping
from contextlib import asynccontextmanager
from contextlib import suppress
from typing import Any

import anyio
import mcp_types
from anyio.abc import Process
from loguru import logger
from mcp.shared.message import SessionMessage

from .config import ServerConfig

POSIX_INHERITED = ("PATH", "HOME")
WINDOWS_INHERITED = (
    "PATH",
    "PATHEXT",
    "SYSTEMROOT",
    "SYSTEMDRIVE",
    "COMSPEC",
    "TEMP",
    "TMP",
    "USERPROFILE",
    "APPDATA",
    "LOCALAPPDATA",
    "HOMEDRIVE",
    "HOMEPATH",
)
STDIN_CLOSE_GRACE = 2.0
TERMINATE_GRACE = 2.0
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_LOGGED_LINE = 2000
_PIPE_ERRORS = (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError, OSError)


def child_environment(
    configured: Mapping[str, str], parent: Mapping[str, str] | None = None, platform: str = sys.platform
) -> dict[str, str]:
    """PATH and HOME (plus the few system variables Windows needs) from the parent, then ``configured``."""
    parent = os.environ if parent is None else parent
    names = WINDOWS_INHERITED if platform == "win32" else POSIX_INHERITED
    env = {k: parent[k] for k in names if k in parent and not parent[k].startswith("()")}
    env.update(configured)
    return env


def resolve_command(command: str, env: Mapping[str, str], cwd: str | None = None) -> str:
    """The program's path, searched on the child's PATH (finds ``npx.cmd`` on Windows too).

    A relative path with a directory part (``./server.py``) is taken relative to ``cwd``.
    """
    if cwd and not os.path.isabs(command) and os.path.dirname(command):
        command = os.path.join(cwd, command)
    found = shutil.which(command, path=env.get("PATH"))
    if found is None:
        raise FileNotFoundError(f"command not found: {command!r}")
    return found


@asynccontextmanager
async def stdio_transport(
    cfg: ServerConfig, on_start: Callable[[int], None], on_exit: Callable[[int | None], None]
) -> AsyncIterator[tuple[Any, Any]]:
    """Spawn ``cfg.command`` and yield the (read, write) message streams ``mcp.Client`` expects.

    ``on_start(pid)`` runs once the child exists; ``on_exit(returncode)`` runs if the child closes
    its stdout (dies) before the transport is closed.
    """
    env = child_environment(cfg.env)
    command = resolve_command(cfg.command or "", env, cfg.cwd)
    if sys.platform == "win32":
        spawn_options: dict[str, object] = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    else:
        spawn_options = {"start_new_session": True}
    process = await anyio.open_process([command, *cfg.args], env=env, cwd=cfg.cwd, **spawn_options)
    on_start(process.pid)
    log = logger.bind(mcp_server=cfg.name)
    secrets = [value for value in cfg.env.values() if len(value) >= 6]
    to_session, session_reads = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    session_writes, from_session = anyio.create_memory_object_stream[SessionMessage](0)
    state = {"closing": False, "exited": False}

    def died() -> None:
        if not state["closing"] and not state["exited"]:
            state["exited"] = True
            on_exit(process.returncode)

    async def deliver(line: bytes) -> None:
        if not line.strip():
            return
        try:
            item: SessionMessage | Exception = SessionMessage(
                mcp_types.jsonrpc_message_adapter.validate_json(line, by_name=False)
            )
        except ValueError as exc:
            log.debug("MCP server {} wrote a non-JSON-RPC line to stdout ({} bytes)", cfg.name, len(line))
            item = exc
        await to_session.send(item)

    async def read_stdout() -> None:
        assert process.stdout is not None
        lines, delivering = LineBuffer(), True
        with suppress(*_PIPE_ERRORS):
            while True:
                for line in lines.feed(await process.stdout.receive()):
                    if delivering:
                        try:
                            await deliver(line)
                        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                            delivering = False  # the session is gone: keep draining so the child can exit
                if lines.pending > MAX_MESSAGE_BYTES:
                    log.warning("MCP server {} sent a message over {} bytes; closing", cfg.name, MAX_MESSAGE_BYTES)
                    break
        await _wait(process, 0.5)  # usually immediate: lets the exit code reach the log
        died()
        await to_session.aclose()

    async def write_stdin() -> None:
        assert process.stdin is not None
        try:
            async with from_session:
                async for message in from_session:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    await process.stdin.send(data.encode())
        except _PIPE_ERRORS:
            await to_session.aclose()  # the session sees the connection end instead of waiting
            died()

    async def read_stderr() -> None:
        assert process.stderr is not None
        lines = LineBuffer()
        with suppress(*_PIPE_ERRORS):
            while True:
                for line in lines.feed(await process.stderr.receive()):
                    _log_stderr(log, cfg.name, line, secrets)
                if lines.pending > MAX_LOGGED_LINE * 4:
                    _log_stderr(log, cfg.name, lines.take(), secrets)
        _log_stderr(log, cfg.name, lines.take(), secrets)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_stdout)
            tg.start_soon(write_stdin)
            tg.start_soon(read_stderr)
            try:
                yield session_reads, session_writes
            finally:
                state["closing"] = True
                with anyio.CancelScope(shield=True):
                    session_reads.close()
                    session_writes.close()
                    await stop_process(process, cfg.name)
                tg.cancel_scope.cancel()
    finally:
        for stream in (to_session, session_reads, session_writes, from_session):
            stream.close()


class LineBuffer:
    """Splits a byte stream into lines without rescanning what it already holds."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.pending = 0  # bytes held of the unfinished line

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add a chunk; return the lines it completed (without their newline)."""
        *complete, rest = chunk.split(b"\n")
        lines: list[bytes] = []
        if complete:
            lines = [b"".join([*self._parts, complete[0]]), *complete[1:]]
            self._parts, self.pending = [], 0
        if rest:
            self._parts.append(rest)
            self.pending += len(rest)
        return lines

    def take(self) -> bytes:
        """Return and forget the unfinished line."""
        data = b"".join(self._parts)
        self._parts, self.pending = [], 0
        return data


async def stop_process(process: Process, name: str) -> None:
    """Close stdin, wait; SIGTERM the process group, wait; SIGKILL. Idempotent, bounded (~6 s)."""
    if process.stdin is not None:
        with suppress(*_PIPE_ERRORS):
            await process.stdin.aclose()
    if process.returncode is None and not await _wait(process, STDIN_CLOSE_GRACE):
        logger.debug("MCP server {} did not exit after stdin closed; terminating", name)
        _signal_group(process, signal.SIGTERM)
        if not await _wait(process, TERMINATE_GRACE):
            _signal_group(process, getattr(signal, "SIGKILL", signal.SIGTERM))
            if not await _wait(process, TERMINATE_GRACE):
                logger.warning("MCP server {} (pid {}) survived SIGKILL", name, process.pid)
                return
    # Children the server started and left behind would otherwise outlive the gateway.
    _signal_group(process, signal.SIGTERM, leader_alive=False)
    with anyio.move_on_after(1.0):
        await process.aclose()


async def _wait(process: Process, seconds: float) -> bool:
    # Poll rather than process.wait(): on asyncio that also waits for the pipes to close, which a
    # grandchild holding them open would delay until the kill.
    deadline = anyio.current_time() + seconds
    while process.returncode is None and anyio.current_time() < deadline:
        await anyio.sleep(0.02)
    return process.returncode is not None


def _signal_group(process: Process, sig: int, leader_alive: bool = True) -> None:
    with suppress(ProcessLookupError, PermissionError, OSError):
        if sys.platform == "win32":
            if leader_alive:
                process.kill()
        else:
            os.killpg(process.pid, sig)


def _log_stderr(log: Any, name: str, raw: bytes, secrets: list[str]) -> None:
    line = raw.decode("utf-8", errors="replace").rstrip("\r")
    if not line.strip():
        return
    for secret in secrets:
        line = line.replace(secret, "***")
    if len(line) > MAX_LOGGED_LINE:
        line = line[:MAX_LOGGED_LINE] + "…"
    log.debug("[{} stderr] {}", name, line)
