"""`turnout trace diff`: two recorded runs of a small routed graph, compared step by step."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any, Literal, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel
from typer.testing import CliRunner

from turnout.cli import app
from turnout.config import load_settings, use_settings
from turnout.engines import complete, scripted
from turnout.errors import ScriptExhausted
from turnout.telemetry import instrument
from turnout.telemetry._calls import calls_path, read_calls
from turnout.telemetry._diff import diff_runs, excerpt, outputs_line, recorded_calls
from turnout.telemetry._files import StoredTrace, TraceFileExporter, read_trace
from turnout.telemetry._manifest import run_context

runner = CliRunner()


class Route(BaseModel):
    route: Literal["code", "write"]


class State(TypedDict, total=False):
    task: str
    route: str
    draft: str
    verdict: str


async def route(state: State) -> dict[str, Any]:
    result = await complete("scripted/router", f"route {state['task']}", schema=Route)
    return {"route": result.output.route}


async def code(state: State) -> dict[str, Any]:
    return {"draft": (await complete("scripted/coder", f"code {state['task']}")).text}


async def write(state: State) -> dict[str, Any]:
    return {"draft": (await complete("scripted/writer", f"write {state['task']}")).text}


async def check(state: State) -> dict[str, Any]:
    return {"verdict": (await complete("scripted/checker", f"check {state['draft']}")).text}


async def fix(state: State) -> dict[str, Any]:
    return {"draft": (await complete("scripted/fixer", f"fix {state['draft']}")).text}


def build_graph() -> Any:
    """route → code | write → check → (fix when the checker says `again`) → end."""
    builder = StateGraph(State)
    for name, node in (("route", route), ("code", code), ("write", write), ("check", check), ("fix", fix)):
        builder.add_node(name, node)
    builder.add_edge(START, "route")
    builder.add_conditional_edges("route", lambda s: s["route"], ["code", "write"])
    builder.add_edge("code", "check")
    builder.add_edge("write", "check")
    builder.add_conditional_edges("check", lambda s: "fix" if s["verdict"] == "again" else END, ["fix", END])
    builder.add_edge("fix", END)
    return builder.compile(name="routed")


BASE = {
    "router": ['{"route": "code"}'],
    "coder": ["def tax(): return 0.2"],
    "writer": ["tax is twenty percent"],
    "checker": ["ok"],
    "fixer": ["def tax(): return 0.21"],
}


@pytest.fixture
def traces(tmp_path: Path) -> Path:
    """Trace files under tmp: the door writes each run's call recording beside them."""
    directory = tmp_path / "traces"
    use_settings(load_settings(traces_dir=str(directory)))
    return directory


def record_run(traces: Path, spans: Any, replay_of: str | None = None, **changes: list[str]) -> str:
    """Run the graph with BASE's scripts (some replaced) and store its trace and call recording;
    returns the run id."""
    scripts = {**BASE, **changes}
    context = {"replay_of": replay_of} if replay_of else {}
    with (
        run_context(**context),
        scripted.scripted("router", scripts["router"]),
        scripted.scripted("coder", scripts["coder"]),
        scripted.scripted("writer", scripts["writer"]),
        scripted.scripted("checker", scripts["checker"]),
        scripted.scripted("fixer", scripts["fixer"]),
    ):
        try:
            asyncio.run(instrument(build_graph()).ainvoke({"task": "tax"}))
        except ScriptExhausted:
            pass  # a run that fails is a run too: its trace and recording are kept
    finished = spans.get_finished_spans()
    spans.clear()
    TraceFileExporter(traces).export(finished)
    run_id = f"{finished[0].get_span_context().trace_id:032x}"
    assert calls_path(traces, run_id).is_file(), "the door records every model call beside the trace"
    return run_id


def load(traces: Path, run_id: str) -> StoredTrace:
    return read_trace(traces / f"{run_id}.jsonl")


def diff(traces: Path, run_a: str, run_b: str, *, recorded: bool = True) -> Any:
    a, b = load(traces, run_a), load(traces, run_b)
    if not recorded:
        return diff_runs(a, b, None, None)
    return diff_runs(a, b, recorded_calls(a), recorded_calls(b))


def test_identical_runs_have_no_divergence(traces: Path, spans: Any) -> None:
    result = diff(traces, record_run(traces, spans), record_run(traces, spans))
    assert result.identical and result.first_divergence is None
    assert [(r.a.node, r.kind, r.outputs) for r in result.rows if r.a] == [
        ("route", "same", "same"), ("code", "same", "same"), ("check", "same", "same")
    ]


def test_a_changed_model_output_is_the_first_divergence_with_both_outputs(traces: Path, spans: Any) -> None:
    original = record_run(traces, spans)
    changed = record_run(traces, spans, coder=["def tax(): return 0.19"])
    result = diff(traces, original, changed)
    assert result.first_divergence == 1
    row = result.rows[1]
    assert row.differences == ["outputs"] and row.describe() == "code: outputs differ"
    assert (row.a.outputs, row.b.outputs) == (["def tax(): return 0.2"], ["def tax(): return 0.19"])


def test_a_different_route_shows_the_router_json_then_the_other_node(traces: Path, spans: Any) -> None:
    result = diff(traces, record_run(traces, spans), record_run(traces, spans, router=['{"route": "write"}']))
    assert result.first_divergence == 0
    assert [excerpt(o) for o in result.rows[0].a.outputs + result.rows[0].b.outputs] == [
        '{"route":"code"}', '{"route":"write"}'
    ]
    assert result.rows[1].describe() == "A ran code, B ran write (models, outputs differ)"


def test_an_extra_step_is_an_inserted_row(traces: Path, spans: Any) -> None:
    result = diff(traces, record_run(traces, spans), record_run(traces, spans, checker=["again"]))
    assert [(r.kind, (r.a or r.b).node) for r in result.rows] == [
        ("same", "route"), ("same", "code"), ("changed", "check"), ("insert", "fix")
    ]
    assert result.first_divergence == 2 and result.rows[3].describe() == "fix only in B"
    assert outputs_line(result.rows[3]) == "only B: def tax(): return 0.21"


def test_a_failed_call_shows_as_its_error(traces: Path, spans: Any) -> None:
    result = diff(traces, record_run(traces, spans), record_run(traces, spans, checker=[]))
    assert result.first_divergence == 2
    assert result.rows[2].b.outputs == ["(failed: ScriptExhausted)"]
    assert outputs_line(result.rows[2]) == "differ: A ok\n        B (failed: ScriptExhausted)"


def test_a_call_outside_any_graph_is_a_step_of_its_own(traces: Path, spans: Any) -> None:
    with scripted.scripted("planner", ["yes", "no"]):
        for _ in range(2):
            asyncio.run(complete("scripted/planner", "ship it?"))
    TraceFileExporter(traces).export(spans.get_finished_spans())
    run_a, run_b = (read_trace(path) for path in traces.glob("*.jsonl"))  # one trace per call
    result = diff_runs(run_a, run_b, recorded_calls(run_a), recorded_calls(run_b))
    [row] = result.rows
    assert row.a.node == row.b.node == "(outside any node)"
    assert sorted(row.a.outputs + row.b.outputs) == ["no", "yes"]
    assert result.first_divergence == 0


def test_without_recordings_runs_are_still_diffed_from_spans(traces: Path, spans: Any) -> None:
    original, extra = record_run(traces, spans), record_run(traces, spans, checker=["again"])
    result = diff(traces, original, extra, recorded=False)
    assert not result.recorded_a and not result.recorded_b
    assert {r.outputs for r in result.rows if r.a and r.b} == {"not recorded"}
    assert result.rows[3].kind == "insert"  # the checker's answer is one word either way:
    assert result.first_divergence == 3  # only the extra step tells the runs apart


def test_recordings_are_joined_to_chat_spans_by_span_id(traces: Path, spans: Any) -> None:
    run_id = record_run(traces, spans)
    [step] = [r.a for r in diff(traces, run_id, run_id).rows if r.a and r.a.node == "route"]
    [call] = [c for c in read_calls(calls_path(traces, run_id)) if c.span_id == step.calls[0].span_id]
    assert step.calls[0].output == call.text and step.models == ["scripted/router"]


def _invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), env={"COLUMNS": "200"})


def test_cli_prints_the_table_and_the_first_divergence(traces: Path, spans: Any) -> None:
    original = record_run(traces, spans)
    changed = record_run(traces, spans, coder=["def tax(): return 0.19"])
    result = _invoke("trace", "diff", original[:8], changed[:8], "--dir", str(traces))
    assert result.exit_code == 0, result.output
    assert "first divergence at row 2: code: outputs differ" in result.stdout
    lines = result.stdout.splitlines()
    row = next(i for i, line in enumerate(lines) if "differ: A def tax(): return 0.2 " in line)
    assert "B def tax(): return 0.19" in lines[row + 1]


def test_cli_says_identical_runs_are_identical(traces: Path, spans: Any) -> None:
    run_a, run_b = record_run(traces, spans), record_run(traces, spans)
    shutil.rmtree(traces / "calls")
    result = _invoke("trace", "diff", run_a, run_b, "--dir", str(traces))
    assert result.exit_code == 0, result.output
    assert "outputs not compared: no readable call recording for run A and B" in result.stdout
    assert "runs are identical step for step" in result.stdout


def test_cli_names_the_run_a_replay_replays(traces: Path, spans: Any) -> None:
    original = record_run(traces, spans)
    replay = record_run(traces, spans, replay_of=original)
    result = _invoke("trace", "diff", original, replay, "--dir", str(traces))
    assert result.exit_code == 0, result.output
    assert f"B: run {replay[:12]} (replay of {original[:12]})" in result.stdout


def test_cli_diffs_a_corrupt_recording_from_spans_with_a_warning(traces: Path, spans: Any) -> None:
    run_a, run_b = record_run(traces, spans), record_run(traces, spans)
    path = calls_path(traces, run_b)
    path.write_text(path.read_text()[:-20])
    result = _invoke("trace", "diff", run_a, run_b, "--dir", str(traces))
    assert result.exit_code == 0, result.output
    assert "is corrupt" in result.stderr and "outputs are not compared" in result.stderr
    assert "no readable call recording for run B" in result.stdout


def test_cli_unknown_run_exits_2(traces: Path, spans: Any) -> None:
    run_id = record_run(traces, spans)
    result = _invoke("trace", "diff", run_id, "zzzz", "--dir", str(traces))
    assert result.exit_code == 2 and "no run 'zzzz'" in result.stderr


def test_fanned_out_branches_are_one_row_each(traces: Path, spans: Any) -> None:
    from tests.telemetry.test_cli_trace import record_demo_run

    record_demo_run(traces.parent, spans)
    record_demo_run(traces.parent, spans)
    run_a, run_b = (read_trace(path) for path in sorted(traces.glob("*.jsonl")))
    result = diff_runs(run_a, run_b, recorded_calls(run_a), recorded_calls(run_b))
    assert [r.a.node for r in result.rows if r.a] == ["plan", "research", "research", "research", "summarize"]
    assert result.identical
