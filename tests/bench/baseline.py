"""A bare Flask + requests OpenAI → Ollama pass-through: the ceiling any Flask gateway is measured against.

No auth, logging, validation or cache; a thread-local Session per thread. A streamed request is relayed line by
line with requests' `iter_lines()`, each line one SSE chunk, as a minimal relay would. Env: UPSTREAM.
"""

import json
import os
import threading
import time
import uuid

import requests
from flask import Flask
from flask import Response
from flask import jsonify
from flask import request

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:18500").rstrip("/")
app = Flask(__name__)
_local = threading.local()


def _session() -> requests.Session:
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    return _local.session


@app.post("/v1/chat/completions")
def chat_completions():
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return jsonify({"error": {"message": "invalid body", "type": "invalid_request_error"}}), 400
    upstream = {"model": body.get("model"), "stream": bool(body.get("stream")),
                "messages": [{"role": m.get("role", "user"), "content": m.get("content") or ""} for m in body["messages"]]}
    if upstream["stream"]:
        return _relay(upstream)
    reply = _session().post(UPSTREAM + "/api/chat", json=upstream, timeout=(5, 300)).json()
    prompt, completion = reply.get("prompt_eval_count", 0), reply.get("eval_count", 0)
    return jsonify({"id": "chatcmpl-" + uuid.uuid4().hex, "object": "chat.completion", "created": int(time.time()),
                    "model": upstream["model"],
                    "choices": [{"index": 0, "message": reply.get("message"), "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                              "total_tokens": prompt + completion}})


def _relay(upstream: dict) -> Response:
    reply = _session().post(UPSTREAM + "/api/chat", json=upstream, timeout=(5, 300), stream=True)
    completion_id, created = "chatcmpl-" + uuid.uuid4().hex, int(time.time())

    def events():
        with reply:
            for line in reply.iter_lines():
                if not line:
                    continue
                part = json.loads(line)
                done = bool(part.get("done"))
                delta = {} if done else {"content": (part.get("message") or {}).get("content", "")}
                chunk = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                         "model": upstream["model"],
                         "choices": [{"index": 0, "delta": delta, "finish_reason": "stop" if done else None}]}
                yield "data: " + json.dumps(chunk) + "\n\n"
        yield "data: [DONE]\n\n"

    return Response(events(), mimetype="text/event-stream")
