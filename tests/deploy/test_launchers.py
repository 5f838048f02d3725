"""Both launchers: gunicorn (gunicorn.conf.py) and waitress (`python -m app` / `python wsgi.py`).

Same configuration, unbuffered streams, a drain on SIGTERM with per-worker resources stopped after it,
and one clear line when the port is taken.
"""

from __future__ import annotations

import os
import runpy
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.conftest import BASE_SETTINGS
from tests.deploy.helpers import WAITRESS
from tests.deploy.helpers import chat_body
from tests.deploy.helpers import streamed_text
from tests.deploy.helpers import timed_events
from tests.gateway import GUNICORN
from tests.gateway import ROOT
from tests.gateway import Gateway
from tests.gateway import clean_env

LIFECYCLE_APP = {
    "gunicorn": GUNICORN[:-1] + ["tests.deploy.lifecycle_app:app"],
    "waitress": [sys.executable, "-m", "tests.deploy.lifecycle_app"],
}
LAUNCHERS = {"gunicorn": GUNICORN, "waitress": WAITRESS, "waitress-wsgi.py": [sys.executable, "wsgi.py"]}


@pytest.fixture(scope="module")
def waitress(fake_ollama):
    gateway = Gateway({**BASE_SETTINGS, "OLLAMA_HOST": fake_ollama.url}, command=WAITRESS).start()
    yield gateway
    gateway.stop()


def messages(gateway: Gateway) -> list[str]:
    return [entry.get("message", "") for entry in gateway.log_lines()]


def test_waitress_serves_completions_and_incremental_streams(waitress):
    with httpx.Client(timeout=20) as http:
        reply = http.post(waitress.url + "/v1/chat/completions", json=chat_body("hi")).json()
        assert reply["choices"][0]["message"]["content"] == "Hello! You said: hi"
        response, events = timed_events(http, waitress.url + "/v1/chat/completions", chat_body("[[slow 5 0.3]]", True))
    assert response.headers["content-type"].startswith("text/event-stream")
    assert streamed_text(events) == "tok0 tok1 tok2 tok3 tok4 " and events[-1][1] == "[DONE]"
    assert events[0][0] < 0.6 and events[-1][0] - events[0][0] > 1.0
    started = waitress.wait_for_log(lambda e: e.get("message") == "serving with waitress")
    assert started["threads"] == int(BASE_SETTINGS["THREADS"]) and started["port"] == waitress.port


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_a_second_instance_on_a_taken_port_exits_with_one_line(launcher):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run(LAUNCHERS[launcher], cwd=ROOT, env=clean_env({"PORT": port}), capture_output=True,
                                timeout=20, text=True)
    assert result.returncode == 1
    assert time.monotonic() - started < 5
    assert result.stderr.strip() == (f"llamagate: cannot listen on 127.0.0.1:{port}: Address already in use"
                                     " (is another gateway running?)")


def test_waitress_refuses_tls_with_one_line(certificate):
    cert, key = certificate
    result = subprocess.run(WAITRESS, cwd=ROOT, capture_output=True, text=True, timeout=20,
                            env=clean_env({"TLS_ENABLED": "true", "TLS_CERT_FILE": cert, "TLS_KEY_FILE": key}))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("llamagate: waitress does not serve TLS")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(("launcher", "sig"), [("gunicorn", signal.SIGTERM), ("waitress", signal.SIGTERM),
                                               ("gunicorn", signal.SIGINT)])
def test_a_stop_signal_drains_the_stream_then_stops_worker_resources(launcher, sig, fake_ollama):
    gateway = Gateway({**BASE_SETTINGS, "OLLAMA_HOST": fake_ollama.url, "SHUTDOWN_TIMEOUT": "15s"},
                      command=LIFECYCLE_APP[launcher]).start()
    try:
        started = gateway.wait_for_log(lambda e: e.get("message") == "probe started")
        assert started["pid"] != gateway.process.pid or launcher == "waitress"  # gunicorn: in the worker
        result: dict = {}

        def consume():
            with httpx.Client(timeout=20) as http:
                result["response"], result["events"] = timed_events(
                    http, gateway.url + "/v1/chat/completions", chat_body("[[slow 8 0.25]]", True))

        reader = threading.Thread(target=consume)
        reader.start()
        time.sleep(0.6)
        assert "probe stopped" not in messages(gateway)
        gateway.process.send_signal(sig)
        time.sleep(0.4)
        with pytest.raises(httpx.TransportError):
            httpx.get(gateway.url + "/health/live", timeout=1)
        reader.join(20)
        assert gateway.process.wait(20) == 0
    finally:
        gateway.stop()
    assert streamed_text(result["events"]) == "".join(f"tok{i} " for i in range(8))
    assert result["events"][-1][1] == "[DONE]"
    order = messages(gateway)
    stream_logged = next(i for i, e in enumerate(gateway.log_lines()) if e.get("path") == "/v1/chat/completions")
    assert order.index("probe stopped") > stream_logged, "resources must stop after the drain"
    assert order.count("probe started") == order.count("probe stopped") == 1


def test_waitress_second_signal_stops_at_once(fake_ollama):
    gateway = Gateway({**BASE_SETTINGS, "OLLAMA_HOST": fake_ollama.url, "SHUTDOWN_TIMEOUT": "30s"},
                      command=WAITRESS).start()
    reader = threading.Thread(target=_long_stream, args=(gateway,))
    reader.start()
    time.sleep(0.5)
    gateway.process.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    began = time.monotonic()
    gateway.process.send_signal(signal.SIGINT)
    assert gateway.process.wait(5) == 0 and time.monotonic() - began < 3
    gateway.stop()
    reader.join(20)


def test_gunicorn_ctrl_c_twice_stops_at_once(fake_ollama):
    """Ctrl+C reaches the master and the workers; the first drains, the second ends the workers."""
    gateway = Gateway({**BASE_SETTINGS, "OLLAMA_HOST": fake_ollama.url, "SHUTDOWN_TIMEOUT": "30s"}).start()
    worker = gateway.wait_for_log(lambda e: e.get("message", "").startswith("Booting worker with pid"))
    worker_pid = int(worker["message"].rsplit(" ", 1)[1])
    reader = threading.Thread(target=_long_stream, args=(gateway,))
    reader.start()
    time.sleep(0.5)
    for _ in range(2):
        for pid in (gateway.process.pid, worker_pid):
            os.kill(pid, signal.SIGINT)
        time.sleep(0.3)
    began = time.monotonic()
    assert gateway.process.wait(8) == 0 and time.monotonic() - began < 5
    gateway.stop()
    reader.join(20)


def _long_stream(gateway: Gateway) -> None:
    """A 10 s stream that the test cuts short by stopping the gateway."""
    try:
        with httpx.Client(timeout=20) as http:
            timed_events(http, gateway.url + "/v1/chat/completions", chat_body("[[slow 40 0.25]]", True))
    except httpx.HTTPError:
        pass


def test_gunicorn_workers_each_start_their_resources(fake_ollama):
    gateway = Gateway({**BASE_SETTINGS, "OLLAMA_HOST": fake_ollama.url, "WORKERS": "2", "THREADS": "2"},
                      command=LIFECYCLE_APP["gunicorn"]).start()
    try:
        deadline = time.monotonic() + 10
        while messages(gateway).count("probe started") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = {e["pid"] for e in gateway.log_lines() if e.get("message") == "probe started"}
        assert len(pids) == 2 and gateway.process.pid not in pids
    finally:
        gateway.stop()
    assert messages(gateway).count("probe stopped") == 2


def test_the_worker_heartbeat_never_kills_a_long_stream(fake_ollama):
    """gthread's `timeout` is a heartbeat: a 4 s stream outlives a 2 s worker timeout."""
    gateway = Gateway({**BASE_SETTINGS, "OLLAMA_HOST": fake_ollama.url, "GUNICORN_CMD_ARGS": "--timeout 2"}).start()
    try:
        with httpx.Client(timeout=20) as http:
            _, events = timed_events(http, gateway.url + "/v1/chat/completions", chat_body("[[slow 8 0.5]]", True))
    finally:
        gateway.stop()
    assert streamed_text(events) == "".join(f"tok{i} " for i in range(8)) and events[-1][1] == "[DONE]"
    assert "WORKER TIMEOUT" not in gateway.output()


def test_gunicorn_settings_come_from_the_gateway_configuration(monkeypatch, tmp_path, certificate):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    env = {"ENV_FILE": "", "CONFIG_FILE": str(empty), "HOST": "::1", "PORT": "8123", "WORKERS": "3", "THREADS": "7",
           "SHUTDOWN_TIMEOUT": "45s", "DEBUG": "true", "TLS_ENABLED": "true", "TLS_CERT_FILE": str(certificate[0]),
           "TLS_KEY_FILE": str(certificate[1])}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "path", list(sys.path))
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert conf["bind"] == ["[::1]:8123"]
    assert (conf["workers"], conf["threads"], conf["worker_class"]) == (3, 7, "app.worker.GatewayWorker")
    assert conf["keepalive"] == 75  # IDLE_TIMEOUT
    assert conf["graceful_timeout"] == 45 and conf["loglevel"] == "debug"
    assert (conf["certfile"], conf["keyfile"]) == (str(certificate[0]), str(certificate[1]))
    assert conf["accesslog"] is None and conf["logger_class"] == "app.logs.GunicornLogger"
    assert conf["preload_app"] is False and conf["timeout"] >= 60
