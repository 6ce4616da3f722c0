"""Role resolution, locality, fallbacks and the clear errors of the one door."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnout.config import load_settings, use_settings
from turnout.engines import complete, complete_sync, locality_of, resolve, scripted
from turnout.engines.privacy._locality import effective_api_base
from turnout.errors import MissingCredentials, ModelNotFound, UnknownProvider, UnknownRole


def test_a_role_resolves_through_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_ROLES__ROUTER", "scripted/router")
    target = resolve("router", load_settings())
    assert (target.role, target.model) == ("router", "scripted/router")


def test_a_model_string_passes_through() -> None:
    target = resolve("anthropic/claude-sonnet-4-5", load_settings())
    assert (target.role, target.model) == (None, "anthropic/claude-sonnet-4-5")


def test_an_unknown_role_lists_the_roles() -> None:
    with pytest.raises(UnknownRole, match="unknown role 'plannr': roles are planner, router"):
        resolve("plannr")


async def test_calls_by_role_use_the_configured_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_ROLES__CODER", "scripted/coder")
    use_settings(load_settings())
    with scripted.scripted("coder", ["def f(): pass"]):
        result = await complete("coder", "write f")
    assert (result.role, result.requested, result.model, result.text) == (
        "coder", "coder", "scripted/coder", "def f(): pass"
    )


async def test_a_failing_role_falls_back_through_the_router(tmp_path: Path) -> None:
    (tmp_path / "turnout.toml").write_text(
        '[roles.planner]\nmodel = "scripted/broken"\nfallbacks = ["scripted/backup"]\n'
    )
    use_settings(load_settings())
    with scripted.scripted("broken", []) as broken, scripted.scripted("backup", ["from backup"]):
        result = await complete("planner", "plan")
    assert len(broken.calls) == 1
    assert (result.model, result.text, result.locality) == ("scripted/backup", "from backup", "local")


def test_complete_sync_runs_outside_and_inside_an_event_loop() -> None:
    import asyncio

    with scripted.scripted("sync", ["a", "b"]):
        assert complete_sync("scripted/sync", "x").text == "a"

        async def inside() -> str:
            return complete_sync("scripted/sync", "y").text

        assert asyncio.run(inside()) == "b"


@pytest.mark.parametrize(
    ("model", "api_base", "expected"),
    [
        ("llamacpp/smollm2", None, "local"),
        ("scripted/x", None, "local"),
        ("anthropic/claude-sonnet-4-5", None, "remote"),
        ("openai/gpt-5", None, "remote"),
        ("ollama/llama3", None, "local"),  # litellm's default base is localhost:11434
        ("hosted_vllm/qwen", "http://127.0.0.1:8000/v1", "local"),
        ("hosted_vllm/qwen", "http://[::1]:8000/v1", "local"),
        ("hosted_vllm/qwen", "http://10.0.0.5:8000/v1", "remote"),
        ("openai/gpt-5", "https://api.example.com/v1", "remote"),
    ],
)
def test_locality(model: str, api_base: str | None, expected: str) -> None:
    assert locality_of(model, effective_api_base(model, api_base)) == expected


async def test_an_unknown_provider_is_named() -> None:
    with pytest.raises(UnknownProvider, match="unknown provider 'nosuch'"):
        await complete("nosuch/model", "hi")


async def test_a_remote_model_without_its_key_names_the_variable() -> None:
    with pytest.raises(MissingCredentials, match="needs ANTHROPIC_API_KEY in the environment"):
        await complete("anthropic/claude-sonnet-4-5", "hi")


async def test_a_loopback_server_needs_no_key() -> None:
    from turnout.engines import check_model

    check_model("openai/served-locally", "http://127.0.0.1:9/v1")


async def test_a_missing_gguf_names_the_path_and_the_aliases(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ModelNotFound, match=f"GGUF file {missing} does not exist.*alias.*smollm2"):
        await complete(f"llamacpp/{missing}", "hi")


def test_tests_cannot_reach_the_network() -> None:
    import socket

    with pytest.raises(RuntimeError, match="tests are offline"):
        socket.create_connection(("203.0.113.1", 443), timeout=1)


async def test_a_usage_meter_counts_calls_in_its_block_across_tasks() -> None:
    import asyncio

    from turnout.engines import usage_meter

    with scripted.scripted("m", lambda messages: "two words"):
        await complete("scripted/m", "outside the meter")
        with usage_meter() as outer:
            with usage_meter() as inner:
                await asyncio.gather(complete("scripted/m", "one"), complete("scripted/m", "three more words"))
            await complete("scripted/m", "last")
    assert (inner.totals.calls, inner.totals.local_tokens) == (2, 1 + 2 + 3 + 2)
    assert (outer.totals.calls, outer.totals.local_tokens, outer.totals.remote_tokens) == (3, 8 + 1 + 2, 0)
