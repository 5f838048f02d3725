"""What one request used (key name, model, backend, tokens, cache outcome, first-token time), gathered as it runs.

The access log line, the key's token budget and the metrics all read this one record when the response closes,
so each fact is collected in one place (the upstream reader counts tokens, the auth check names the key).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask
from flask import g
from flask import has_request_context
from flask import request

FINISHERS_KEY = "llamagate.finishers"


@dataclass
class Tally:
    """One request's facts; fields stay empty when they do not apply (a health probe has no model)."""

    started: float = 0.0
    method: str = ""
    key_name: str = ""  # the named key's name ("" without keys; "default" for API_KEY)
    model: str = ""
    backend: str = ""  # the Ollama backend that answered
    cache: str = ""  # HIT, MISS or BYPASS for answers that could be cached
    stream: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_token_at: float | None = None  # perf_counter() when the first upstream line arrived

    def add_usage(self, prompt: int, completion: int) -> None:
        self.prompt_tokens += prompt
        self.completion_tokens += completion

    def first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def begin() -> Tally:
    """A fresh tally for the request being handled (the access log's before-request hook calls this first)."""
    g._get_current_object().tally = tally = Tally(started=time.perf_counter(),
                                                  method=request._get_current_object().method)
    return tally


def current() -> Tally:
    """The request's tally; outside a request (background runs, tool threads) a throwaway one."""
    if has_request_context():
        tally = g._get_current_object().get("tally")
        if tally is not None:
            return tally
    return Tally()


def on_finish(app: Flask, finisher: Callable[[Tally, int, str], None]) -> None:
    """Call ``finisher(tally, status, route)`` once each response of `app` has been sent (streams included)."""
    app.extensions.setdefault(FINISHERS_KEY, []).append(finisher)


def finishers(app: Flask) -> list[Callable[[Tally, int, str], None]]:
    return app.extensions.get(FINISHERS_KEY, [])
