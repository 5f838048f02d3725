"""Extension singletons (bound in the factory) and accessors for per-app services."""

from __future__ import annotations

from flask import current_app
from flask_limiter import Limiter

from .ratelimit import rate_limit_key

limiter = Limiter(key_func=rate_limit_key)

SERVICES_KEY = "llamagate"


def services():
    """The app's `Services` bundle (settings, Ollama client, chat service)."""
    return current_app.extensions[SERVICES_KEY]
