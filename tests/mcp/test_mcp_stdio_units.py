"""Pieces of the stdio transport that need no server: child environment, command lookup, line splitting."""

from __future__ import annotations

import os
import sys

import pytest

from app.mcp.stdio import LineBuffer
from app.mcp.stdio import child_environment
from app.mcp.stdio import resolve_command

PARENT = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/home/gw",
    "USER": "gw",
    "SHELL": "/bin/bash",
    "OPENAI_API_KEY": "sk-secret",
    "BASH_FUNC_x%%": "() { :; }",
    "SYSTEMROOT": "C:\\Windows",
}


def test_child_environment_posix():
    assert child_environment({"TOKEN": "t"}, PARENT, "linux") == {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/gw",
        "TOKEN": "t",
    }


def test_child_environment_windows_keeps_system_variables():
    env = child_environment({}, PARENT, "win32")
    assert env == {"PATH": "/usr/bin:/bin", "SYSTEMROOT": "C:\\Windows"}


def test_configured_values_win_and_functions_are_skipped():
    parent = {"PATH": "() { evil; }", "HOME": "/h"}
    assert child_environment({"HOME": "/srv"}, parent, "linux") == {"HOME": "/srv"}


def test_resolve_command(tmp_path):
    assert resolve_command("sh", {"PATH": os.environ["PATH"]}) in ("/bin/sh", "/usr/bin/sh")
    with pytest.raises(FileNotFoundError, match="command not found: 'no-such-program-q'"):
        resolve_command("no-such-program-q", {"PATH": "/usr/bin"})
    script = tmp_path / "bin" / "srv"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert resolve_command("./bin/srv", {"PATH": ""}, str(tmp_path)) == os.path.join(tmp_path, "./bin/srv")
    assert resolve_command(sys.executable, {}) == sys.executable


def test_line_buffer():
    lines = LineBuffer()
    assert lines.feed(b'{"a"') == [] and lines.pending == 4
    assert lines.feed(b':1}\n{"b":2}\n{"c"') == [b'{"a":1}', b'{"b":2}']
    assert lines.pending == 4 and lines.take() == b'{"c"' and lines.pending == 0
    assert lines.feed(b"\n\nx\n") == [b"", b"", b"x"]
