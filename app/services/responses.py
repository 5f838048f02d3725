"""The bounded store of recent Responses API answers, for `previous_response_id` and GET/DELETE by id."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class StoredResponse:
    response: dict  # the `response` object as it was sent
    messages: tuple[dict, ...]  # the conversation so far as chat messages (instructions left out)


class ResponseStore:
    """The last `max_entries` responses of this worker, oldest dropped first."""

    def __init__(self, max_entries: int = 1000):
        self.max_entries = max_entries
        self._entries: OrderedDict[str, StoredResponse] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, response: dict, messages: list[dict]) -> None:
        with self._lock:
            self._entries[response["id"]] = StoredResponse(response, tuple(messages))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def get(self, response_id: str) -> StoredResponse | None:
        with self._lock:
            return self._entries.get(response_id)

    def delete(self, response_id: str) -> bool:
        with self._lock:
            return self._entries.pop(response_id, None) is not None
