"""Bodies of the MCP admin endpoints (a server entry to add is checked by app.settings.mcp instead)."""

from __future__ import annotations

from marshmallow import INCLUDE
from marshmallow import RAISE
from marshmallow import Schema
from marshmallow import fields
from marshmallow import validate

_NAME = validate.Length(min=1, error="must not be empty")


class ExecuteRequest(Schema):
    """`POST /v1/mcp/execute`: the raw tool name of one server, and its arguments."""

    class Meta:
        unknown = RAISE

    server = fields.String(required=True, validate=_NAME)
    tool = fields.String(required=True, validate=_NAME)
    arguments = fields.Dict(keys=fields.String(), load_default=dict)


class PromptRequest(Schema):
    """`POST /v1/mcp/servers/<name>/prompts/<prompt>`: the prompt's arguments (sent as strings)."""

    class Meta:
        unknown = RAISE

    arguments = fields.Dict(keys=fields.String(), load_default=dict)


class ServerEntry(Schema):
    """`POST /v1/mcp/servers`: any JSON object here; app.settings.mcp.parse_server_entry checks it as the file's entries."""

    class Meta:
        unknown = INCLUDE
