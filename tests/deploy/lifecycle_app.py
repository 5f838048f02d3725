"""The gateway with a probe resource that logs its start and stop, for the launcher tests.

gunicorn: `gunicorn -c gunicorn.conf.py tests.deploy.lifecycle_app:app`;
waitress: `python -m tests.deploy.lifecycle_app`.
"""

from __future__ import annotations

import os

from loguru import logger

from app import lifecycle
from app.launch import build_app

app = build_app()
lifecycle.register(app, "probe", start=lambda: logger.bind(pid=os.getpid()).info("probe started"),
                   stop=lambda: logger.bind(pid=os.getpid()).info("probe stopped"))

if __name__ == "__main__":
    from app.launch import serve_with_waitress

    serve_with_waitress(app)
