"""One API key as configured: its name, the SHA-256 of its value, its limits and the models it may use."""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field
from fnmatch import translate

LATEST = ":latest"


@dataclass(frozen=True)
class ApiKey:
    """A key the gateway accepts. ``secret`` is the plain value when the file gave one (kept only so that log lines
    can mask it); ``models`` is None for every model. Limits left None do not apply."""

    name: str
    digest: bytes = field(repr=False)
    secret: str = field(default="", repr=False, compare=False)
    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None
    models: tuple[str, ...] | None = None
    admin: bool = False
    _matcher: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.models is not None:
            pattern = "|".join(f"(?:{translate(glob)})" for glob in self.models) or r"(?!)"
            object.__setattr__(self, "_matcher", re.compile(pattern))

    @property
    def restricts_models(self) -> bool:
        return self._matcher is not None

    @property
    def limited(self) -> bool:
        return bool(self.rpm or self.tpm or self.max_concurrent)

    def allows(self, model: str) -> bool:
        """Whether the key may use `model`; `name` and `name:latest` are the same model to Ollama, so to the globs."""
        if self._matcher is None:
            return True
        if self._matcher.match(model):
            return True
        if model.endswith(LATEST):
            return bool(self._matcher.match(model[: -len(LATEST)]))
        if ":" not in model.rsplit("/", 1)[-1]:
            return bool(self._matcher.match(model + LATEST))
        return False

    def limits(self) -> dict:
        """The limits as shown to the key's owner (None: no limit)."""
        return {"rpm": self.rpm, "tpm": self.tpm, "max_concurrent": self.max_concurrent,
                "models": list(self.models) if self.models is not None else None, "admin": self.admin}
