"""Model listing and lookup from Ollama's `/api/tags` (every backend's, each model once) and `/api/show`."""

from __future__ import annotations

from datetime import datetime

from ..upstream.backends import Backends


def owner(name: str) -> str:
    """The namespace of a model name: `hf.co/org/repo:q4` → `org`, `user/model` → `user`, `plugin:x`, `workflow:x` →
    `llamagate`, else `library`."""
    if name.startswith(("plugin:", "workflow:")):
        return "llamagate"
    parts = name.split(":", 1)[0].split("/")
    return parts[-2] if len(parts) >= 2 else "library"


def unix_time(stamp: str | None) -> int:
    """RFC 3339 (up to nanoseconds, any offset) as Unix seconds; 0 when missing or unreadable."""
    if not stamp:
        return 0
    text = stamp.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        return 0


def model_object(model_id: str, modified_at: str | None) -> dict:
    return {"id": model_id, "object": "model", "created": unix_time(modified_at), "owned_by": owner(model_id)}


def list_models(client: Backends, request_id: str | None, extra: list[str] | None = None) -> dict:
    """Ollama's models (of all backends), then the `extra` ones the gateway answers itself (plugin models)."""
    tags = client.merged("/api/tags", request_id)
    data = [model_object(m.get("model") or m.get("name", ""), m.get("modified_at")) for m in tags.get("models") or []]
    data += [model_object(name, None) for name in extra or []]
    return {"object": "list", "data": data}


def get_model(client: Backends, model_id: str, request_id: str | None) -> dict:
    shown = client.post_json("/api/show", {"model": model_id}, request_id=request_id)
    return model_object(model_id, shown.get("modified_at"))
