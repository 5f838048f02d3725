"""Start the real gateway under gunicorn as a subprocess on a free loopback port, and read its logs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_env(settings: dict) -> dict:
    """Only what the process needs: no developer settings, no proxies, no .env, no llamagate.yaml."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "SYSTEMROOT") if k in os.environ}
    empty = Path(tempfile.gettempdir()) / "llamagate-empty.yaml"
    empty.write_text("")
    env.update({"ENV_FILE": "", "CONFIG_FILE": str(empty), "HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"})
    env.update({k: str(v) for k, v in settings.items()})
    return env


RUNNING: list[Gateway] = []  # every gateway started by this test session, stopped at its end at the latest


class Gateway:
    """One gateway process; `url` is its base URL, `log_lines()` its parsed stdout."""

    def __init__(self, settings: dict, command: list[str] | None = None, cwd: Path = ROOT):
        self.port = int(settings.get("PORT") or free_port())
        self.settings = {**settings, "PORT": self.port}
        scheme = "https" if str(settings.get("TLS_ENABLED", "")).lower() == "true" else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.command = command or GUNICORN
        self.cwd = cwd
        descriptor, log_path = tempfile.mkstemp(prefix="llamagate-", suffix=".log")
        os.close(descriptor)  # reopened by start()
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> Gateway:
        with open(self.log_path, "wb") as log:  # the child keeps its own copy of the file
            self.process = subprocess.Popen(self.command, cwd=self.cwd, env=clean_env(self.settings),
                                            stdout=log, stderr=subprocess.STDOUT)
        RUNNING.append(self)
        # Over TLS the probe trusts the gateway's own certificate (the test certificates are self-signed).
        certificate = self.settings.get("TLS_CERT_FILE") if self.url.startswith("https:") else None
        verify = str(certificate) if certificate else True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{self.output()}")
            try:
                requests.get(self.url + "/health/live", timeout=1, verify=verify)
                return self
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gateway did not start:\n{self.output()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode if self.process else None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_lines(self) -> list[dict]:
        """Every complete stdout line, each of which must be a JSON object. A line still being written is left for
        the next read: a read may see the first part of a write that crosses a page of the file."""
        written = self.output()
        return [json.loads(line) for line in written[:written.rfind("\n") + 1].splitlines() if line.strip()]

    def wait_for_log(self, predicate, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.log_lines():
                if predicate(entry):
                    return entry
            time.sleep(0.05)
        raise AssertionError(f"no matching log line in:\n{self.output()[-3000:]}")
