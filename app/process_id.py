"""This process's id without a system call each time: read once, and again in each forked child."""

from __future__ import annotations

import os

_pid = os.getpid()


def _refresh() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_refresh)


def process_id() -> int:
    """`os.getpid()`, remembered (a gunicorn worker asks for it several times a request: metrics, limit slots)."""
    return _pid
