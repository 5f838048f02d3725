"""Answers made without Ollama (a plugin's `Reply`, a plugin model's `chat()`), as Ollama-shaped lines, so the
same translation makes their completions and chunks as the model's."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Iterator


def lines_of(pieces: Iterable[str], model: str) -> Iterator[dict]:
    """One content line per piece, then a `done` line with no token counts."""
    for piece in pieces:
        yield {"model": model, "message": {"role": "assistant", "content": piece}}
    yield {"model": model, "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop"}
