"""OpenAI embeddings ⇄ Ollama `/api/embed`."""

from __future__ import annotations

import base64
import struct

from ..upstream.ollama import OllamaClient


def embed(client: OllamaClient, req: dict, request_id: str | None, keep_alive: str = "") -> dict:
    body: dict = {"model": req["model"], "input": req["input"] or [""]}
    for name in ("dimensions", "truncate", "options", "keep_alive"):
        if req.get(name) is not None:
            body[name] = req[name]
    if "keep_alive" not in body and keep_alive:
        body["keep_alive"] = keep_alive
    reply = client.post_json("/api/embed", body, request_id=request_id)
    as_base64 = (req.get("encoding_format") or "float").lower() == "base64"
    data = [{"object": "embedding", "index": i, "embedding": _encode(vector, as_base64)}
            for i, vector in enumerate(reply.get("embeddings") or [])]
    tokens = int(reply.get("prompt_eval_count") or 0)
    return {"object": "list", "model": reply.get("model") or req["model"], "data": data,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _encode(vector: list[float], as_base64: bool):
    if not as_base64:
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
