"""Exceptions raised by the MCP client layer.

::

    Exception
     └── MCPError              base of everything the pool raises at call time
          ├── ServerNotFound   no server with that name (404)
          ├── ServerExists     add_server() with a name already in use (409)
          ├── ServerUnavailable server not connected: starting, failed or restarting (503)
          ├── ToolNotFound     the server does not list that tool (404)
          ├── ToolDenied       the tool is filtered out by allow/deny globs (403)
          ├── ToolTimeout      the call took longer than its timeout (504)
          ├── ToolCallFailed   protocol error or invalid reply from the server (502)
          ├── ResourceError    resources/list or resources/read failed (502)
          └── PromptError      prompts/list or prompts/get failed (502)

A tool that runs and reports failure (``isError``) is *not* an exception: it comes back as a
``ToolResult`` with ``is_error=True``. ``http_status`` is a hint for HTTP layers.
"""

from __future__ import annotations


class MCPError(Exception):
    """Base class of the pool's runtime errors."""

    http_status = 500

    def __init__(self, message: str, *, server: str | None = None, tool: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.server = server
        self.tool = tool


class ServerNotFound(MCPError):
    """No server with that name is configured."""

    http_status = 404


class ServerExists(MCPError):
    """A server with that name already exists."""

    http_status = 409


class ServerUnavailable(MCPError):
    """The server is not connected (starting, failed, restarting or stopped)."""

    http_status = 503


class ToolNotFound(MCPError):
    """The server does not list a tool with that name."""

    http_status = 404


class ToolDenied(MCPError):
    """The tool is excluded by the allow/deny globs."""

    http_status = 403


class ToolTimeout(MCPError):
    """The tool call did not finish within its timeout."""

    http_status = 504


class ToolCallFailed(MCPError):
    """The server answered the call with a protocol error or an invalid reply."""

    http_status = 502


class ResourceError(MCPError):
    """Listing or reading resources failed."""

    http_status = 502


class PromptError(MCPError):
    """Listing or getting prompts failed."""

    http_status = 502
