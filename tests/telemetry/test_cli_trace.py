"""`turnout trace ls | show | summary` over runs recorded by the real exporter."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.telemetry.graph_fixture import build_graph
from turnout.cli import app
from turnout.engines import scripted
from turnout.telemetry import instrument, trace_files
from turnout.telemetry._files import TraceFileExporter

runner = CliRunner()


def record_demo_run(tmp_path: Path, spans: Any, *, fail: bool = False) -> Path:
    """Run the fixture graph and write its spans with the trace-file exporter."""
    planner = [] if fail else ["alpha,beta,gamma"]
    with scripted.scripted("planner", planner), scripted.scripted(
        "worker", lambda m: "found it"
    ), scripted.scripted("summarizer", ["covered"]):
        graph = instrument(build_graph())
        try:
            asyncio.run(graph.ainvoke({"topic": "trains"}, {"configurable": {"thread_id": "cli"}}))
        except Exception:
            if not fail:
                raise
    traces = tmp_path / "traces"
    TraceFileExporter(traces).export(spans.get_finished_spans())
    spans.clear()
    return traces


def _invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), env={"COLUMNS": "250"})


def test_ls_lists_runs_with_steps_tokens_and_status(tmp_path: Path, spans: Any) -> None:
    traces = record_demo_run(tmp_path, spans)
    record_demo_run(tmp_path, spans, fail=True)
    result = _invoke("trace", "ls", "--dir", str(traces))
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if " demo " in line]
    assert len(rows) == 2
    ok = next(r for r in rows if " ok " in r)
    assert " 5 " in ok  # plan, 3 × research, summarize
    assert "28/0" in ok  # 3 + 3 × 6 + 7 tokens, all local
    assert any(" error " in r for r in rows)


def test_show_draws_the_tree_and_highlights_errors(tmp_path: Path, spans: Any) -> None:
    traces = record_demo_run(tmp_path, spans, fail=True)
    run_id = trace_files(traces)[0].stem
    result = _invoke("trace", "show", run_id[:6], "--dir", str(traces))
    assert result.exit_code == 0, result.output
    assert "invoke_workflow demo" in result.stdout
    assert "chat planner" in result.stdout
    assert "ScriptExhausted: script 'planner' is exhausted" in result.stdout


def test_summary_groups_calls_by_node_and_model(tmp_path: Path, spans: Any) -> None:
    traces = record_demo_run(tmp_path, spans)
    result = _invoke("trace", "summary", trace_files(traces)[0].stem[:8], "--dir", str(traces))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    research = next(line for line in lines if line.strip("│ ").startswith("research"))
    assert research.split("│")[2].strip() == "3"  # three calls, one per branch
    assert any("scripted/worker" in line for line in lines)
    assert "28 local, 0 remote (100% stayed on this machine)" in result.stdout


def test_an_unknown_run_lists_the_closest(tmp_path: Path, spans: Any) -> None:
    traces = record_demo_run(tmp_path, spans)
    result = _invoke("trace", "show", "zzzz", "--dir", str(traces))
    assert result.exit_code == 2
    assert "no run 'zzzz'" in result.stderr and trace_files(traces)[0].stem[:12] in result.stderr


def test_a_truncated_trace_is_read_up_to_the_last_complete_span(tmp_path: Path, spans: Any) -> None:
    traces = record_demo_run(tmp_path, spans)
    [path] = trace_files(traces)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])
    result = _invoke("trace", "show", path.stem, "--dir", str(traces))
    assert result.exit_code == 0, result.output
    assert f"line {len(lines)} is incomplete or corrupt; read the {len(lines) - 1} span(s)" in result.stderr


def test_trace_files_turned_off_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_TRACES_DIR", "off")
    result = _invoke("trace", "ls")
    assert result.exit_code == 2 and "trace files are turned off" in result.stderr


def test_summary_proves_what_was_sent_remotely(tmp_path: Path, spans: Any) -> None:
    from turnout.config import load_settings
    from turnout.engines import complete, tag

    settings = load_settings(
        roles={"planner": {"model": "scripted/cloud", "locality": "remote"}}, policy={"mode": "no-code"}
    )
    prompt = tag.compose("Task: {t}\nFiles: {f}", t=tag.request("Where is tax?"), f=tag.path("shop/pricing.py"))
    with scripted.scripted("cloud", ["pricing"]), scripted.scripted("local", ["ok"]):
        asyncio.run(complete("planner", prompt, settings=settings))
        asyncio.run(complete("scripted/local", tag.code("def f(): pass"), settings=settings))
    traces = tmp_path / "traces"
    TraceFileExporter(traces).export(spans.get_finished_spans())
    outputs = []
    for path in trace_files(traces):
        result = _invoke("trace", "summary", path.stem, "--dir", str(traces))
        assert result.exit_code == 0, result.output
        outputs.append(result.stdout)
    (remote,) = [out for out in outputs if "remote calls: 1" in out]
    (local,) = [out for out in outputs if "remote calls: 0" in out]
    assert "privacy policy: no-code" in remote
    assert "request" in remote and "path" in remote
    assert "source code sent remotely: 0 bytes" in remote and "source code sent remotely: 0 bytes" in local


def test_ls_shows_how_a_run_ended_when_its_graph_says(tmp_path: Path, spans: Any) -> None:
    """A run that raised nothing may still have failed: the last status a node returned is
    the run's status in the trace."""
    from typing_extensions import TypedDict

    from langgraph.graph import END, START, StateGraph

    class State(TypedDict, total=False):
        status: str

    builder = StateGraph(State)
    builder.add_node("start", lambda state: {"status": "running"})
    builder.add_node("verify", lambda state: {"status": "failed"})
    builder.add_edge(START, "start")
    builder.add_edge("start", "verify")
    builder.add_edge("verify", END)
    graph = instrument(builder.compile(), name="checked")
    assert asyncio.run(graph.ainvoke({}, {"configurable": {"thread_id": "t"}})) == {"status": "failed"}
    traces = tmp_path / "traces"
    TraceFileExporter(traces).export(spans.get_finished_spans())
    result = _invoke("trace", "ls", "--dir", str(traces))
    row = next(line for line in result.stdout.splitlines() if " checked " in line)
    assert " failed " in row and " ok " not in row
