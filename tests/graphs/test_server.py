"""The LangGraph Server factories (`turnout.graphs.server`), called as the server calls them,
on the scripted engine; `test_langgraph_server.py` runs them in a real `langgraph dev`."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import ValidationError

from tests.refactor_repo import make_repo, rename
from tests.scripted_team import Team, finish, plan
from turnout import telemetry
from turnout.config import get_settings
from turnout.errors import ConfigError, UserError
from turnout.graphs import Budget, server

TASK = "Where is the tax for a region computed?"
READING = SimpleNamespace(execution_runtime=None)  # what the server passes for state reads and schemas


@pytest.fixture(autouse=True)
def configured(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Calls to telemetry.configure(), recorded instead of run: a real call would add a trace-file
    exporter to the whole test session's provider."""
    calls: list[int] = []
    monkeypatch.setattr(telemetry, "configure", lambda **_: calls.append(1))
    server.clear_cache()
    yield calls
    server.clear_cache()


def _repo_config(team: Team) -> dict[str, Any]:
    return {"configurable": {"repo": str(team.repo)}}


def _answering(team: Team) -> None:
    team.use("planner", [plan(("retrieve", "find the tax code", [])), finish("in shop/pricing.py")])


async def test_the_factory_reads_the_file_TURNOUT_CONFIG_names(team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "elsewhere" / "server.toml"
    config.parent.mkdir()
    config.write_text("[hybrid]\nmax_steps = 7\n")
    monkeypatch.setenv("TURNOUT_CONFIG", str(config))
    _answering(team)
    graph = await server.hybrid(_repo_config(team))
    state = await graph.ainvoke({"task": TASK})
    assert get_settings().hybrid.max_steps == 7  # installed for the engines and tracing too
    assert (state["status"], state["budget"].max_steps) == ("finished", 7)


def test_without_TURNOUT_CONFIG_the_working_directory_turnout_toml_applies(tmp_path: Path) -> None:
    assert server.server_settings().hybrid.max_steps == 24
    (tmp_path / "turnout.toml").write_text("[hybrid]\nmax_steps = 5\n")
    assert server.server_settings().hybrid.max_steps == 5


async def test_a_TURNOUT_CONFIG_that_is_no_file_is_an_error_naming_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match=r"TURNOUT_CONFIG=.*missing\.toml is not a file") as raised:
        await server.hybrid({})
    assert isinstance(raised.value, ValueError)  # LangGraph Server shows a ValueError's message to its client


async def test_a_malformed_TURNOUT_CONFIG_names_the_key_and_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad.toml").write_text("[hybrid]\nmax_stepz = 3\n")
    monkeypatch.setenv("TURNOUT_CONFIG", str(tmp_path / "bad.toml"))
    with pytest.raises(ConfigError, match=r"hybrid\.max_stepz: unknown key.*TURNOUT_CONFIG="):
        await server.refactor({})


def test_the_repository_is_the_runs_then_TURNOUT_REPO_then_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given, from_env = tmp_path / "given", tmp_path / "from_env"
    given.mkdir()
    from_env.mkdir()
    monkeypatch.setenv("TURNOUT_REPO", str(from_env))
    assert server.repo_for({"configurable": {"repo": str(given)}}) == given
    assert server.repo_for({"configurable": {}}) == from_env
    monkeypatch.delenv("TURNOUT_REPO")
    assert server.repo_for(None) == tmp_path


def test_a_repository_that_is_no_directory_is_an_error_saying_where_it_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match=r"configurable repo '.*nowhere' is not a directory"):
        server.repo_for({"configurable": {"repo": str(tmp_path / "nowhere")}})
    monkeypatch.setenv("TURNOUT_REPO", str(tmp_path / "gone"))
    with pytest.raises(UserError, match=r"TURNOUT_REPO '.*gone' is not a directory"):
        server.repo_for({})


async def test_TURNOUT_REPO_ROOTS_keeps_clients_to_the_repositories_it_names(
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TURNOUT_REPO_ROOTS", f"{tmp_path / 'elsewhere'}{os.pathsep}{team.repo.parent}")
    assert server.repo_for({"configurable": {"repo": str(team.repo)}}) == team.repo.resolve()
    outside = str(Path("/").resolve())
    with pytest.raises(UserError, match=r"configurable repo '/' is outside the repositories this server works on"):
        server.repo_for({"configurable": {"repo": outside}})
    graph = await server.refactor({})
    with pytest.raises(ValueError, match="input repo '/' is outside"):  # what the server shows its client
        await graph.ainvoke({"request": "Rename a to b", "repo": outside})


async def test_a_run_searches_the_repository_its_config_names(team: Team) -> None:
    _answering(team)
    graph = await server.hybrid(_repo_config(team))
    state = await graph.ainvoke({"task": TASK})
    [result] = state["results"]
    assert result.evidence.snippets[0].path == "shop/pricing.py"


async def test_graphs_are_kept_per_repository_and_rebuilt_when_its_code_changes(team: Team, tmp_path: Path) -> None:
    first = await server.hybrid(_repo_config(team))
    assert await server.hybrid(_repo_config(team)) is first
    other = tmp_path / "other"
    other.mkdir()
    assert await server.hybrid({"configurable": {"repo": str(other)}}) is not first
    (team.repo / "shop" / "shipping.py").write_text("def shipping_cost(weight):\n    return weight * 2\n")
    changed = await server.hybrid(_repo_config(team))
    assert changed is not first
    assert await server.hybrid(_repo_config(team)) is changed


async def test_state_reads_and_schema_requests_get_the_same_graph_without_indexing(team: Team, tmp_path: Path) -> None:
    reading = await server.hybrid({}, READING)
    assert not (tmp_path / ".turnout" / "index").exists()  # the working directory was not indexed
    running = await server.hybrid(_repo_config(team))
    assert set(reading.nodes) == set(running.nodes)
    assert reading.get_graph().to_json() == running.get_graph().to_json()


async def test_graphs_compile_without_a_checkpointer_and_run_on_the_servers(team: Team) -> None:
    _answering(team)
    graph = await server.hybrid(_repo_config(team))
    assert graph.checkpointer is None
    saver = InMemorySaver()
    served = graph.copy(update={"checkpointer": saver})  # what the server does for every request
    await served.ainvoke({"task": TASK}, {"configurable": {"thread_id": "s1"}})
    snapshot = await served.aget_state({"configurable": {"thread_id": "s1"}})
    assert snapshot.values["status"] == "finished"
    assert snapshot.values["results"][0].evidence.snippets  # revived as turnout's own types


async def test_every_copy_the_server_makes_is_traced_like_a_cli_run(team: Team, spans: Any, configured: list[int]) -> None:
    _answering(team)
    graph = await server.hybrid(_repo_config(team))
    served = graph.copy(update={"checkpointer": InMemorySaver()})
    await served.ainvoke({"task": TASK}, {"configurable": {"thread_id": "traced"}})
    names = [s.name for s in spans.get_finished_spans()]
    assert "invoke_workflow hybrid" in names and "invoke_agent planner" in names
    [root] = [s for s in spans.get_finished_spans() if s.name == "invoke_workflow hybrid"]
    assert root.attributes["gen_ai.conversation.id"] == "traced"
    assert configured  # telemetry.configure() ran before the first graph was returned


async def test_copies_keep_the_allowlist_strict_msgpack_needs(team: Team) -> None:
    graph = await server.hybrid(_repo_config(team))
    graph._serde_allowlist = {("turnout.graphs._hybrid_state", "Budget")}
    copied = graph.copy(update={"checkpointer": InMemorySaver()}).copy()
    assert copied._serde_allowlist == {("turnout.graphs._hybrid_state", "Budget")}


async def test_json_input_is_validated_into_the_states_own_types(team: Team) -> None:
    _answering(team)
    graph = await server.hybrid(_repo_config(team))
    state = await graph.ainvoke({"task": TASK, "budget": {"max_steps": 3, "max_rounds": 1}})
    assert state["budget"] == Budget(max_steps=3, max_rounds=1)
    with pytest.raises(ValidationError, match="max_steps"):
        await graph.ainvoke({"task": TASK, "budget": {"max_steps": "many"}})


async def test_the_refactor_factory_writes_patches_a_client_can_find(team: Team, tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    team.use("planner", [rename()])
    team.use("verifier", [{"passed": True, "reasons": []}])
    graph = await server.refactor({})
    assert graph.checkpointer is None and graph is await server.refactor({})
    state = await graph.ainvoke({"request": "Rename load_inventory to read_inventory", "repo": str(repo)})
    assert state["status"] == "succeeded", state.get("reason")
    patch = Path(state["patch"])
    assert patch.is_absolute() and patch.is_relative_to(tmp_path / ".turnout" / "patches")


def test_langgraph_server_can_call_both_factories_with_config_and_runtime() -> None:
    factory_utils = pytest.importorskip(
        "langgraph_api._factory_utils", reason="langgraph-api is not installed (pip install 'turnout[langgraph-server]')"
    )
    for factory in (server.hybrid, server.refactor):
        hook = factory_utils._classify_factory(factory)
        assert hook("the config", "the runtime") == {"config": "the config", "runtime": "the runtime"}
