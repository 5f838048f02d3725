"""Exposed tool names (`<server>__<tool>`, OpenAI-safe and collision-free) and allow/deny globs."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

EXPOSED_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_NAME_LENGTH = 64
SEPARATOR = "__"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def clean(text: str) -> str:
    """Replace every character outside ``[A-Za-z0-9_-]`` with ``_``."""
    return _UNSAFE.sub("_", text)


def short_hash(server: str, tool: str, length: int = 8) -> str:
    """A deterministic hex digest of the original (server, tool) pair."""
    return hashlib.sha256(f"{server}\0{tool}".encode()).hexdigest()[:length]


def base_name(server: str, tool: str) -> str:
    """``clean(server)__clean(tool)``; over 64 characters it is cut and ends in ``_<hash>``."""
    name = f"{clean(server)}{SEPARATOR}{clean(tool)}"
    if len(name) > MAX_NAME_LENGTH:
        name = _with_suffix(name, short_hash(server, tool))
    return name


def assign_names(pairs: Iterable[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """Map each exposed name to its original ``(server, tool)``; the result depends only on the set.

    A pair keeps its plain ``base_name`` unless another pair cleans to the same name. Then the pair
    whose name needed no cleaning (if any) keeps it and the others get ``_<8 hex>`` of a hash of
    their original names, so ``a.b`` and ``a_b`` on one server become ``s__a_b`` and
    ``s__a_b_1f2e3d4c``. Route calls with this map; never split an exposed name on ``__``.
    """
    groups: dict[str, list[tuple[str, str]]] = {}
    for pair in sorted(set(pairs)):
        groups.setdefault(base_name(*pair), []).append(pair)
    taken: dict[str, tuple[str, str]] = {}
    suffixed: list[tuple[str, tuple[str, str]]] = []
    for base, members in groups.items():
        for pair in members:
            # Several pairs can spell the base exactly ("a_"+"b" and "a"+"_b"): the first one wins.
            if base not in taken and (len(members) == 1 or f"{pair[0]}{SEPARATOR}{pair[1]}" == base):
                taken[base] = pair
            else:
                suffixed.append((base, pair))
    for base, pair in suffixed:
        for length in (8, 16, 64):
            name = _with_suffix(base, short_hash(*pair, length=length))
            if name not in taken:
                break
        taken[name] = pair
    return dict(sorted(taken.items()))


def _with_suffix(name: str, digest: str) -> str:
    return f"{name[: MAX_NAME_LENGTH - len(digest) - 1]}_{digest}"


@dataclass(frozen=True)
class ToolFilter:
    """Allow/deny globs over tool names; deny wins and an empty allow list allows everything.

    Each pattern is matched (``fnmatch``, case-sensitive, ``*`` also crosses ``.`` and ``__``)
    against the exposed name and the original names written ``server__tool``, ``server.tool`` and
    ``mcp.server.tool`` (the Go original's form). So ``github__*``, ``github.*`` and
    ``*.delete_*`` all work, and a tool renamed by cleaning can still be named as the server
    spells it.
    """

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    def allows(self, server: str, tool: str, exposed: str | None = None) -> bool:
        """Whether the tool may be exposed and called."""
        names = {f"{server}{SEPARATOR}{tool}", f"{server}.{tool}", f"mcp.{server}.{tool}"}
        if exposed:
            names.add(exposed)
        if any(fnmatchcase(name, pattern) for pattern in self.deny for name in names):
            return False
        return not self.allow or any(fnmatchcase(name, pattern) for pattern in self.allow for name in names)
