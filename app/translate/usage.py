"""Token usage: summed over upstream rounds in Ollama's counts, shown as OpenAI's `usage` object."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Usage:
    """Prompt, completion and cached-prompt tokens of one or more Ollama replies."""

    prompt: int = 0
    completion: int = 0
    cached: int = 0

    @classmethod
    def of(cls, done: dict) -> Usage:
        """The counts of one Ollama `done` line (missing counts are 0)."""
        return cls(int(done.get("prompt_eval_count") or 0), int(done.get("eval_count") or 0),
                   int(done.get("prompt_eval_cached_count") or 0))

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt + other.prompt, self.completion + other.completion, self.cached + other.cached)

    def openai(self) -> dict:
        """OpenAI's `usage`; `prompt_tokens_details` only when Ollama reported cached tokens."""
        result: dict = {"prompt_tokens": self.prompt, "completion_tokens": self.completion,
                        "total_tokens": self.prompt + self.completion}
        if self.cached:
            result["prompt_tokens_details"] = {"cached_tokens": self.cached}
        return result
