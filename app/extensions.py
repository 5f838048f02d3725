"""The accessor for the app's components."""

from __future__ import annotations

from flask import current_app

COMPONENTS_KEY = "llamagate"


def components():
    """The app's `Components` (settings, Ollama client, chat pipeline, MCP runtime)."""
    return current_app._get_current_object().extensions[COMPONENTS_KEY]  # one proxy lookup, not two
