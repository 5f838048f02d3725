"""Exceptions raised by the MCP client layer.

::

    Exception
     └── MCPError              base of everything the pool raises at call time
          ├── ServerNotFound   no server with that name
          ├── ServerExists     add_server() with a name already in use
          ├── ServerUnavailable server not connected: starting, failed or restarting
          ├── ToolNotFound     the server does not list that tool
          ├── ToolDenied       the tool is filtered out by allow/deny globs
          ├── ToolTimeout      the call took longer than its timeout
          ├── ToolCallFailed   protocol error or invalid reply from the server
          ├── ResourceError    resources/list or resources/read failed
          └── PromptError      prompts/list or prompts/get failed

A tool that runs and reports failure (``isError``) is *not* an exception: it comes back as a
``ToolResult`` with ``is_error=True``. The HTTP status of each is chosen in app.errors.from_mcp.
"""

from __future__ import annotations


class MCPError(Exception):
    """Base class of the pool's runtime errors."""

    def __init__(self, message: str, *, server: str | None = None, tool: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.server = server
        self.tool = tool


class ServerNotFound(MCPError):
    """No server with that name is configured."""


class ServerExists(MCPError):
    """A server with that name already exists."""


class ServerUnavailable(MCPError):
    """The server is not connected (starting, failed, restarting or stopped)."""


class ToolNotFound(MCPError):
    """The server does not list a tool with that name."""


class ToolDenied(MCPError):
    """The tool is excluded by the allow/deny globs."""


class ToolTimeout(MCPError):
    """The tool call did not finish within its timeout."""


class ToolCallFailed(MCPError):
    """The server answered the call with a protocol error or an invalid reply."""


class ResourceError(MCPError):
    """Listing or reading resources failed."""


class PromptError(MCPError):
    """Listing or getting prompts failed."""

