"""/v1/workflows: the loaded workflows, their runs (whole, or streamed as SSE run events) and recent run records."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator

from flask import Blueprint
from flask import g
from flask import jsonify
from marshmallow import RAISE
from marshmallow import Schema
from marshmallow import fields

from ..errors import NotFound
from ..extensions import components
from ..schemas import load_json
from ..schemas.fields import StrictBool
from ..streaming import KEEP_ALIVE
from ..streaming import sse_response
from ..workflows.runs import RunRecord

bp = Blueprint("workflows", __name__, url_prefix="/v1/workflows")


class RunRequest(Schema):
    """`POST /v1/workflows/<name>/runs`."""

    class Meta:
        unknown = RAISE

    inputs = fields.Dict(keys=fields.String(), load_default=dict)
    stream = StrictBool(load_default=False)


_run_schema = RunRequest()


@bp.get("")
def list_workflows():
    engine = components().workflows
    workflows = [_summary(w) for w in engine.workflows.values()]
    return jsonify({"workflows": workflows, "count": len(workflows)})


@bp.get("/<name>")
def get_workflow(name: str):
    workflow = components().workflows.get(name)
    return jsonify({**_summary(workflow), "steps": [{"id": s.id, "type": s.type} for s in workflow.steps],
                    "tools": list(workflow.tools), "limits": vars(workflow.limits)})


@bp.post("/<name>/runs")
def run_workflow(name: str):
    engine = components().workflows
    workflow = engine.get(name)
    body = load_json(_run_schema)
    engine.check_inputs(workflow, body["inputs"])
    if not body["stream"]:
        return jsonify(engine.run(workflow, body["inputs"], g.request_id).public())
    record = RunRecord(workflow.name, body["inputs"], g.request_id)
    return sse_response(_events(engine, workflow, record, components().settings["STREAM_KEEPALIVE"]),
                        headers={"X-LlamaGate-Run-Id": record.id})


@bp.get("/<name>/runs/<run_id>")
def get_run(name: str, run_id: str):
    components().workflows.get(name)
    record = components().workflows.store.get(run_id)
    if record is None or record.workflow != name:
        raise NotFound(f"There is no run {run_id!r} of workflow {name!r}.", param="run_id", code="run_not_found")
    return jsonify(record.public())


def _summary(workflow) -> dict:
    return {"name": workflow.name, "description": workflow.description, "inputs": workflow.inputs,
            "outputs": workflow.outputs, "model": f"workflow:{workflow.name}" if workflow.chat else None}


def _events(engine, workflow, record: RunRecord, keep_alive: float) -> Iterator[bytes]:
    """The run's events as SSE (`event: <type>`, `data: {type, sequence_number, ...}`), the run in its own thread
    so that keep-alive comments go out while a step is busy."""
    events: queue.Queue = queue.Queue()
    counter = iter(range(1, 1 << 62))
    cancelled = threading.Event()

    def emit(kind: str, data: dict) -> None:
        events.put((kind, data))

    worker = threading.Thread(target=_run_into, args=(engine, workflow, record, emit, events, cancelled), daemon=True,
                              name=f"workflow-{workflow.name}")
    worker.start()
    try:
        while True:
            try:
                item = events.get(timeout=keep_alive)
            except queue.Empty:
                yield KEEP_ALIVE
                continue
            if item is None:
                return
            kind, data = item
            payload = {"type": kind, "sequence_number": next(counter), **data}
            yield f"event: {kind}\ndata: {json.dumps(payload, ensure_ascii=False, default=str)}\n\n".encode()
    finally:
        cancelled.set()  # a client that leaves stops the run (a finished run ignores it)


def _run_into(engine, workflow, record: RunRecord, emit, events: queue.Queue, cancelled: threading.Event) -> None:
    try:
        engine.run(workflow, record.inputs, record.request_id, on_event=emit, record=record, cancelled=cancelled)
    finally:
        events.put(None)
