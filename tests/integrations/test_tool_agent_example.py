"""examples/tool_agent.py runs as a user would run it, both ways, its model pinned by a script file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tool_agent.py"
LOOK_UP = {"tool_calls": [{"name": "find_symbol", "arguments": {"name": "tax_for_region"}}]}


def run_example(tmp_path: Path, *args: str, answer: object) -> subprocess.CompletedProcess[str]:
    answers = tmp_path / "explorer.json"
    answers.write_text(json.dumps([LOOK_UP, {"answer": answer}]))
    env = {**os.environ, "TURNOUT_ROLES__EXPLORER": f"scripted/{answers}", "PYTHONWARNINGS": "default"}
    return subprocess.run([sys.executable, str(EXAMPLE), *args, "Where is the tax for a region computed?"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def test_with_langchains_create_agent_it_calls_a_tool_then_answers_with_no_deprecation(tmp_path: Path) -> None:
    pytest.importorskip("langchain.agents")
    done = run_example(tmp_path, "--langgraph", answer="tax_for_region in src/stockroom/pricing.py")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("ai: [{'name': 'find_symbol'") and "src/stockroom/pricing.py" in lines[1]
    assert lines[-1] == "ai: tax_for_region in src/stockroom/pricing.py"
    assert "Deprecat" not in done.stderr, done.stderr


def test_with_a_turnout_agent_it_answers_with_a_location(tmp_path: Path) -> None:
    done = run_example(tmp_path, answer={"path": "src/stockroom/pricing.py", "symbol": "tax_for_region"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("path='src/stockroom/pricing.py' symbol='tax_for_region'  (")
    assert "1 tool calls" in done.stdout, done.stdout
