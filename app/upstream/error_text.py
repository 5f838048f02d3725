"""Upstream error text made fit for a client: an HTML page reduced to its title or visible text, whitespace
collapsed, cut short, and secrets redacted (the full text goes to the debug log)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from flask import current_app
from flask import has_app_context

from ..logs import Redactor

CLIENT_LIMIT = 300  # characters of upstream text a client may see
OLLAMA_LIMIT = 1000  # characters of Ollama's own `{"error"}` message kept
_MARKUP = re.compile(r"<\s*(?:!doctype|html|head|body|title|div|p|h\d|pre|center|br|hr)\b", re.IGNORECASE)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_HIDDEN = re.compile(r"<(script|style|head)\b[^>]*>.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")
# Addresses of the servers behind the gateway are the operator's business: URLs and host:port pairs.
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+", re.IGNORECASE)
_HOST_PORT = re.compile(r"(?:\b\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-f:]+\]|\blocalhost|\b[a-z0-9-]+(?:\.[a-z0-9-]+)+)"
                        r":\d{2,5}\b", re.IGNORECASE)


def client_text(text: str, secrets: Iterable[str] | None = None) -> str:
    """`text` as a client may see it: plain, one line, at most CLIENT_LIMIT characters, without secrets."""
    if _MARKUP.search(text):
        text = visible_text(text)
    text = _SPACE.sub(" ", text).strip()
    text = Redactor(known_secrets() if secrets is None else secrets)(text)
    if len(text) > CLIENT_LIMIT:
        text = text[:CLIENT_LIMIT - 1].rstrip() + "…"
    return text


def ollama_error(message: str) -> str:
    """Ollama's own `{"error": "..."}` message as it is, secrets redacted; markup in it is treated like a page."""
    if _MARKUP.search(message):
        return without_addresses(client_text(message))
    return Redactor(known_secrets())(message[:OLLAMA_LIMIT])


def visible_text(page: str) -> str:
    """An HTML page's title, or its visible text when it has none."""
    title = _TITLE.search(page)
    if title:
        text = html.unescape(_TAG.sub(" ", title.group(1))).strip()
        if text:
            return text
    return html.unescape(_TAG.sub(" ", _HIDDEN.sub(" ", page)))


def without_addresses(text: str) -> str:
    """`text` with URLs and host:port pairs replaced by a placeholder."""
    return _HOST_PORT.sub("[address]", _URL.sub("[address]", text))


def known_secrets() -> list[str]:
    """The gateway's own keys (API_KEY, ADMIN_API_KEY, named keys), when an app is there to ask."""
    if not has_app_context():
        return []
    config = current_app.config
    return [config.get("API_KEY", ""), config.get("ADMIN_API_KEY", ""),
            *(key.secret for key in config.get("KEYS") or ())]
