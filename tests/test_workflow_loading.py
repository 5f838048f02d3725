"""Workflow files: the `workflows:` section, loading into the model's dataclasses, one-line errors, bounded templates."""

from __future__ import annotations

import copy
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from app.settings import ConfigError
from app.settings import load_settings
from app.workflows.model import ChatBinding
from app.workflows.model import Defaults
from app.workflows.model import Limits
from app.workflows.model import Retry
from app.workflows.model import WorkflowsSettings
from app.workflows.templates import TemplateError
from app.workflows.templates import compile_expression
from app.workflows.templates import compile_template
from app.workflows.templates import referenced_steps
from app.workflows.templates import render_tree

EXAMPLE = """\
name: triage
description: Classify a ticket and draft a reply
inputs:  {type: object, required: [ticket], properties: {ticket: {type: string}}}
outputs: {type: object, required: [category, reply]}
tools: [docs__*]
limits: {max_steps: 30, max_runtime: 90s, max_tokens: 12000, max_parallel: 4}
defaults: {model: llama3.2, timeout: 60s, on_error: stop}
chat: {input: ticket, answer: draft}
steps:
  - {id: classify, type: llm, prompt: "Category (billing|bug|other) for: {{ inputs.ticket }}"}
  - id: facts
    type: branch
    cases:
      - when: "'bug' in steps.classify.output"
        steps: [{id: search, type: tool, tool: docs__search, arguments: {q: "{{ inputs.ticket }}"}, on_error: continue, default: []}]
    default: [{id: nofacts, type: transform, value: []}]
  - {id: notes, type: foreach, items: "{{ steps.search.output or [] }}", parallel: 3,
     step: {type: llm, prompt: "One line: {{ item }}"}}
  - {id: draft, type: llm, tools: [docs__search], max_tool_rounds: 3,
     messages: [{role: user, content: "{{ inputs.ticket }} {{ steps.notes.output | join('; ') }}"}]}
output: {category: "{{ steps.classify.output }}", reply: "{{ steps.draft.output }}"}
"""

BASE = {"name": "w", "tools": ["docs__*"], "defaults": {"model": "m"},
        "steps": [{"id": "a", "type": "transform", "value": 1}]}


@pytest.fixture(autouse=True)
def in_empty_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def load(tmp_path: Path, files: dict[str, str | dict], section: dict | None = None) -> dict:
    """load_settings() with a llamagate.yaml in tmp_path and these files in tmp_path/workflows."""
    folder = tmp_path / "workflows"
    folder.mkdir(exist_ok=True)
    for name, content in files.items():
        (folder / name).write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False))
    config = tmp_path / "llamagate.yaml"
    config.write_text(yaml.safe_dump({"workflows": section}) if section is not None else "")
    return load_settings({"ENV_FILE": "", "CONFIG_FILE": str(config)})


def fails(tmp_path: Path, files: dict[str, str | dict], section: dict | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, files, section)
    assert "\n" not in str(caught.value)
    return caught.value


def changed(*steps: dict, **top) -> dict:
    """BASE with other steps and top-level keys."""
    data = copy.deepcopy(BASE)
    if steps:
        data["steps"] = list(steps)
    data.update(top)
    return data


SCOPE = {"inputs": {"ticket": "printer is a bug"}, "steps": {}}


# -- the example --------------------------------------------------------------------------------------------------


def test_the_example_loads_into_the_model(tmp_path):
    settings = load(tmp_path, {"triage.yaml": EXAMPLE})["WORKFLOWS"]
    assert isinstance(settings, WorkflowsSettings)
    assert settings.dirs == (str(tmp_path / "workflows"),) and settings.max_runs_kept == 1000
    wf = settings.workflows["triage"]
    assert (wf.name, wf.source, wf.description) == ("triage", str(tmp_path / "workflows" / "triage.yaml"),
                                                    "Classify a ticket and draft a reply")
    assert wf.inputs == {"type": "object", "required": ["ticket"], "properties": {"ticket": {"type": "string"}}}
    assert wf.outputs == {"type": "object", "required": ["category", "reply"]}
    assert wf.tools == ("docs__*",)
    assert wf.limits == Limits(max_steps=30, max_runtime=90.0, max_tokens=12000, max_parallel=4)
    assert wf.defaults == Defaults(model="llama3.2", timeout=60.0, on_error="stop")
    assert wf.chat == ChatBinding(input="ticket", answer="draft")
    assert [(s.id, s.type, s.path) for s in wf.steps] == [
        ("classify", "llm", "steps[0]"), ("facts", "branch", "steps[1]"), ("notes", "foreach", "steps[2]"),
        ("draft", "llm", "steps[3]")]

    classify, facts, notes, draft = wf.steps
    assert classify.model is None and classify.retry == Retry() and classify.messages == ()
    assert classify.prompt.source == "Category (billing|bug|other) for: {{ inputs.ticket }}"
    assert classify.prompt.render(SCOPE) == "Category (billing|bug|other) for: printer is a bug"

    (case,) = facts.cases
    assert case.when.render({**SCOPE, "steps": {"classify": {"output": "bug"}}}) is True
    assert case.when.render({**SCOPE, "steps": {"classify": {"output": "billing"}}}) is False
    (search,) = case.steps
    assert (search.id, search.type, search.path, search.tool) == ("search", "tool", "steps[1].cases[0].steps[0]",
                                                                 "docs__search")
    assert (search.on_error, search.default) == ("continue", [])
    assert render_tree(search.arguments, SCOPE) == {"q": "printer is a bug"}
    (nofacts,) = facts.default_steps
    assert (nofacts.id, nofacts.path, nofacts.value) == ("nofacts", "steps[1].default[0]", [])

    assert notes.parallel == 3 and notes.items.render({**SCOPE, "steps": {"search": {"output": None}}}) == []
    assert (notes.step.id, notes.step.type, notes.step.path) == ("notes", "llm", "steps[2].step")
    assert notes.step.prompt.render({**SCOPE, "item": "a fact"}) == "One line: a fact"

    assert draft.tools == ("docs__search",) and draft.max_tool_rounds == 3 and draft.prompt is None
    (message,) = draft.messages
    assert message["role"] == "user"
    assert message["content"].render({**SCOPE, "steps": {"notes": {"output": ["x", "y"]}}}) == "printer is a bug x; y"

    outputs = render_tree(wf.output, {**SCOPE, "steps": {"classify": {"output": "bug"}, "draft": {"output": "Hi"}}})
    assert outputs == {"category": "bug", "reply": "Hi"}


def test_no_section_and_no_default_dir_means_no_workflows(tmp_path):
    settings = load_settings({"ENV_FILE": "", "CONFIG_FILE": ""})["WORKFLOWS"]
    assert settings.workflows == {} and settings.dirs == (str(tmp_path / "workflows"),)


def test_dirs_are_relative_to_the_config_file_and_every_yaml_is_read(tmp_path):
    (tmp_path / "conf" / "flows").mkdir(parents=True)
    (tmp_path / "conf" / "flows" / "b.yaml").write_text(yaml.safe_dump(changed(name="b")))
    (tmp_path / "conf" / "flows" / "a.yaml").write_text(yaml.safe_dump(changed(name="a")))
    (tmp_path / "conf" / "flows" / "notes.txt").write_text("not a workflow")
    config = tmp_path / "conf" / "llamagate.yaml"
    config.write_text("workflows:\n  dirs: [flows]\n  max_runs_kept: 50\n")
    settings = load_settings({"ENV_FILE": "", "CONFIG_FILE": str(config)})["WORKFLOWS"]
    assert list(settings.workflows) == ["a", "b"] and settings.max_runs_kept == 50
    assert settings.dirs == (str(tmp_path / "conf" / "flows"),)


def test_a_named_dir_that_does_not_exist_is_an_error(tmp_path):
    err = fails(tmp_path, {}, {"dirs": ["workflows", "nowhere"]})
    assert err.param == "workflows.dirs[1]" and "does not exist" in str(err) and str(tmp_path / "llamagate.yaml") in str(err)


def test_a_bad_section_value_names_its_key(tmp_path):
    err = fails(tmp_path, {}, {"max_runs_kept": 0})
    assert err.param == "workflows.max_runs_kept" and "got 0" in str(err)
    assert fails(tmp_path, {}, {"keep": 1}).param == "workflows.keep"


def test_earlier_steps_nested_in_branches_and_the_loop_s_own_steps_may_be_referenced(tmp_path):
    data = changed(
        {"id": "pick", "type": "branch", "cases": [{"when": "true", "steps": [{"id": "inner", "type": "transform", "value": 1}]}]},
        {"id": "again", "type": "loop", "max_iterations": 3, "until": "steps.check.output and iteration > 0",
         "steps": [{"id": "check", "type": "transform", "value": "{{ steps.inner.output }}"}]},
        {"id": "last", "type": "transform", "value": "{{ steps.check.output }}", "when": "{{ steps.again.output }}"})
    wf = load(tmp_path, {"w.yaml": data})["WORKFLOWS"].workflows["w"]
    assert wf.steps[1].max_iterations == 3 and wf.steps[1].steps[0].path == "steps[1].steps[0]"
    assert referenced_steps(wf.steps[1].until) == {"check"}


# -- one line per bad file ----------------------------------------------------------------------------------------

TRANSFORM = {"id": "b", "type": "transform", "value": 2}
BAD_FILES = [
    ("type-http", changed(BASE["steps"][0], TRANSFORM, {"id": "c", "type": "http", "url": "x"}), "steps[2].type",
     "must be one of llm, tool, transform, branch, foreach, loop, workflow; got 'http'"),
    ("unknown-step-key", changed({"id": "a", "type": "transform", "value": 1, "valu": 2}), "steps[0].valu", "unknown key"),
    ("unknown-top-key", changed(version=3), "version", "unknown key"),
    ("duplicate-id", changed(BASE["steps"][0], {"id": "a", "type": "transform", "value": 2}), "steps[1].id",
     "duplicate step id (also steps[0])"),
    ("later-step", changed({"id": "a", "type": "transform", "value": "{{ steps.b.output }}"}, TRANSFORM),
     "steps[0].value", "refers to steps.b, which is not an earlier step"),
    ("unknown-step", changed({"id": "a", "type": "transform", "value": "x {{ steps.nope.output }}"}),
     "steps[0].value", "refers to steps.nope, which is not a step of this workflow"),
    ("itself", changed({"id": "a", "type": "transform", "value": 1, "when": "steps.a.output"}), "steps[0].when",
     "not an earlier step (it is this step)"),
    ("dunder", changed({"id": "a", "type": "transform", "value": "{{ inputs.__class__ }}"}), "steps[0].value",
     "'__class__' is not allowed"),
    ("attr-filter", changed({"id": "a", "type": "transform", "value": "{{ inputs | attr('x') }}"}), "steps[0].value",
     "the attr filter is not allowed"),
    ("include", changed({"id": "a", "type": "llm", "prompt": "{% include 'x.txt' %}"}), "steps[0].prompt",
     "{% include %} is not allowed"),
    ("import", changed({"id": "a", "type": "llm", "messages": [{"role": "user", "content": "{% import 'm' as m %}"}]}),
     "steps[0].messages[0].content", "{% import %} is not allowed"),
    ("syntax", changed({"id": "a", "type": "transform", "value": {"x": ["{{ inputs.x "]}}), "steps[0].value.x[0]",
     "template syntax error"),
    ("expression-syntax", changed({"id": "a", "type": "transform", "value": 1, "when": "inputs.x =="}), "steps[0].when",
     "template syntax error"),
    ("unknown-name", changed({"id": "a", "type": "transform", "value": "{{ item }}"}), "steps[0].value",
     "unknown name 'item'"),
    ("bad-json-schema", changed(inputs={"type": "object", "properties": {"t": {"type": "strin"}}}),
     "inputs.properties.t.type", "is not a valid JSON Schema"),
    ("inputs-not-object", changed(inputs={"type": "string"}), "inputs", "type: object"),
    ("tool-not-allowed", changed({"id": "a", "type": "tool", "tool": "crm__find"}), "steps[0].tool",
     "'crm__find' is not allowed by the workflow's tools (docs__*)"),
    ("tool-glob-not-allowed", changed({"id": "a", "type": "llm", "prompt": "hi", "tools": ["docs__search", "*"]}),
     "steps[0].tools[1]", "'*' is not allowed"),
    ("loop-without-max", changed({"id": "a", "type": "loop", "steps": [TRANSFORM]}), "steps[0].max_iterations",
     "is required"),
    ("parallel-above-max", changed({"id": "a", "type": "foreach", "items": "[1, 2]", "parallel": 5,
                                    "step": {"type": "transform", "value": "{{ item }}"}}, limits={"max_parallel": 4}),
     "steps[0].parallel", "must be at most limits.max_parallel (4); got 5"),
    ("foreach-step-id", changed({"id": "a", "type": "foreach", "items": "[1]", "step": TRANSFORM}), "steps[0].step.id",
     "must be left out"),
    ("nested-bad-type", changed({"id": "a", "type": "branch", "cases": [{"when": "true", "steps": [{"id": "s", "type": "shell"}]}]}),
     "steps[0].cases[0].steps[0].type", "got 'shell'"),
    ("ceiling", changed(limits={"max_steps": 5000}), "limits.max_steps", "the gateway's ceiling"),
    ("runtime-ceiling", changed(limits={"max_runtime": "2h"}), "limits.max_runtime", "at most 1h"),
    ("no-model", changed({"id": "a", "type": "llm", "prompt": "hi"}, defaults={}), "steps[0].model",
     "is required when defaults.model is not set"),
    ("prompt-and-messages", changed({"id": "a", "type": "llm", "prompt": "hi", "messages": [{"role": "user", "content": "x"}]}),
     "steps[0].messages", "either prompt or messages"),
    ("bad-id", changed({"id": "A-1", "type": "transform", "value": 1}), "steps[0].id", "lower-case letters"),
    ("bad-name", changed(name="Triage"), "name", "lower-case letters"),
    ("chat-answer", changed(chat={"input": "q", "answer": "nope"}, inputs={"type": "object", "properties": {"q": {}}}),
     "chat.answer", "must be the id of a step"),
    ("no-steps", changed(steps=[]), "steps", "non-empty list of steps"),
]


@pytest.mark.parametrize(("data", "param", "problem"), [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES])
def test_a_bad_file_is_one_line_naming_file_key_path_and_problem(tmp_path, data, param, problem):
    err = fails(tmp_path, {"w.yaml": data})
    assert str(err).startswith(f"{tmp_path / 'workflows' / 'w.yaml'}: {param}: "), str(err)
    assert problem in str(err) and err.param == param


def test_a_yaml_error_names_file_and_line(tmp_path):
    err = fails(tmp_path, {"w.yaml": "name: w\nsteps: [\n"})
    assert str(err).startswith(f"{tmp_path / 'workflows' / 'w.yaml'} line ")


def call(name: str, callee: str, **top) -> dict:
    return changed({"id": "sub", "type": "workflow", "workflow": callee}, name=name, **top)


@pytest.mark.parametrize(("files", "culprit", "param", "problem"), [
    ({"a.yaml": call("a", "nope")}, "a.yaml", "steps[0].workflow", "unknown workflow 'nope' (loaded: a)"),
    ({"a.yaml": call("a", "b"), "b.yaml": call("b", "a")}, "a.yaml", "steps[0].workflow", "calls itself: a → b → a"),
    ({"a.yaml": call("a", "a")}, "a.yaml", "steps[0].workflow", "calls itself: a → a"),
    ({"a.yaml": call("a", "b"), "b.yaml": call("b", "c"), "c.yaml": call("c", "d"), "d.yaml": call("d", "e"),
      "e.yaml": changed(name="e")}, "a.yaml", "steps[0].workflow",
     "nests sub-workflows 4 deep (a → b → c → d → e); at most 3"),
    ({"a.yaml": call("a", "b"), "b.yaml": changed(name="b", inputs={"type": "object", "required": ["q"]})},
     "a.yaml", "steps[0].inputs", "lacks 'q', required by workflow 'b'"),
    ({"a.yaml": changed(name="same"), "b.yaml": changed(name="same")}, "b.yaml", "name",
     "workflow 'same' is also defined in"),
], ids=["unknown", "cycle", "self", "too-deep", "required-input", "duplicate-name"])
def test_sub_workflows_and_names_are_checked_across_files(tmp_path, files, culprit, param, problem):
    err = fails(tmp_path, files)
    assert str(err).startswith(f"{tmp_path / 'workflows' / culprit}: {param}: "), str(err)
    assert problem in str(err) and err.param == param


def test_three_levels_of_sub_workflows_load(tmp_path):
    files = {"a.yaml": call("a", "b"), "b.yaml": call("b", "c"), "c.yaml": call("c", "d"), "d.yaml": changed(name="d")}
    assert sorted(load(tmp_path, files)["WORKFLOWS"].workflows) == ["a", "b", "c", "d"]


# -- templates ----------------------------------------------------------------------------------------------------


def test_one_expression_gives_the_native_value_other_strings_give_text():
    assert compile_template("{{ inputs.n }}", "x").render({"inputs": {"n": 7}}) == 7
    assert compile_template("{{ inputs.d }}", "x").render({"inputs": {"d": {"a": [1]}}}) == {"a": [1]}
    assert compile_template("n={{ inputs.n }}", "x").render({"inputs": {"n": 7}}) == "n=7"
    assert compile_template("{% if inputs.n %}yes{% endif %}", "x").render({"inputs": {"n": 7}}) == "yes"
    assert compile_template("plain text", "x") == "plain text"
    assert render_tree({"a": [compile_template("{{ inputs.n + 1 }}", "x"), "b", 3]}, {"inputs": {"n": 1}}) == {"a": [2, "b", 3]}


def test_expressions_with_or_without_braces():
    for text in ("steps.a.output == 'bug'", "{{ steps.a.output == 'bug' }}"):
        assert compile_expression(text, "when").render({"steps": {"a": {"output": "bug"}}}) is True
    with pytest.raises(TemplateError, match="after the expression"):
        compile_expression("a b", "when")


def test_inputs_are_data_never_rendered_again():
    template = compile_template("Q: {{ inputs.q }}", "steps[0].prompt")
    assert template.render({"inputs": {"q": "{{ 7*7 }}"}}) == "Q: {{ 7*7 }}"
    assert compile_template("{{ inputs.q }}", "x").render({"inputs": {"q": "{% for x in range(9) %}"}}) == "{% for x in range(9) %}"


def test_filters_tojson_and_fromjson():
    assert compile_template("{{ inputs.s | fromjson }}", "x").render({"inputs": {"s": '{"a": 1}'}}) == {"a": 1}
    assert compile_template("{{ inputs.d | tojson }}", "x").render({"inputs": {"d": {"a": "é<"}}}) == '{"a": "é<"}'
    with pytest.raises(TemplateError, match="fromjson"):
        compile_template("{{ inputs.s | fromjson }}", "x").render({"inputs": {"s": "{"}})


def test_a_huge_range_fails_fast():
    started = time.monotonic()
    for text in ("{% for i in range(10**9) %}x{% endfor %}", "{{ range(10**9) | list }}", "{{ range(10**9) | length }}"):
        with pytest.raises(TemplateError, match="range"):
            compile_template(text, "steps[0].value").render({})
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("text", [
    "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}",
    "{{ 'x' * 2000000 }}",
    "{{ 2 ** 10000000 }}",
    "{{ 'x' | center(10**9) }}",
    "{{ 'x'.ljust(10**9) }}",
    "{{ '%999999999s' % 'x' }}",
    "{{ '{:>999999999}'.format('x') }}",
])
def test_rendering_is_bounded(text):
    started = time.monotonic()
    with pytest.raises(TemplateError):
        compile_template(text, "x").render({})
    assert time.monotonic() - started < 1


def test_output_above_one_mib_fails():
    template = compile_template("{% for i in range(600) %}{{ inputs.s }}{% endfor %}", "steps[0].prompt")
    assert len(template.render({"inputs": {"s": "x" * 1000}})) == 600_000
    with pytest.raises(TemplateError, match="longer than"):
        template.render({"inputs": {"s": "x" * 2000}})
    with pytest.raises(TemplateError, match="longer than"):
        compile_template("{{ inputs.s ~ inputs.s }}", "x").render({"inputs": {"s": "x" * 600_000}})


def test_undefined_names_fail_with_the_key_path():
    with pytest.raises(TemplateError) as caught:
        compile_template("Hi {{ inputs.nope }}", "steps[1].prompt").render({"inputs": {}})
    assert str(caught.value).startswith("steps[1].prompt: ") and "nope" in str(caught.value)
    for text in ("{{ inputs.nope }}", "{{ [inputs.nope] }}"):
        with pytest.raises(TemplateError):
            compile_template(text, "x").render({"inputs": {}})
    with pytest.raises(TemplateError):
        compile_expression("inputs.nope", "when").render({"inputs": {}})


def test_the_sandbox_refuses_what_load_time_checks_cannot_see():
    with pytest.raises(TemplateError, match="unsafe"):
        compile_template("{{ inputs.s | map(attribute=inputs.a) | list }}", "x").render(
            {"inputs": {"s": ["x"], "a": "__class__"}})
    with pytest.raises(TemplateError):
        compile_template("{{ inputs.d.clear() }}", "x").render({"inputs": {"d": {"a": 1}}})


@pytest.mark.parametrize(("text", "problem"), [
    ("{% extends 'base' %}", "{% extends %}"),
    ("{% from 'm' import x %}", "{% from %}"),
    ("{% macro m() %}{% endmacro %}", "{% macro %}"),
    ("{{ steps[inputs.name].output }}", "steps must be followed by a step id"),
    ("{{ x | nosuchfilter }}", "nosuchfilter"),
    ("{{ inputs['__class__'] }}", "'__class__' is not allowed"),
    ("{{ inputs | map(attribute='__class__') }}", "'__class__' is not allowed"),
])
def test_refused_templates(text, problem):
    with pytest.raises(TemplateError) as caught:
        compile_template(text, "steps[0].value")
    assert str(caught.value).startswith("steps[0].value: ") and problem in str(caught.value)


def test_referenced_steps():
    template = compile_template("{{ steps.a.output }} {{ steps['b'].status }} {{ inputs.c }}", "x")
    assert referenced_steps(template) == {"a", "b"} and referenced_steps("plain") == set()


def test_the_yaml_example_s_workflows_block_is_valid(tmp_path):
    text = (Path(__file__).resolve().parent.parent / "llamagate.example.yaml").read_text()
    block = text[text.index("# workflows:"):].split("\n\n")[0]
    section = yaml.safe_load(textwrap.dedent("\n".join(line[2:] for line in block.splitlines())))
    config = tmp_path / "llamagate.yaml"
    config.write_text(yaml.safe_dump(section))
    (tmp_path / "workflows").mkdir()
    assert load_settings({"ENV_FILE": "", "CONFIG_FILE": str(config)})["WORKFLOWS"].workflows == {}
