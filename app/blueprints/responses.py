"""POST /v1/responses (OpenAI's Responses API) through the chat pipeline; GET and DELETE /v1/responses/<id>."""

from __future__ import annotations

import json
from collections.abc import Iterator

from flask import Blueprint
from flask import current_app
from flask import g
from flask import jsonify
from flask import request
from loguru import logger

from ..errors import APIError
from ..errors import NotFound
from ..extensions import components
from ..pipeline import Whole
from ..schemas import load_json
from ..schemas.responses import ResponsesRequest
from ..services.responses import ResponseStore
from ..services.responses import SharedResponseStore
from ..store.bounded import RedisLRU
from ..streaming import sse_response
from ..translate.responses import StreamEvents
from ..translate.responses import from_completion
from ..translate.responses import input_messages
from ..translate.responses import new_response_id
from ..translate.responses import to_chat_request

bp = Blueprint("responses", __name__, url_prefix="/v1")
_schema = ResponsesRequest()
STORE_KEY = "llamagate.responses"


@bp.post("/responses")
def create_response():
    body = load_json(_schema)
    store = _store()
    history: list[dict] = []
    if body.get("previous_response_id"):
        previous = store.get(body["previous_response_id"])
        if previous is None:
            raise NotFound(f"No response with id {body['previous_response_id']!r} (it may have expired).",
                           param="previous_response_id", code="response_not_found")
        history = list(previous.messages)
    chat_request = to_chat_request(body, history)
    directives = request.headers.get("Cache-Control", "").lower()
    answer = components().chat.handle(json.dumps(chat_request).encode(), request_id=g.request_id,
                                      cache_allowed="no-cache" not in directives and "no-store" not in directives)
    response_id = new_response_id()
    conversation = [*history, *input_messages(body.get("input"))]
    if isinstance(answer, Whole):
        response = from_completion(response_id, body, json.loads(answer.body))
        _keep(store, body, response, conversation, json.loads(answer.body)["choices"][0]["message"])
        return current_app.response_class(json.dumps(response, ensure_ascii=False), mimetype="application/json",
                                          headers=dict(answer.headers))
    return sse_response(_events(StreamEvents(response_id, body), answer.chunks, store, body, conversation),
                        headers=dict(answer.headers))


@bp.get("/responses/<response_id>")
def get_response(response_id: str):
    stored = _store().get(response_id)
    if stored is None:
        raise NotFound(f"No response with id {response_id!r}.", param="response_id", code="response_not_found")
    return jsonify(stored.response)


@bp.delete("/responses/<response_id>")
def delete_response(response_id: str):
    if not _store().delete(response_id):
        raise NotFound(f"No response with id {response_id!r}.", param="response_id", code="response_not_found")
    return jsonify({"id": response_id, "object": "response.deleted", "deleted": True})


def _events(events: StreamEvents, chunks: Iterator, store: ResponseStore | SharedResponseStore, body: dict,
            conversation: list[dict]) -> Iterator[bytes]:
    """The typed SSE events; a failure part-way is an `error` event, then `response.failed`."""
    try:
        yield from map(_frame, events.start())
        for chunk in chunks:
            if isinstance(chunk, bytes):  # a keep-alive comment while tools run
                yield chunk
                continue
            yield from map(_frame, events.chunk(chunk))
        yield from map(_frame, events.end())
    except APIError as err:
        logger.bind(code=err.code).warning("response stream failed after it started: {}", err.message)
        yield _frame(events.event("error", code=err.code, message=err.message, param=err.param))
        events.response.update(status="failed", error={"code": err.code or "server_error", "message": err.message})
        yield _frame(events.event("response.failed", response=events.response))
        return
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    message = {"role": "assistant", "content": events.text or None}
    if events.calls:
        message["tool_calls"] = [{"id": c["id"], "type": "function", "function": c["function"]} for c in events.calls]
    _keep(store, body, events.response, conversation, message)


def _keep(store: ResponseStore | SharedResponseStore, body: dict, response: dict, conversation: list[dict],
          message: dict) -> None:
    if body.get("store", True) is False:
        return
    turn = {"role": "assistant", "content": message.get("content")}
    if message.get("tool_calls"):
        turn["tool_calls"] = [{"id": c["id"], "type": "function", "function": c["function"]} for c in message["tool_calls"]]
    store.put(response, [*conversation, turn])


def _frame(event: dict) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n".encode()


def _store() -> ResponseStore | SharedResponseStore:
    store = current_app.extensions.get(STORE_KEY)
    if store is None:
        redis = components().redis
        made = ResponseStore() if redis is None else SharedResponseStore(RedisLRU(redis, "llamagate:responses", 1000))
        store = current_app.extensions.setdefault(STORE_KEY, made)
    return store
