"""HTTP endpoints, one blueprint per area."""

from __future__ import annotations

from flask import Flask


def register_blueprints(app: Flask) -> None:
    from . import chat
    from . import embeddings
    from . import health
    from . import mcp_admin
    from . import models

    for module in (chat, embeddings, health, mcp_admin, models):
        app.register_blueprint(module.bp)
