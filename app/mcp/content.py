"""The resources and prompts half of MCPPool's API (admin endpoints, `mcp://` references)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from collections.abc import Coroutine
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from .describe import describe_error
from .errors import MCPError
from .errors import PromptError
from .errors import ResourceError
from .errors import ServerNotFound
from .errors import ServerUnavailable
from .results import format_resource_contents

if TYPE_CHECKING:
    from .config import MCPSettings
    from .supervisor import ServerSupervisor

BACKSTOP = 5.0
_RESULT_NOISE = ("_meta", "resultType", "ttlMs", "cacheScope")


class ContentAPI:
    """Mixin for MCPPool: ``list_resources``, ``read_resource``, ``list_prompts``, ``get_prompt``."""

    settings: MCPSettings
    _get: Callable[[str], ServerSupervisor]
    _run: Callable[[Coroutine[Any, Any, Any], float], Any]

    def list_resources(self, server: str) -> list[dict[str, Any]]:
        """Every resource the server lists (all pages), as ``{uri, name, mimeType, ...}`` dicts.

        :raises ServerNotFound, ServerUnavailable, ResourceError:
        """
        return self._listing(server, "resources", "list_resources", "resources", ResourceError)

    def list_resource_templates(self, server: str) -> list[dict[str, Any]]:
        """Every resource template the server lists (all pages).

        :raises ServerNotFound, ServerUnavailable, ResourceError:
        """
        return self._listing(server, "resources", "list_resource_templates", "resource_templates", ResourceError)

    def list_prompts(self, server: str) -> list[dict[str, Any]]:
        """Every prompt the server lists (all pages), as ``{name, description, arguments}`` dicts.

        :raises ServerNotFound, ServerUnavailable, PromptError:
        """
        return self._listing(server, "prompts", "list_prompts", "prompts", PromptError)

    def read_resource(self, server: str, uri: str, max_bytes: int | None = None) -> str:
        """The resource's text contents joined with "\\n" (blobs described), capped at ``max_bytes``
        (default ``max_tool_result_size``).

        :raises ServerNotFound, ServerUnavailable, ResourceError:
        """
        supervisor = self._get(server)
        cap = max_bytes if max_bytes is not None else self.settings.max_tool_result_size

        async def read() -> Any:
            return await supervisor.request(supervisor.connected().read_resource(uri))

        result = self._content_request(supervisor, read, ResourceError, f"reading {uri!r}")
        return format_resource_contents(result.contents, cap)

    def get_prompt(self, server: str, name: str, arguments: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``prompts/get`` as ``{description, messages}``; argument values are sent as strings.

        :raises ServerNotFound, ServerUnavailable, PromptError:
        """
        supervisor = self._get(server)
        args = {str(k): v if isinstance(v, str) else str(v) for k, v in (arguments or {}).items()}

        async def get() -> Any:
            return await supervisor.request(supervisor.connected().get_prompt(name, args))

        return dump(self._content_request(supervisor, get, PromptError, f"prompt {name!r}"))

    def _listing(
        self, server: str, capability: str, method: str, field: str, error: type[MCPError]
    ) -> list[dict[str, Any]]:
        supervisor = self._get(server)

        async def fetch() -> list[Any]:
            return await supervisor.list_all(capability, method, field)

        return [dump(item) for item in self._content_request(supervisor, fetch, error, method)]

    def _content_request(
        self,
        supervisor: ServerSupervisor,
        make: Callable[[], Coroutine[Any, Any, Any]],
        error: type[MCPError],
        what: str,
    ) -> Any:
        name = supervisor.cfg.name
        try:
            return self._run(make(), supervisor.cfg.timeout + BACKSTOP)
        except (ServerUnavailable, ServerNotFound):
            raise
        except concurrent.futures.TimeoutError:
            raise error(f"{what} on MCP server {name!r} timed out", server=name) from None
        except Exception as exc:  # noqa: BLE001 - protocol errors from the server
            raise error(f"{what} on MCP server {name!r} failed: {describe_error(exc)}", server=name) from exc


def dump(model: Any) -> dict[str, Any]:
    """A result or listing item as a camelCase JSON dict, without protocol bookkeeping fields."""
    out = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    for key in _RESULT_NOISE:
        out.pop(key, None)
    return out
