"""The bounded store of recent Responses API answers, for `previous_response_id` and GET/DELETE by id: this worker's
memory, or with REDIS_URL a map in Redis that every worker and instance shares."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass

from ..store.bounded import RedisLRU


@dataclass(frozen=True)
class StoredResponse:
    response: dict  # the `response` object as it was sent
    messages: tuple[dict, ...]  # the conversation so far as chat messages (instructions left out)


class ResponseStore:
    """The last `max_entries` responses, oldest dropped first."""

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


class SharedResponseStore:
    """The same store kept in Redis; while Redis is unreachable, responses are not kept and not found."""

    def __init__(self, shared: RedisLRU):
        self.shared = shared

    def put(self, response: dict, messages: list[dict]) -> None:
        value = json.dumps({"response": response, "messages": messages}, ensure_ascii=False, separators=(",", ":"))
        self.shared.put(response["id"], value)

    def get(self, response_id: str) -> StoredResponse | None:
        raw = self.shared.get(response_id)
        if raw is None:
            return None
        data = json.loads(raw)
        return StoredResponse(data["response"], tuple(data["messages"]))

    def delete(self, response_id: str) -> bool:
        return self.shared.delete(response_id)
