"""gunicorn settings, all taken from the gateway's own configuration (one source of truth)."""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from app.config import ConfigError  # noqa: E402
from app.config import load_settings  # noqa: E402

try:
    _settings = load_settings()
except ConfigError as _err:
    print(f"llamagate: {_err}", file=sys.stderr, flush=True)
    sys.exit(2)

# Server socket
bind = [f"{_settings['HOST']}:{_settings['PORT']}"]
backlog = 2048

# Worker processes: threads, because each open stream holds one.
worker_class = "gthread"
workers = _settings["WORKERS"]
threads = _settings["THREADS"]
# For gthread `timeout` is a heartbeat, not a request limit, so long streams are never killed.
timeout = 120
graceful_timeout = int(_settings["SHUTDOWN_TIMEOUT"])
keepalive = 5
preload_app = False
control_socket_disable = True
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# TLS
if _settings["TLS_ENABLED"]:
    certfile = _settings["TLS_CERT_FILE"]
    keyfile = _settings["TLS_KEY_FILE"]

# Logging: the app writes its own JSON access line; gunicorn's error log goes through the same sink.
accesslog = None
errorlog = "-"
loglevel = "debug" if _settings["DEBUG"] else "info"
logger_class = "app.logs.GunicornLogger"
proc_name = "llamagate"


def on_starting(server):
    """Fail fast, with one line, when the port is taken (gunicorn would otherwise retry for seconds)."""
    for address in bind:
        host, _, port = address.rpartition(":")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        probe = socket.socket(family, socket.SOCK_STREAM)
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host.strip("[]"), int(port)))
        except OSError as err:
            print(f"llamagate: cannot listen on {address}: {err.strerror} (is another gateway running?)",
                  file=sys.stderr, flush=True)
            os._exit(1)
        finally:
            probe.close()


def worker_exit(server, worker):
    """Flush queued log records before the worker process ends."""
    from loguru import logger

    logger.complete()
