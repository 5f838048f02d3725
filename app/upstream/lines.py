"""Ollama's NDJSON stream as parsed lines, with its failure modes turned into APIErrors."""

from __future__ import annotations

from collections.abc import Iterator

from ..client_socket import client_watch
from ..errors import UpstreamError
from ..errors import UpstreamLineTooLong
from ..errors import UpstreamTimeout
from ..errors import from_ollama
from ..json_codec import loads
from ..tally import current as current_tally
from .backend import count_error
from .body import DEFAULT_LIMIT
from .body import BodyBroken
from .body import lines
from .error_text import ollama_error
from .ollama import UpstreamResponse

_END = (None, False)


class UpstreamLines:
    """Iterate the JSON objects of one streamed reply; the last one yielded is the `done` line.

    Raises APIError for an in-band `{"error": ...}` line (mapped like Ollama's HTTP errors), a line that is
    not JSON or longer than `limit` bytes, a stall longer than the read timeout, and an end of body without a
    `done` line. Always `close()` it (or use `with`); closing more than once is harmless.
    """

    def __init__(self, response: UpstreamResponse, limit: int = DEFAULT_LIMIT):
        self.response = response
        self._lines = lines(response, limit, client_watch(), flagged=True)
        self._ready = False  # the line after the last one read has come with it
        self._peeked: dict | None = None
        self._tally = current_tally()  # the first line's time and the done line's token counts go here

    def __enter__(self) -> UpstreamLines:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.response.close()

    def peek(self) -> dict:
        """Read the first line now, so an early failure can still get a real HTTP status."""
        if self._peeked is None:
            self._peeked = self._next()
        return self._peeked

    @property
    def ready(self) -> bool:
        """The next line is in memory already: reading it will not wait for the network."""
        return self._peeked is not None or self._ready

    def __iter__(self) -> Iterator[dict]:
        if self._peeked is not None:
            line, self._peeked = self._peeked, None
            yield line
            if line.get("done"):
                return
        while True:
            line = self._next()
            yield line
            if line.get("done"):
                return

    def _next(self) -> dict:
        try:
            raw, self._ready = next(self._lines, _END)
            while raw is not None and not raw.strip():
                raw, self._ready = next(self._lines, _END)
        except (BodyBroken, UpstreamLineTooLong) as err:
            timed_out = isinstance(err, BodyBroken) and err.timed_out
            if self._tally.backend:  # after the first byte: counted here, not retried
                count_error(self._tally.backend, "timeout" if timed_out else "broken")
            if isinstance(err, UpstreamLineTooLong):
                raise
            if timed_out:
                raise UpstreamTimeout("Ollama stopped sending tokens for longer than TIMEOUT.") from None
            raise UpstreamError("The connection to Ollama broke during the reply.") from None
        if raw is None:
            raise UpstreamError("Ollama ended the reply before it was complete.")
        try:
            line = loads(raw)
        except ValueError:
            raise UpstreamError("upstream returned malformed stream data") from None
        if not isinstance(line, dict):
            raise UpstreamError("upstream returned malformed stream data")
        if "error" in line:
            raise from_ollama(ollama_error(str(line["error"])))
        self._tally.first_token()
        if line.get("done"):
            self._tally.add_usage(int(line.get("prompt_eval_count") or 0), int(line.get("eval_count") or 0))
        return line


def open_lines(client, path: str, body: dict, request_id: str | None) -> UpstreamLines:
    """POST `body` as a stream (Ollama always streams to the gateway, so TIMEOUT is an idle timeout) and read the
    first line before returning, so that an early failure still gets a real HTTP status."""
    reply = UpstreamLines(client.request("POST", path, body={**body, "stream": True}, request_id=request_id),
                          client.max_line)
    try:
        reply.peek()
    except BaseException:
        reply.close()
        raise
    return reply
