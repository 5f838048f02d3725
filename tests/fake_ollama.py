"""A fake Ollama speaking the native API's real shapes (NDJSON streams, tool calls, error bodies).

What a chat reply does is steered by directives in the last user message:
  [[length]]            finish with done_reason "length"
  [[think]]             thinking lines first, then a line with thinking and content together
  [[tool NAME {json}]]  a whole tool call (repeatable); [[noid]] makes them old-server style (no id, index 0)
  [[payload-on-done]]   the done line carries the last content piece
  [[error-mid]]         two tokens, then a bare {"error": ...} line and the end of the body
  [[error-at N TEXT]]   N lines (0: none), then {"error": TEXT} and the end of the body, after a 200
  [[eof]]               two tokens, then the body ends without a done line
  [[garbage]]           a line that is not JSON
  [[slow N DELAY]]      N tokens, DELAY seconds apart
  [[stall SECONDS]]     one token, then silence
  [[status CODE text]]  an HTTP error before any line
  [[empty]]             no content at all, just the done line
  [[reply TEXT]]        answer exactly TEXT (e.g. a JSON object), without "Hello! You said: "
  [[repeat-tool NAME {json}]]  (in the first user message) call that tool in every round that offers tools;
                        without tools, answer with the number of tool results seen
  [[cached N]]          (in the first user message) every done line reports N cached prompt tokens
A model not in the catalogue answers 404 like Ollama. A last message with role "tool" gets "Tool said: ...".
`/api/generate` takes the same directives in its `prompt` (tool calls aside) and answers in generate's shape
(`response` per line); with a `suffix` the answer ends " [before SUFFIX]". Model management (`/api/pull`,
`/api/create`, `/api/copy`, `/api/delete`, `/api/blobs/...`) and `/api/ps` answer minimally; `pull` streams its
progress lines PULL_DELAY seconds apart.

Each instance may have its own catalogue (`models=[model_entry("name:tag"), ...]`), a fixed `port` (to come back
where it was after `kill()`, which also drops open connections), and a `delay` before every chat answer (`tags_delay` before every model list).
"""

from __future__ import annotations

import json
import random
import re
import socket
import string
import threading
import time
from datetime import UTC
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

MODELS = [
    {"name": "llama3.2:latest", "model": "llama3.2:latest", "modified_at": "2025-05-04T17:37:44.706015396-07:00",
     "size": 2019393189, "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
     "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                 "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}},
    {"name": "qwen3:latest", "model": "qwen3:latest", "modified_at": "2025-10-26T17:15:24.097767Z",
     "size": 5200000000, "digest": "b" * 64, "details": {"family": "qwen3"}},
    {"name": "hf.co/org/repo:q4", "model": "hf.co/org/repo:q4", "modified_at": "2026-01-02T03:04:05Z",
     "size": 1, "digest": "c" * 64, "details": {}},
]


def known_names(models: list[dict]) -> set[str]:
    """The names a catalogue answers to: each model, and `name` for `name:latest`."""
    return {m["model"] for m in models} | {m["model"].split(":")[0] for m in models if m["model"].endswith(":latest")}


def model_entry(name: str) -> dict:
    """A minimal `/api/tags` entry for a model called `name`."""
    return {"name": name, "model": name, "modified_at": "2026-02-03T04:05:06Z", "size": 1, "digest": "e" * 64,
            "details": {"family": name.split(":")[0]}}


KNOWN = known_names(MODELS)
_DIRECTIVE = re.compile(r"\[\[(\w[\w-]*)(?: ([^\]]*))?\]\]")
PULL_DELAY = 0.2


def now_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def tokens(text: str) -> list[str]:
    """Token-sized pieces that keep their spaces, like a real tokenizer's output."""
    return re.findall(r"\s*\S+|\s+", text) or [""]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """Clients that hang up are part of the tests, not errors."""


class FakeOllama:
    """Runs in a thread on 127.0.0.1; records what it was sent."""

    def __init__(self, version: str = "0.12.10", *, models: list[dict] | None = None, port: int = 0,
                 delay: float = 0.0):
        self.version = version
        self.models = MODELS if models is None else models
        self.known = known_names(self.models)
        self.delay = delay  # seconds before each /api/chat answer starts
        self.tags_delay = 0.0  # seconds before each /api/tags answer
        self.connections: set = set()  # sockets of the requests being served, for kill()
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.done_lines: list[dict] = []  # every done line sent, in order
        self.aborted = 0
        self.completed = 0
        self.chat_active = 0  # /api/chat requests being answered now
        self.chat_peak = 0  # the most at once since the last reset_peak()
        self.lock = threading.Lock()
        self.server = _QuietServer(("127.0.0.1", port), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeOllama:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def kill(self) -> None:
        """Stop listening and drop every open connection, like a crashed Ollama."""
        self.stop()
        with self.lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def count(self, path: str = "/api/chat") -> int:
        """How many requests to `path` this instance received."""
        with self.lock:
            return sum(1 for r in self.requests if r["path"] == path)

    def reset_peak(self) -> None:
        with self.lock:
            self.chat_peak = self.chat_active

    def last(self, path: str = "/api/chat") -> dict:
        with self.lock:
            return next(r["body"] for r in reversed(self.requests) if r["path"] == path)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                with fake.lock:
                    fake.connections.add(self.connection)

            def finish(self):
                with fake.lock:
                    fake.connections.discard(self.connection)
                super().finish()

            def do_GET(self):
                self._record(None)
                if self.path == "/":
                    return self._send(200, "Ollama is running", "text/plain")
                if self.path == "/api/version":
                    return self._send(200, {"version": fake.version})
                if self.path == "/api/tags":
                    time.sleep(fake.tags_delay)
                    return self._send(200, {"models": fake.models})
                if self.path == "/api/ps":
                    return self._send(200, {"models": [{**m, "expires_at": "2099-01-01T00:00:00Z", "size_vram": m["size"],
                                                        "context_length": 4096} for m in fake.models[:1]]})
                return self._send(404, "404 page not found", "text/plain")

            def do_HEAD(self):
                self._record(None)
                found = self.path.startswith("/api/blobs/sha256:" + "0" * 8)
                self.send_response(200 if found else 404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_DELETE(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                self._record(body)
                if self.path != "/api/delete":
                    return self._send(404, "404 page not found", "text/plain")
                name = (body or {}).get("model") or (body or {}).get("name")
                if name not in fake.known:
                    return self._send(404, {"error": f"model '{name}' not found"})
                return self._send(200, "", "text/plain")

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path.startswith("/api/blobs/"):
                    self._record({"bytes": len(raw)})
                    return self._send(201, "", "text/plain")
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    return self._send(400, {"error": "invalid character in JSON"})
                self._record(body)
                if not isinstance(body, dict):
                    return self._send(400, {"error": "missing request body"})
                if self.path == "/api/show":
                    return self._show(body)
                if self.path == "/api/embed":
                    return self._embed(body)
                if self.path == "/api/embeddings":
                    if body.get("model") not in fake.known:
                        return self._send(404, {"error": f"model \"{body.get('model')}\" not found, try pulling it first"})
                    return self._send(200, {"embedding": [0.5, -0.25, 0.125]})
                if self.path == "/api/generate":
                    return self._generate(body)
                if self.path == "/api/pull":
                    return self._pull(body)
                if self.path == "/api/create":
                    return self._progress(body, [{"status": "using existing layer sha256:" + "a" * 64},
                                                 {"status": "writing manifest"}, {"status": "success"}], 0)
                if self.path == "/api/copy":
                    if body.get("source") not in fake.known:
                        return self._send(404, {"error": f"model '{body.get('source')}' not found"})
                    return self._send(200, "", "text/plain")
                if self.path == "/api/chat":
                    with fake.lock:
                        fake.chat_active += 1
                        fake.chat_peak = max(fake.chat_peak, fake.chat_active)
                    self._active = True
                    try:
                        if fake.delay:
                            time.sleep(fake.delay)
                        return self._chat(body)
                    finally:
                        self._done_answering()
                return self._send(404, "404 page not found", "text/plain")

            def _record(self, body):
                with fake.lock:
                    fake.requests.append({"path": self.path, "body": body})
                    fake.headers.append(dict(self.headers))

            def _done_answering(self):
                """A chat stops counting as active before its last bytes go out: the client may send its next
                request as soon as it has them, before this thread runs again."""
                if getattr(self, "_active", False):
                    self._active = False
                    with fake.lock:
                        fake.chat_active -= 1

            def _send(self, status, payload, content_type="application/json; charset=utf-8"):
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self._done_answering()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _show(self, body):
                name = body.get("model") or body.get("name") or ""
                model = next((m for m in fake.models if name in (m["model"], m["model"].split(":")[0])), None)
                if model is None:
                    return self._send(404, {"error": f"model '{name}' not found"})
                return self._send(200, {"modified_at": model["modified_at"], "details": model["details"],
                                        "model_info": {"general.architecture": model["details"].get("family", "")},
                                        "capabilities": ["completion", "tools"]})

            def _embed(self, body):
                if body.get("model") not in fake.known:
                    return self._send(404, {"error": f"model \"{body.get('model')}\" not found, try pulling it first"})
                texts = body["input"] if isinstance(body.get("input"), list) else [body.get("input")]
                vectors = [[0.010071029, -0.0017594862, 0.05007221][: body.get("dimensions") or 3] for _ in texts]
                return self._send(200, {"model": body["model"], "embeddings": vectors,
                                        "total_duration": 1000, "prompt_eval_count": 8 * len(texts)})

            def _generate(self, body):
                model = body.get("model", "")
                if not model:
                    return self._send(400, {"error": "model is required"})
                if model not in fake.known:
                    return self._send(404, {"error": f"model '{model}' not found"})
                prompt = body.get("prompt") or ""
                directives = {m.group(1): (m.group(2) or "").split(" ", 1) for m in _DIRECTIVE.finditer(prompt)}
                if "status" in directives:
                    code, message = directives["status"][0], (directives["status"][1:] or ["boom"])[0]
                    return self._send(int(code), {"error": message})
                reply = "Hello! You said: " + _DIRECTIVE.sub("", prompt).strip()
                if "reply" in directives:
                    reply = " ".join(directives["reply"])
                if body.get("suffix"):
                    reply += f" [before {body['suffix']}]"
                chat = self._lines({"model": model, "messages": [{"content": prompt}]}, reply, directives, [])
                lines = []
                for line in chat:
                    message = line.pop("message")
                    out = {**line, "response": message.get("content", "")}
                    if message.get("thinking"):
                        out["thinking"] = message["thinking"]
                    if out.get("done"):
                        out["context"] = [1, 2, 3]
                    lines.append(out)
                if body.get("stream") is False:
                    merged = {**lines[-1], "response": "".join(ln["response"] for ln in lines),
                              "created_at": now_stamp()}
                    with fake.lock:
                        fake.done_lines.append(merged)
                    return self._send(200, merged)
                self._stream(lines, directives)

            def _pull(self, body):
                name = body.get("model") or body.get("name") or ""
                digest = "sha256:" + "d" * 64
                lines = [{"status": "pulling manifest"}]
                lines += [{"status": f"pulling {digest[7:19]}", "digest": digest, "total": 300, "completed": done}
                          for done in (0, 100, 200, 300)]
                lines += [{"status": "verifying sha256 digest"}, {"status": "writing manifest"}, {"status": "success"}]
                if name.startswith("missing"):
                    lines = [{"status": "pulling manifest"}, {"error": "pull model manifest: file does not exist"}]
                return self._progress(body, lines, PULL_DELAY)

            def _progress(self, body, lines, delay):
                """Ollama's progress answer: NDJSON status lines, or the last one alone with stream false."""
                if body.get("stream") is False:
                    last = lines[-1]
                    return self._send(500 if "error" in last else 200, last)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for i, line in enumerate(lines):
                        if i and delay:
                            time.sleep(delay)
                        self._chunk(line)
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def _chat(self, body):
                model = body.get("model", "")
                if not model:
                    return self._send(400, {"error": "model is required"})
                if model not in fake.known:
                    return self._send(404, {"error": f"model '{model}' not found"})
                messages = body.get("messages") or []
                last = messages[-1] if messages else {}
                text = last.get("content") or ""
                first_user = next((m.get("content") or "" for m in messages if m.get("role") == "user"), "")
                repeat = re.search(r"\[\[repeat-tool (\S+) ([^\]]*)\]\]", first_user)
                if repeat:
                    results = [m for m in messages if m.get("role") == "tool"]
                    if body.get("tools"):
                        text = f"[[tool {repeat.group(1)} {repeat.group(2)}]]"
                        last = {"role": "user", "content": text}
                    else:
                        text = f"Final answer after {len(results)} tool results"
                        last = {"role": "user", "content": text}
                directives = {}
                calls = []
                for match in _DIRECTIVE.finditer(text):
                    if match.group(1) == "tool":
                        name, _, args = (match.group(2) or "").partition(" ")
                        calls.append((name, json.loads(args or "{}")))
                    else:
                        directives[match.group(1)] = (match.group(2) or "").split(" ", 1)
                if "status" in directives:
                    code, message = directives["status"][0], (directives["status"][1:] or ["boom"])[0]
                    return self._send(int(code), {"error": message})
                said = _DIRECTIVE.sub("", text).strip()
                if last.get("role") == "tool":
                    reply = f"Tool said: {text}"
                else:
                    reply = "" if calls and not said else "Hello! You said: " + said
                if "reply" in directives:
                    reply = " ".join(directives["reply"])
                lines = self._lines(body, reply, directives, calls)
                cached = re.search(r"\[\[cached (\d+)\]\]", first_user)
                if cached:
                    lines[-1]["prompt_eval_cached_count"] = int(cached.group(1))
                if body.get("stream") is False:
                    return self._whole(body, lines)
                self._stream(lines, directives)

            def _lines(self, body, reply, directives, calls):
                model = body["model"]
                head = {"model": model}
                out = []
                if "think" in directives:
                    out.append({**head, "message": {"role": "assistant", "content": "", "thinking": "Let me think."}})
                    out.append({**head, "message": {"role": "assistant", "content": "Thought", "thinking": " Done."}})
                pieces = [] if "empty" in directives or not reply else tokens(reply)
                if "slow" in directives:
                    pieces = [f"tok{i} " for i in range(int(directives["slow"][0]))]
                carry = pieces.pop() if "payload-on-done" in directives and pieces else ""
                for piece in pieces:
                    out.append({**head, "message": {"role": "assistant", "content": piece}})
                for i, (name, args) in enumerate(calls):
                    function = {"index": 0 if "noid" in directives else i, "name": name, "arguments": args}
                    call_id = "call_" + "".join(random.choices(string.ascii_lowercase + string.digits, k=8))
                    call = {"function": function} if "noid" in directives else {"id": call_id, "function": function}
                    out.append({**head, "message": {"role": "assistant", "content": "", "tool_calls": [call]}})
                prompt_tokens = sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 4 + 1
                done = {**head, "message": {"role": "assistant", "content": carry}, "done": True,
                        "done_reason": "length" if "length" in directives else "stop",
                        "total_duration": 4883583458, "load_duration": 1334875, "prompt_eval_count": prompt_tokens,
                        "prompt_eval_duration": 342546000, "eval_count": len(out) + 1, "eval_duration": 4535599000}
                out.append(done)
                return out

            def _whole(self, body, lines):
                merged = dict(lines[-1])
                merged["message"] = {"role": "assistant",
                                     "content": "".join(ln["message"].get("content", "") for ln in lines)}
                thinking = "".join(ln["message"].get("thinking", "") for ln in lines)
                if thinking:
                    merged["message"]["thinking"] = thinking
                calls = [c for ln in lines for c in ln["message"].get("tool_calls", [])]
                if calls and body.get("tools"):
                    merged["message"]["tool_calls"] = calls
                merged["created_at"] = now_stamp()
                with fake.lock:
                    fake.done_lines.append(merged)
                self._send(200, merged)

            def _stream(self, lines, directives):
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                delay = float((directives.get("slow") or [0, 0.2])[1:][0] if "slow" in directives else 0)
                try:
                    error_at = directives.get("error-at")
                    for i, line in enumerate(lines):
                        if error_at and i == int(error_at[0]):
                            self._chunk({"error": error_at[1] if len(error_at) > 1 else "boom"})
                            break
                        if i == 2 and "error-mid" in directives:
                            self._chunk({"error": "an error was encountered while running the model"})
                            break
                        if i == 2 and "eof" in directives:
                            break
                        if i == 1 and "garbage" in directives:
                            self._chunk_raw(b"this is not json\n")
                            break
                        if i == 1 and "stall" in directives:
                            time.sleep(float(directives["stall"][0]))
                        if line.get("done"):
                            with fake.lock:
                                fake.done_lines.append(line)
                            self._done_answering()
                        self._chunk({**line, "created_at": now_stamp(), "done": line.get("done", False)})
                        if delay and not line.get("done"):
                            time.sleep(delay)
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    with fake.lock:
                        fake.completed += 1
                except (BrokenPipeError, ConnectionResetError):
                    with fake.lock:
                        fake.aborted += 1
                    self.close_connection = True

            def _chunk(self, obj):
                self._chunk_raw(json.dumps(obj).encode() + b"\n")

            def _chunk_raw(self, data: bytes):
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        return Handler


if __name__ == "__main__":  # handy for manual runs: python tests/fake_ollama.py
    server = FakeOllama().start()
    print(server.url, flush=True)
    server.thread.join()
