"""Test server with 50 tools of small, realistic JSON schemas (2-4 properties each), over stdio; calls echo their input."""

from __future__ import annotations

import json
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.stdio import stdio_server


def _s(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _i(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "integer", "description": description, **extra}


def _n(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "number", "description": description, **extra}


def _b(description: str) -> dict[str, Any]:
    return {"type": "boolean", "description": description, "default": False}


def _e(description: str, *values: str) -> dict[str, Any]:
    return {"type": "string", "description": description, "enum": list(values)}


def _a(description: str, items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "description": description, "items": items}


_EMAILS = _a("Email addresses.", {"type": "string", "format": "email"})
_WHEN = "ISO 8601 date and time, e.g. 2026-03-01T09:30:00Z."

# (name, description, properties, required)
TOOLS: list[tuple[str, str, dict[str, Any], list[str]]] = [
    ("read_file", "Read a text file.", {"path": _s("Absolute path."), "encoding": _s("Text encoding.", default="utf-8"),
                                        "max_bytes": _i("Stop after this many bytes.", minimum=1)}, ["path"]),
    ("write_file", "Write text to a file.", {"path": _s("Absolute path."), "content": _s("Text to write."),
                                             "append": _b("Append instead of replacing.")}, ["path", "content"]),
    ("list_directory", "List a directory.", {"path": _s("Directory path."), "recursive": _b("Include subdirectories."),
                                             "pattern": _s("Glob the names must match.")}, ["path"]),
    ("move_file", "Move or rename a file.", {"source": _s("Current path."), "destination": _s("New path."),
                                             "overwrite": _b("Replace an existing file.")}, ["source", "destination"]),
    ("search_files", "Find files containing a text.", {"root": _s("Directory to search."), "query": _s("Text to find."),
                                                      "max_results": _i("At most this many hits.", minimum=1, maximum=500)},
     ["root", "query"]),
    ("git_status", "Show the working tree status.", {"repo": _s("Repository path."),
                                                     "include_untracked": _b("List untracked files too.")}, ["repo"]),
    ("git_log", "Show recent commits.", {"repo": _s("Repository path."), "max_count": _i("Number of commits.", minimum=1),
                                         "author": _s("Only commits by this author.")}, ["repo"]),
    ("git_diff", "Show changes between commits or the working tree.", {"repo": _s("Repository path."),
                                                                     "base": _s("Base revision.", default="HEAD"),
                                                                     "path": _s("Limit to this path.")}, ["repo"]),
    ("git_commit", "Record staged changes.", {"repo": _s("Repository path."), "message": _s("Commit message."),
                                              "all": _b("Stage tracked changes first.")}, ["repo", "message"]),
    ("git_checkout", "Switch branches.", {"repo": _s("Repository path."), "branch": _s("Branch name."),
                                          "create": _b("Create the branch first.")}, ["repo", "branch"]),
    ("create_issue", "Open an issue.", {"repo": _s("owner/name."), "title": _s("Issue title."), "body": _s("Markdown body."),
                                        "labels": _a("Labels to add.", {"type": "string"})}, ["repo", "title"]),
    ("list_issues", "List issues of a repository.", {"repo": _s("owner/name."), "state": _e("Issue state.", "open", "closed", "all"),
                                                     "label": _s("Only issues with this label."),
                                                     "limit": _i("At most this many.", minimum=1, maximum=100)}, ["repo"]),
    ("get_issue", "Get one issue.", {"repo": _s("owner/name."), "number": _i("Issue number.", minimum=1)}, ["repo", "number"]),
    ("comment_on_issue", "Comment on an issue.", {"repo": _s("owner/name."), "number": _i("Issue number.", minimum=1),
                                                  "body": _s("Markdown comment.")}, ["repo", "number", "body"]),
    ("close_issue", "Close an issue.", {"repo": _s("owner/name."), "number": _i("Issue number.", minimum=1),
                                        "reason": _e("Why it is closed.", "completed", "not_planned")}, ["repo", "number"]),
    ("list_events", "List calendar events in a time range.", {"calendar_id": _s("Calendar id."), "start": _s(_WHEN),
                                                              "end": _s(_WHEN), "max_results": _i("At most this many.", minimum=1)},
     ["calendar_id", "start", "end"]),
    ("create_event", "Create a calendar event.", {"title": _s("Event title."), "start": _s(_WHEN), "end": _s(_WHEN),
                                                  "attendees": _EMAILS}, ["title", "start", "end"]),
    ("delete_event", "Delete a calendar event.", {"calendar_id": _s("Calendar id."), "event_id": _s("Event id."),
                                                  "notify": _b("Tell the attendees.")}, ["calendar_id", "event_id"]),
    ("find_free_slot", "Find a time when everyone is free.", {"attendees": _EMAILS,
                                                              "duration_minutes": _i("Length of the meeting.", minimum=5),
                                                              "within_days": _i("Search this many days ahead.", default=7)},
     ["attendees", "duration_minutes"]),
    ("update_event", "Change a calendar event.", {"event_id": _s("Event id."), "title": _s("New title."), "start": _s(_WHEN),
                                                  "end": _s(_WHEN)}, ["event_id"]),
    ("send_email", "Send an email.", {"to": _EMAILS, "subject": _s("Subject line."), "body": _s("Plain-text body."),
                                      "cc": _EMAILS}, ["to", "subject", "body"]),
    ("search_email", "Search the mailbox.", {"query": _s("Search terms."), "folder": _s("Folder name.", default="INBOX"),
                                             "limit": _i("At most this many.", minimum=1, maximum=200)}, ["query"]),
    ("read_email", "Read one email.", {"message_id": _s("Message id."), "format": _e("Body format.", "text", "html", "raw")},
     ["message_id"]),
    ("archive_email", "Move an email to the archive.", {"message_id": _s("Message id."), "folder": _s("Archive folder.")},
     ["message_id"]),
    ("draft_reply", "Draft a reply to an email.", {"message_id": _s("Message id."), "body": _s("Reply text."),
                                                   "reply_all": _b("Reply to every recipient.")}, ["message_id", "body"]),
    ("get_weather", "Current weather for a city.", {"city": _s("City name."), "units": _e("Units.", "metric", "imperial")},
     ["city"]),
    ("get_forecast", "Daily forecast for a place.", {"latitude": _n("Degrees north.", minimum=-90, maximum=90),
                                                     "longitude": _n("Degrees east.", minimum=-180, maximum=180),
                                                     "days": _i("Number of days.", minimum=1, maximum=14)},
     ["latitude", "longitude"]),
    ("geocode", "Coordinates of an address.", {"address": _s("Street address or place."),
                                               "country": _s("ISO 3166 country code.")}, ["address"]),
    ("reverse_geocode", "Address at coordinates.", {"latitude": _n("Degrees north."), "longitude": _n("Degrees east.")},
     ["latitude", "longitude"]),
    ("get_air_quality", "Air quality index for a city.", {"city": _s("City name."),
                                                          "pollutant": _e("Pollutant.", "pm25", "pm10", "o3", "no2")}, ["city"]),
    ("run_query", "Run a read-only SQL query.", {"database": _s("Database name."), "sql": _s("SELECT statement."),
                                                 "max_rows": _i("At most this many rows.", minimum=1, maximum=10000)},
     ["database", "sql"]),
    ("list_tables", "List the tables of a database.", {"database": _s("Database name."), "schema": _s("Schema name.")},
     ["database"]),
    ("describe_table", "Columns and indexes of a table.", {"database": _s("Database name."), "table": _s("Table name.")},
     ["database", "table"]),
    ("insert_rows", "Insert rows into a table.", {"database": _s("Database name."), "table": _s("Table name."),
                                                  "rows": _a("Rows as column → value objects.", {"type": "object"})},
     ["database", "table", "rows"]),
    ("explain_query", "Show a query plan.", {"database": _s("Database name."), "sql": _s("SQL statement."),
                                             "analyze": _b("Run it to get real timings.")}, ["database", "sql"]),
    ("fetch_url", "Fetch a web page as text.", {"url": _s("http(s) URL.", format="uri"),
                                                "method": _e("HTTP method.", "GET", "HEAD"),
                                                "timeout_seconds": _n("Give up after this long.", minimum=0.1)}, ["url"]),
    ("search_web", "Search the web.", {"query": _s("Search terms."), "max_results": _i("At most this many.", minimum=1),
                                       "region": _s("Region code, e.g. en-GB.")}, ["query"]),
    ("extract_links", "Links found on a web page.", {"url": _s("http(s) URL.", format="uri"),
                                                     "same_domain": _b("Only links to the same domain.")}, ["url"]),
    ("take_screenshot", "Screenshot of a web page.", {"url": _s("http(s) URL.", format="uri"),
                                                      "width": _i("Viewport width in pixels.", minimum=320),
                                                      "height": _i("Viewport height in pixels.", minimum=240)}, ["url", "width"]),
    ("check_status", "Whether a URL answers.", {"url": _s("http(s) URL.", format="uri"),
                                                "expected_status": _i("Status code that counts as up.", default=200)}, ["url"]),
    ("convert_units", "Convert a quantity between units.", {"value": _n("Amount."), "from_unit": _s("Unit of the value."),
                                                            "to_unit": _s("Unit wanted.")}, ["value", "from_unit", "to_unit"]),
    ("convert_currency", "Convert money at a day's rate.", {"amount": _n("Amount.", minimum=0),
                                                           "from_currency": _s("ISO 4217 code."), "to_currency": _s("ISO 4217 code."),
                                                           "date": _s("Rate date, YYYY-MM-DD.")},
     ["amount", "from_currency", "to_currency"]),
    ("compute_statistics", "Mean, median and percentiles of numbers.", {"values": _a("Numbers.", {"type": "number"}),
                                                                        "percentiles": _a("Percentiles wanted.", {"type": "number"})},
     ["values"]),
    ("parse_date", "Parse a date written in words.", {"text": _s("e.g. 'next Tuesday at 3pm'."),
                                                      "timezone": _s("IANA time zone.", default="UTC")}, ["text"]),
    ("time_between", "Time between two moments.", {"start": _s(_WHEN), "end": _s(_WHEN),
                                                   "unit": _e("Unit of the answer.", "seconds", "minutes", "hours", "days")},
     ["start", "end"]),
    ("list_containers", "List containers on a host.", {"host": _s("Host name."), "all": _b("Include stopped containers."),
                                                       "label": _s("Only containers with this label.")}, ["host"]),
    ("restart_service", "Restart a service.", {"host": _s("Host name."), "service": _s("Service name."),
                                               "force": _b("Kill it if it does not stop.")}, ["host", "service"]),
    ("tail_logs", "Last lines of a service's log.", {"service": _s("Service name."), "lines": _i("Number of lines.", minimum=1),
                                                     "since": _s("Only lines after this time (" + _WHEN + ")")}, ["service"]),
    ("get_metrics", "A service metric over a time window.", {"service": _s("Service name."), "metric": _s("Metric name."),
                                                             "window_minutes": _i("Window length.", minimum=1, default=60)},
     ["service", "metric"]),
    ("create_ticket", "Open a support ticket.", {"summary": _s("One-line summary."),
                                                 "priority": _e("Priority.", "low", "normal", "high", "urgent"),
                                                 "team": _s("Team to assign.")}, ["summary", "priority"]),
]
_NAMES = {name for name, *_ in TOOLS}


async def list_tools(ctx: object, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(
        tools=[
            types.Tool(name=name, description=text, input_schema={"type": "object", "properties": props, "required": required})
            for name, text, props, required in TOOLS
        ]
    )


async def call_tool(ctx: object, params: types.CallToolRequestParams) -> types.CallToolResult:
    if params.name not in _NAMES:
        return types.CallToolResult(content=[types.TextContent(text=f"unknown tool {params.name}")], is_error=True)
    text = f"{params.name} {json.dumps(params.arguments or {}, sort_keys=True)}"
    return types.CallToolResult(content=[types.TextContent(text=text)])


server = Server("fifty", on_list_tools=list_tools, on_call_tool=call_tool)


async def main() -> None:
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
