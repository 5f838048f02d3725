"""OpenAI embeddings ⇄ Ollama `/api/embed`."""

from __future__ import annotations

import base64
import struct

from ..tally import current as current_tally
from ..translate.request import keep_alive_of
from ..upstream.backends import Backends


def embed(client: Backends, req: dict, request_id: str | None, keep_alive: str = "") -> dict:
    body: dict = {"model": req["model"], "input": req["input"] or [""]}
    for name in ("dimensions", "truncate", "options"):
        if req.get(name) is not None:
            body[name] = req[name]
    alive = keep_alive_of(req, keep_alive)
    if alive is not None:
        body["keep_alive"] = alive
    reply = client.post_json("/api/embed", body, request_id=request_id)
    as_base64 = (req.get("encoding_format") or "float").lower() == "base64"
    data = [{"object": "embedding", "index": i, "embedding": _encode(vector, as_base64)}
            for i, vector in enumerate(reply.get("embeddings") or [])]
    tokens = int(reply.get("prompt_eval_count") or 0)
    current_tally().add_usage(tokens, 0)
    return {"object": "list", "model": reply.get("model") or req["model"], "data": data,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _encode(vector: list[float], as_base64: bool):
    if not as_base64:
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
