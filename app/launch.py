"""Start-up shared by the launchers: settings check, logging, app; waitress serving for Windows."""

from __future__ import annotations

import sys

from flask import Flask


def fail(message: str, code: int = 2) -> None:
    """Stop start-up with one line on stderr."""
    print(f"llamagate: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def build_app() -> Flask:
    from . import create_app
    from .config import ConfigError
    from .config import load_settings
    from .logs import configure_logging

    try:
        configure_logging(load_settings())
        return create_app()
    except ConfigError as err:
        fail(str(err))
        raise  # unreachable; keeps type checkers content


def serve_with_waitress(app: Flask) -> None:
    """Serve on HOST:PORT with THREADS threads; Ctrl+C or SIGTERM stops after open requests finish."""
    import socket

    from loguru import logger
    from waitress import create_server

    settings = app.config
    try:
        server = create_server(app, host=settings["HOST"], port=settings["PORT"], threads=settings["THREADS"],
                               channel_timeout=int(settings["TIMEOUT"]) + 60, ident="llamagate",
                               cleanup_interval=5, clear_untrusted_proxy_headers=False)
    except OSError as err:
        if err.errno in (98, 10048) or isinstance(err, socket.error) and "in use" in str(err).lower():
            fail(f"port {settings['PORT']} on {settings['HOST']} is already in use (is another gateway running?)", 1)
        raise
    logger.bind(host=settings["HOST"], port=settings["PORT"], threads=settings["THREADS"]).info("serving with waitress")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
