"""gunicorn settings, all taken from the gateway's own configuration (one source of truth).

Run: `gunicorn -c gunicorn.conf.py wsgi:app`. Every value comes from app.settings (environment >
.env > llamagate.yaml > defaults); nothing here is a second place to configure. The settings are
loaded here, once, in the master: the workers fork from it and build their apps from the same dict.
gunicorn runs this file again on SIGHUP, which loads them afresh for the new workers.
"""

import errno
import glob
import os
import shutil
import socket
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from app.launch import no_garbage_collection  # noqa: E402

with no_garbage_collection():  # the imports too: they are most of what start-up allocates
    from app.settings import ConfigError
    from app.settings import reload_process_settings

    try:
        _settings = reload_process_settings()
    except ConfigError as _err:
        print(f"llamagate: {_err}", file=sys.stderr, flush=True)
        sys.exit(2)


def _address(host: str, port: int) -> str:
    return f"[{host.strip('[]')}]:{port}" if ":" in host else f"{host}:{port}"


# Server socket
bind = [_address(_settings["HOST"], _settings["PORT"])]
backlog = 2048

# Worker processes: threads, because each open stream holds one. The gateway's gthread worker gives a connection a
# thread only once its request head is in (HEADER_TIMEOUT), and answers malformed HTTP with its JSON error.
worker_class = "app.worker.GatewayWorker"
workers = _settings["WORKERS"]
threads = _settings["THREADS"]
# For gthread `timeout` is the worker's heartbeat to the master, sent by its event loop whatever
# the request threads do, so a healthy stream of any length is never killed; only a wedged worker is.
timeout = 120
# SIGTERM: stop accepting, let open requests and streams finish for up to SHUTDOWN_TIMEOUT.
graceful_timeout = int(_settings["SHUTDOWN_TIMEOUT"])
# IDLE_TIMEOUT (default 75 s): longer than the idle timeout of the proxies' pooled connections (Apache ttl=60,
# nginx 60s), so a proxy never reuses a connection the gateway is closing. Idle connections hold no thread; a
# client that stops sending its body or taking its answer for this long is dropped.
keepalive = int(_settings["IDLE_TIMEOUT"]) or 1
preload_app = False  # each worker builds its app (and its sessions, MCP pool) after the fork
control_socket_disable = True
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# TLS (terminated here when no proxy does it)
if _settings["TLS_ENABLED"]:
    certfile = _settings["TLS_CERT_FILE"]
    keyfile = _settings["TLS_KEY_FILE"]

# Logging: the app writes its own JSON access line; gunicorn's error log goes through the same sink.
accesslog = None
errorlog = "-"
loglevel = "debug" if _settings["DEBUG"] else "info"
logger_class = "app.logs.GunicornLogger"
proc_name = "llamagate"


# Server hooks (they never raise: a failing hook must not take the server down).
def on_starting(server):
    """Fail fast, with one line, when the port is taken (gunicorn would otherwise retry for seconds)."""
    for address in bind:
        host, _, port = address.rpartition(":")
        host = host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        probe = socket.socket(family, socket.SOCK_STREAM)
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, int(port)))
        except OSError as err:
            reason = "Address already in use" if err.errno == errno.EADDRINUSE else err.strerror
            print(f"llamagate: cannot listen on {address}: {reason} (is another gateway running?)",
                  file=sys.stderr, flush=True)
            os._exit(1)
        finally:
            probe.close()
    _prepare_metrics_dir()


# Prometheus multiprocess mode: each worker writes its counts to files in PROMETHEUS_MULTIPROC_DIR and /metrics sums
# them. The variable must be set before prometheus_client is first imported, which the master does not do before
# on_starting; the workers inherit it. Without one set by the operator, each start makes a private directory.
_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
_METRICS_DIR_MADE = "LLAMAGATE_METRICS_DIR_MADE"  # the directory this master made (and removes at exit)


def _prepare_metrics_dir():
    """A fresh private directory (in /dev/shm when there is one), or the operator's emptied of a past run's files."""
    path = os.environ.get(_METRICS_DIR)
    if path:
        try:
            os.makedirs(path, exist_ok=True)
            for stale in glob.glob(os.path.join(path, "*.db")):
                os.remove(stale)
        except OSError as err:
            print(f"llamagate: cannot use {_METRICS_DIR}={path}: {err.strerror}", file=sys.stderr, flush=True)
            os._exit(1)
        return
    path = tempfile.mkdtemp(prefix="llamagate-metrics-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.environ[_METRICS_DIR] = os.environ[_METRICS_DIR_MADE] = path


def when_ready(server):
    """Ctrl+C (SIGINT) drains like SIGTERM, as under waitress; gunicorn's default is to quit at once."""
    from loguru import logger

    server.handle_int = server.handle_term
    logger.bind(bind=bind, workers=workers, threads=threads, tls=bool(_settings["TLS_ENABLED"]),
                shutdown_timeout=graceful_timeout).info("gunicorn ready")


def post_fork(server, worker):
    """In the new worker, before its app is built: nothing inherited needs resetting (no preload)."""


def post_worker_init(worker):
    """The worker has its app: start its own resources (MCP pool, ...) before it accepts requests.

    A first SIGINT (Ctrl+C reaches every process of the terminal's group) drains like SIGTERM;
    a second one quits at once.
    """
    import signal

    interrupts = []

    def on_sigint(signum, frame):
        interrupts.append(signum)
        (worker.handle_exit if len(interrupts) == 1 else worker.handle_quit)(signum, frame)

    signal.signal(signal.SIGINT, on_sigint)
    try:
        from app.lifecycle import start_worker_resources

        start_worker_resources(worker.wsgi)
    except Exception:
        worker.log.exception("starting worker resources failed")
    worker.log.info("worker %s ready", worker.pid)


def worker_int(worker):
    """SIGINT/SIGQUIT on a worker: with DEBUG=true, log every thread's stack (where does a hung stream wait?)."""
    import threading
    import traceback

    if not _settings["DEBUG"]:
        return
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        stack = "".join(traceback.format_stack(frame))
        worker.log.debug("thread %s (%s):\n%s", names.get(ident, "?"), ident, stack)


def child_exit(server, worker):
    """In the master, once a worker has gone (however it ended): its gauges leave the livesum totals."""
    try:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
    except Exception:
        server.log.exception("clearing a dead worker's metrics failed")


def worker_exit(server, worker):
    """Runs in the worker once in-flight requests have drained (or SHUTDOWN_TIMEOUT passed)."""
    try:
        from app.lifecycle import stop_worker_resources

        if getattr(worker, "wsgi", None) is not None:
            stop_worker_resources(worker.wsgi)
    except Exception:
        worker.log.exception("stopping worker resources failed")
    finally:
        from loguru import logger

        logger.complete()


def on_exit(server):
    made = os.environ.get(_METRICS_DIR_MADE)
    if made and made == os.environ.get(_METRICS_DIR):
        shutil.rmtree(made, ignore_errors=True)
    from loguru import logger

    logger.complete()
