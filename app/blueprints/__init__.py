"""HTTP endpoints, one blueprint per area."""

from __future__ import annotations

from flask import Flask

from ..extensions import COMPONENTS_KEY


def register_blueprints(app: Flask) -> None:
    from . import chat
    from . import completions
    from . import embeddings
    from . import health
    from . import keys
    from . import mcp_admin
    from . import metrics
    from . import models
    from . import native
    from . import plugins
    from . import responses
    from . import workflows

    for module in (chat, completions, embeddings, health, keys, mcp_admin, models, native, plugins, responses,
                   workflows):
        app.register_blueprint(module.bp)
    if app.config["METRICS_ENABLED"]:  # else /metrics is a 404
        app.register_blueprint(metrics.bp)
    plugins.mount_plugin_routes(app, app.extensions[COMPONENTS_KEY].plugins)
