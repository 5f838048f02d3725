"""The `workflows:` section: where the workflow files are, how many runs to keep (their schemas: .workflow_files)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema
from marshmallow import post_load
from marshmallow import pre_load
from marshmallow import validate

from ..workflows.model import WorkflowsSettings
from .errors import ConfigError
from .errors import first_problem
from .errors import got
from .errors import key_path
from .errors import value_at
from .expand import expand_strings
from .fields import Number
from .mcp import reject_unknown_keys
from .plugins import Folders

DEFAULT_DIRS = ("workflows",)


def whole_number(low: int, high: int | None = None, rule: str = "") -> Number:
    """A whole-number field of at least `low` (and at most `high`), `rule` its one message."""
    rule = rule or (f"must be a whole number from {low} to {high}" if high else f"must be a whole number of at least {low}")
    return Number(integer=True, validate=validate.Range(min=low, max=high, error=rule), error_messages={"integer": rule})


class StrictSchema(Schema):
    """A mapping whose unknown keys are errors listing the allowed ones."""

    error_messages = {"type": "must be a mapping"}

    @pre_load
    def _known_keys(self, data, **kwargs):
        return reject_unknown_keys(self, data)


@dataclass(frozen=True)
class WorkflowsSection:
    """The validated `workflows:` section; ``dirs`` is None when the file does not name any."""

    dirs: tuple[str, ...] | None = None
    max_runs_kept: int = 1000


class WorkflowsSchema(StrictSchema):
    """The `workflows:` section of the settings file."""

    dirs = Folders(allow_none=True)
    max_runs_kept = whole_number(1, 1_000_000)

    @post_load
    def _section(self, data, **kwargs) -> WorkflowsSection:
        return WorkflowsSection(**{key: value for key, value in data.items() if value is not None})


def prepare_section(section: Any, environ: Mapping[str, str], source: str) -> dict[str, Any]:
    """The `workflows:` section ready for WorkflowsSchema, with ``${VAR}`` expanded in `dirs`.

    :raises ConfigError: a ``${VAR}`` cannot be expanded.
    """
    data = dict(section or {})
    if "dirs" in data:
        data["dirs"] = expand_strings(data["dirs"], environ, source, "workflows.dirs")
    return data


def section_error(messages: Any, data: Mapping[str, Any], source: str) -> ConfigError:
    """The ConfigError for WorkflowsSchema's messages: ``source: workflows.<key>: problem; got value``."""
    path, problem = first_problem(messages)
    param = key_path(("workflows", *path))
    return ConfigError(f"{source}: {param}: {problem}{got(problem, value_at(data, path))}", param=param, problem=problem)


def load_workflows_section(section: WorkflowsSection, *, base_dir: str, source: str) -> WorkflowsSettings:
    """Read the workflow files of the section's dirs (relative ones from ``base_dir``, the config file's folder).

    The default dir may be missing (no workflows); a dir the section names must exist.

    :raises ConfigError: a dir or a workflow file is bad (one line naming the file and the key path).
    """
    folders = DEFAULT_DIRS if section.dirs is None else section.dirs
    dirs = tuple(os.path.abspath(os.path.join(base_dir, os.path.expanduser(folder))) for folder in folders)
    if section.dirs is None and not any(os.path.isdir(folder) for folder in dirs):
        # No workflow folder: the loader, the file schemas and the template compiler stay unimported.
        return WorkflowsSettings(dirs=dirs, workflows={}, max_runs_kept=section.max_runs_kept)
    from ..workflows.loader import load_workflows

    workflows = load_workflows(dirs, source=source, missing_ok=section.dirs is None)
    return WorkflowsSettings(dirs=dirs, workflows=workflows, max_runs_kept=section.max_runs_kept)
