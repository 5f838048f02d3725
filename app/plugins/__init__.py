"""Plugins: Python classes with hooks on every chat path, tools for the model, routes and models of their own.

Plugin authors import `Plugin`, `Tool`, `Reject` and `Reply` from here; `app.plugins.testing` helps test them.
"""

from .api import Plugin
from .api import Reject
from .api import Reply
from .api import Tool

__all__ = ["Plugin", "Reject", "Reply", "Tool"]
