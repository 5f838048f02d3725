"""A workflow answering as the model `workflow:<name>`: the last user message fills the `chat.input` input, the
answer is the `chat.answer` step's output; streamed, that step's tokens are the chunks."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator

from ..errors import APIError
from ..errors import InvalidRequest
from ..errors import NotFound
from ..errors import type_for_status
from ..streaming import KEEP_ALIVE
from ..translate.merge import ReplyMerger
from ..translate.reply import ChunkTranslator
from ..translate.reply import new_completion_id
from ..translate.reply import to_chat_completion
from .runs import RunRecord

PREFIX = "workflow:"
_STATUS = {"workflow_limit_exceeded": 422, "workflow_timeout": 504}


def answer_whole(engine, call) -> tuple[dict, dict]:
    """(the chat.completion, response headers)."""
    workflow, inputs = _start(engine, call)
    record = engine.run(workflow, inputs, call.request_id, answer_step=workflow.chat.answer)
    headers = {"X-LlamaGate-Run-Id": record.id}
    if record.status != "completed":
        raise _failure(record, headers)
    merged = ReplyMerger()
    merged.add(_done_line(call.model, _answer_text(record, workflow.chat.answer), record))
    answer = to_chat_completion(merged.reply(), completion_id=new_completion_id(), created=int(time.time()),
                                usage=record.usage)
    return answer, headers


def answer_stream(engine, call, translator: ChunkTranslator) -> tuple[Iterator[dict | bytes], dict]:
    """(the chunks, response headers). The run goes on in its own thread; keep-alive comments go out while steps
    before the answer run. A failure before anything was streamed is a JSON error with its status."""
    workflow, inputs = _start(engine, call)
    record = RunRecord(workflow.name, inputs, call.request_id)
    headers = {"X-LlamaGate-Run-Id": record.id}
    pieces: queue.Queue = queue.Queue()
    cancelled = threading.Event()

    def run() -> None:
        try:
            engine.run(workflow, inputs, call.request_id, on_token=lambda piece: pieces.put(piece),
                       answer_step=workflow.chat.answer, record=record, cancelled=cancelled)
        finally:
            pieces.put(None)

    threading.Thread(target=run, daemon=True, name=f"workflow-{workflow.name}").start()
    keep_alive = engine.keep_alive
    try:
        first = pieces.get(timeout=keep_alive)
    except queue.Empty:
        first = KEEP_ALIVE
    if first is None and record.status != "completed":
        raise _failure(record, headers)
    return _chunks(first, pieces, record, workflow, call.model, translator, keep_alive, headers, cancelled), headers


def _chunks(first, pieces: queue.Queue, record: RunRecord, workflow, model: str, translator: ChunkTranslator,
            keep_alive: float, headers: dict, cancelled: threading.Event) -> Iterator[dict | bytes]:
    try:
        yield from _relay(first, pieces, record, workflow, model, translator, keep_alive, headers)
    finally:
        cancelled.set()  # a client that leaves stops the run (a finished run ignores it)


def _relay(first, pieces: queue.Queue, record: RunRecord, workflow, model: str, translator: ChunkTranslator,
           keep_alive: float, headers: dict) -> Iterator[dict | bytes]:
    item, streamed = first, False
    while item is not None:
        if item is KEEP_ALIVE:
            yield KEEP_ALIVE
        else:
            streamed = True
            yield from translator.deltas({"message": {"role": "assistant", "content": item}})
        try:
            item = pieces.get(timeout=keep_alive)
        except queue.Empty:
            item = KEEP_ALIVE
    if record.status != "completed":
        raise _failure(record, headers)
    if not streamed:  # the answer step was not an llm step: its output, in one piece
        yield from translator.deltas({"message": {"role": "assistant", "content": _answer_text(record, workflow.chat.answer)}})
    yield from translator.finish(_done_line(model, "", record), record.usage)


def _start(engine, call):
    name = call.model[len(PREFIX):]
    workflow = engine.workflows.get(name)
    if workflow is None or workflow.chat is None:
        raise NotFound(f"The model {call.model!r} does not exist.", param="model", code="model_not_found")
    if call.req.get("tools"):
        raise InvalidRequest("A workflow model takes no tools: its steps use the workflow's own.", param="tools")
    last = next((m for m in reversed(call.req["messages"]) if m.get("role") == "user"), None)
    content = last.get("content") if last else None
    if isinstance(content, list):
        content = "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    if not isinstance(content, str):
        raise InvalidRequest("A workflow model needs a user message with text.", param="messages")
    inputs = {workflow.chat.input: content}
    engine.check_inputs(workflow, inputs)
    return workflow, inputs


def _answer_text(record: RunRecord, answer_step: str) -> str:
    output = next((s.output for s in reversed(record.steps) if s.id == answer_step and s.status == "completed"), None)
    if output is None:
        output = record.outputs
    return output if isinstance(output, str) else json.dumps(output, ensure_ascii=False, default=str)


def _done_line(model: str, content: str, record: RunRecord) -> dict:
    return {"model": model, "message": {"role": "assistant", "content": content}, "done": True, "done_reason": "stop"}


def _failure(record: RunRecord, headers: dict) -> APIError:
    error = record.error or {"code": "workflow_step_failed", "message": "the run failed"}
    code = error["code"] if error["code"] in _STATUS else "workflow_step_failed"
    step = f" (step {error['step_id']!r})" if error.get("step_id") else ""
    status = _STATUS.get(code, 502)
    return APIError(f"workflow run {record.id} failed{step}: {error['message']}", status=status,
                    type=type_for_status(status), code=code, param=error.get("param") if code in _STATUS else None,
                    headers=headers)
