"""Every turnout tool call is an `execute_tool {name}` span: its name, its duration, and a
failure marked as one (the README's promise for tools, as for model calls)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.refactor_repo import make_repo
from turnout.errors import UserError
from turnout.telemetry import _conventions as sc
from turnout.tools import CodeIndex, Workspace, rename_symbol, run_tests


def _tools(spans: Any) -> list[Any]:
    return [s for s in spans.get_finished_spans() if s.attributes.get(sc.GEN_AI_OPERATION_NAME) == sc.EXECUTE_TOOL]


async def test_index_codemod_tests_and_workspace_calls_each_leave_a_tool_span(tmp_path: Path, spans: Any) -> None:
    repo = make_repo(tmp_path)
    index = CodeIndex.build(repo)
    index.search("load inventory")
    index.definitions("load_inventory")
    workspace = Workspace.create(repo, "t-1", base_dir=tmp_path / "work")
    rename_symbol(workspace.path, "load_inventory", "read_inventory")
    await run_tests(workspace.path)
    workspace.remove()
    names = [s.attributes[sc.GEN_AI_TOOL_NAME] for s in _tools(spans)]
    assert names == ["index_code", "search_code", "find_definitions", "workspace_create", "rename_symbol",
                     "run_tests", "workspace_remove"]
    for span in _tools(spans):
        assert span.name == f"execute_tool {span.attributes[sc.GEN_AI_TOOL_NAME]}"
        assert span.end_time > span.start_time and span.status.status_code.name == "UNSET"


def test_a_tool_call_that_fails_is_marked_on_its_span(tmp_path: Path, spans: Any) -> None:
    index = CodeIndex.build(make_repo(tmp_path))
    with pytest.raises(UserError):
        index.search("anything", k=0)
    (span,) = [s for s in _tools(spans) if s.attributes[sc.GEN_AI_TOOL_NAME] == "search_code"]
    assert span.status.status_code.name == "ERROR" and span.attributes["error.type"] == "UserError"
