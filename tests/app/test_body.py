"""Reading upstream bodies over a real loopback connection: lines however the chunks fall, the line cap (also on
a line that has not ended yet), whole bodies capped or cut, broken and silent bodies, a client that left."""

from __future__ import annotations

import socket
import threading

import pytest
import requests

from app.errors import ClientGone
from app.errors import UpstreamLineTooLong
from app.upstream.body import BodyBroken
from app.upstream.body import lines
from app.upstream.body import read_body


class RawServer:
    """Answers each connection with `head` and then `parts`, one send each; `hold` keeps it open after."""

    def __init__(self, head: bytes, parts: list[bytes], hold: bool = False):
        self.head, self.parts, self.hold = head, parts, hold
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.done = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        sock, _ = self.listener.accept()
        with sock:
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            try:
                sock.sendall(self.head)
                for part in self.parts:
                    sock.sendall(part)
                if self.hold:
                    self.done.wait(10)
            except OSError:
                pass
        self.listener.close()


def chunked(*chunks: bytes) -> tuple[bytes, list[bytes]]:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
    return head, [f"{len(c):x}\r\n".encode() + c + b"\r\n" for c in chunks] + [b"0\r\n\r\n"]


def plain(body: bytes, pieces: int = 7) -> tuple[bytes, list[bytes]]:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    step = max(1, len(body) // pieces)
    return head, [body[i:i + step] for i in range(0, len(body), step)]


def opened(server: RawServer, timeout: float = 10) -> requests.Response:
    return requests.get(server.url, stream=True, timeout=timeout)


BODY = b'{"a":1}\n\n{"b":"two"}\n{"c":[3,3,3]}\n' + b"x" * 5000 + b"\n{\"last\":true}"
EXPECTED = BODY.split(b"\n")


@pytest.mark.parametrize("cuts", [[len(BODY)], [1] * 40 + [len(BODY)], [3, 8, 9, 20, 4000, len(BODY)],
                                  [7, 8, 21, 36, len(BODY)]])
def test_lines_come_out_whole_however_the_chunks_fall(cuts):
    chunks, start = [], 0
    for cut in cuts:
        if start < len(BODY):
            chunks.append(BODY[start:min(cut + start, len(BODY))])
            start += cut
    with opened(RawServer(*chunked(*chunks))) as response:
        assert list(lines(response)) == EXPECTED


def test_lines_of_a_body_that_is_not_chunked():
    with opened(RawServer(*plain(BODY))) as response:
        assert list(lines(response)) == EXPECTED


def test_flagged_lines_tell_when_the_next_line_is_in_memory_already():
    """Ready only when the next line ended in the same piece and is not blank (a reader skips those)."""
    parts = [b'{"a":1}\n{"b":2}\n  \n{"c":3}\n{"d"', b':4}\n', b'{"e":5}\n{"f":6}\n\t\n']
    with opened(RawServer(*chunked(*parts))) as response:
        assert list(lines(response, flagged=True)) == [
            (b'{"a":1}', True), (b'{"b":2}', False), (b"  ", True), (b'{"c":3}', False), (b'{"d":4}', False),
            (b'{"e":5}', True), (b'{"f":6}', False), (b"\t", False)]


def test_a_line_of_exactly_the_cap_passes_and_one_byte_more_does_not():
    with opened(RawServer(*chunked(b"a" * 2000 + b"\n", b"b" * 1000, b"b" * 1000 + b"\n"))) as response:
        assert [len(line) for line in lines(response, 2000)] == [2000, 2000]
    with opened(RawServer(*chunked(b"a" * 2001 + b"\n"))) as response, pytest.raises(UpstreamLineTooLong):
        list(lines(response, 2000))


def test_a_line_past_the_cap_fails_before_it_ends():
    """The upstream keeps the line open: the cap is reached without waiting for a newline (or a timeout)."""
    server = RawServer(*chunked(b'{"ok":1}\n' + b"z" * 3000), hold=True)
    server.parts.pop()  # no end of body
    with opened(server, timeout=30) as response:
        found = lines(response, 2000)
        assert next(found) == b'{"ok":1}'
        with pytest.raises(UpstreamLineTooLong):
            next(found)
    server.done.set()


def test_a_whole_body_is_capped_or_cut():
    with opened(RawServer(*plain(b"0123456789" * 300))) as response, pytest.raises(UpstreamLineTooLong):
        read_body(response, 2000)
    with opened(RawServer(*plain(b"0123456789" * 300))) as response:
        assert read_body(response, 2000, cut=True) == (b"0123456789" * 300)[:2000]
    with opened(RawServer(*plain(b"0123456789" * 300))) as response:
        assert read_body(response, 3000) == b"0123456789" * 300


def test_a_body_that_breaks_or_goes_silent_is_body_broken():
    head, parts = chunked(b'{"a":1}\n', b'{"b":2}\n')
    with opened(RawServer(head, [parts[0], b"ff\r\n{\"trunc"])) as response:
        with pytest.raises(BodyBroken) as broken:
            list(lines(response))
        assert not broken.value.timed_out
    server = RawServer(head, [parts[0]], hold=True)
    with opened(server, timeout=0.3) as response:
        with pytest.raises(BodyBroken) as silent:
            list(lines(response))
        assert silent.value.timed_out
    server.done.set()


def test_a_client_that_left_stops_the_reading():
    with opened(RawServer(*chunked(b'{"a":1}\n', b'{"b":2}\n'))) as response, pytest.raises(ClientGone):
        list(lines(response, gone=lambda: True))
