"""PII redactor: masks e-mail addresses, phone numbers and card-like numbers in what users send and what the
model answers (whole and streamed). An example plugin; see README "Plugins".

    plugins:
      items:
        - name: pii_redactor
          config: {mask: "[redacted]", patterns: ['\\bEMP-\\d{6}\\b']}

A streamed answer is masked chunk by chunk, so a number split across two chunks can slip through.
"""

from __future__ import annotations

import re

from marshmallow import Schema
from marshmallow import ValidationError
from marshmallow import fields

BUILT_IN = [
    r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",  # e-mail addresses
    r"(?<!\w)\+?(?:\d[ ().-]{0,2}){8,}\d(?!\w)",  # phone and card-like numbers: 9+ digits, spaces, dots, dashes, brackets
]


def _regex(value: str) -> None:
    try:
        re.compile(value)
    except re.error as err:
        raise ValidationError(f"not a regular expression: {err}") from None


class Plugin:
    """Redacts on the way in (`on_request`) and on the way out (`on_response`, `on_chunk`)."""

    class Config(Schema):
        mask = fields.String(load_default="[redacted]")
        patterns = fields.List(fields.String(validate=_regex), load_default=list)

    def setup(self, config: dict) -> None:
        self.mask = config["mask"]
        self.pattern = re.compile("|".join(f"(?:{p})" for p in [*BUILT_IN, *config["patterns"]]))

    def redact(self, text: str) -> str:
        return self.pattern.sub(self.mask, text)

    def on_request(self, ctx, request: dict) -> dict | None:
        changed = False
        for message in request["messages"]:
            content = message.get("content")
            if isinstance(content, str):
                masked = self.redact(content)
                changed |= masked != content
                message["content"] = masked
            elif isinstance(content, list):
                for part in content:
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        masked = self.redact(part["text"])
                        changed |= masked != part["text"]
                        part["text"] = masked
        if changed:
            ctx.log.info("pii_redactor masked the request")
        return request if changed else None

    def on_response(self, ctx, response: dict) -> dict | None:
        for choice in response.get("choices") or []:
            message = choice.get("message") or {}
            if isinstance(message.get("content"), str):
                message["content"] = self.redact(message["content"])
        return response

    def on_chunk(self, ctx, chunk: dict) -> dict | None:
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                delta["content"] = self.redact(delta["content"])
        return chunk
