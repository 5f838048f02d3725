"""Run records: one per workflow run, shaped like OpenAI's run steps, and the bounded store of recent ones (this
worker's, or with REDIS_URL one in Redis that every worker and instance reads)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from ..store.bounded import RedisLRU
from ..translate.usage import Usage

MAX_VALUE_BYTES = 64 * 1024  # larger inputs and outputs are cut in the record (not in the run itself)


def new_run_id() -> str:
    return f"run_{random.getrandbits(96):024x}"


@dataclass
class StepRecord:
    id: str
    type: str
    status: str = "in_progress"  # completed | failed | skipped | exhausted
    attempts: int = 0
    started: float = field(default_factory=time.monotonic)
    duration_ms: float | None = None
    output: Any = None
    error: dict | None = None
    usage: Usage = field(default_factory=Usage)

    def public(self) -> dict:
        return {"id": self.id, "type": self.type, "status": self.status, "attempts": self.attempts,
                "duration_ms": self.duration_ms, "output": bounded(self.output), "error": self.error,
                "usage": self.usage.openai()}


@dataclass
class RunRecord:
    workflow: str
    inputs: dict
    request_id: str | None
    id: str = field(default_factory=new_run_id)
    status: str = "in_progress"  # completed | failed | cancelled
    created_at: int = field(default_factory=lambda: int(time.time()))
    completed_at: int | None = None
    outputs: Any = None
    error: dict | None = None
    usage: Usage = field(default_factory=Usage)
    steps: list[StepRecord] = field(default_factory=list)

    def public(self) -> dict:
        return {"id": self.id, "object": "workflow.run", "workflow": self.workflow, "status": self.status,
                "created_at": self.created_at, "completed_at": self.completed_at, "request_id": self.request_id,
                "inputs": bounded(self.inputs), "outputs": bounded(self.outputs), "error": self.error,
                "usage": self.usage.openai(), "steps": [step.public() for step in list(self.steps)]}


def bounded(value: Any) -> Any:
    """The value, or a marker with its start when its JSON is larger than MAX_VALUE_BYTES."""
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except ValueError:
        return str(value)[:MAX_VALUE_BYTES]
    if len(text.encode()) <= MAX_VALUE_BYTES:
        return value
    return {"truncated": True, "bytes": len(text.encode()), "start": text[:1024]}


class RunStore:
    """The most recent runs of this worker (oldest dropped first); shared by its request threads."""

    def __init__(self, max_runs: int):
        self.max_runs = max_runs
        self._runs: OrderedDict[str, RunRecord] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, run: RunRecord) -> None:
        with self._lock:
            self._runs[run.id] = run
            while len(self._runs) > self.max_runs:
                self._runs.popitem(last=False)

    def get(self, run_id: str) -> RunRecord | None:
        with self._lock:
            return self._runs.get(run_id)


@dataclass(frozen=True)
class StoredRun:
    """A run record as another worker wrote it: its workflow and its public form."""

    workflow: str
    data: dict

    def public(self) -> dict:
        return self.data


class SharedRunStore:
    """The recent runs in Redis, written when a run starts and again when it ends; while Redis is unreachable
    records are neither kept nor found."""

    def __init__(self, shared: RedisLRU):
        self.shared = shared

    def add(self, run: RunRecord) -> None:
        self.shared.put(run.id, json.dumps(run.public(), ensure_ascii=False, default=str, separators=(",", ":")))

    def get(self, run_id: str) -> StoredRun | None:
        raw = self.shared.get(run_id)
        if raw is None:
            return None
        data = json.loads(raw)
        return StoredRun(data["workflow"], data)
