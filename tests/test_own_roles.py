"""Roles of your own: `[roles] triage = …` with fallbacks and a policy like the built-ins; a role
used in code but not configured calls the default model, said once; a near-miss of a known
role is refused with the closest name, in config and in code."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.privacy.fake_provider import FakeProvider, cloud_role, fake_provider_fixture  # noqa: F401
from turnout.agents import Agent
from turnout.config import load_settings, use_settings
from turnout.engines import complete, engine_table, scripted
from turnout.errors import ConfigError, EgressRefused, UnknownRole


async def test_a_role_of_your_own_calls_its_model_and_falls_back_like_a_built_in() -> None:
    def broken(messages: list[dict[str, Any]]) -> str:
        raise RuntimeError("the triage model is down")

    use_settings(load_settings(roles={"triage": {"model": "scripted/triage-main", "fallbacks": ["scripted/triage-spare"]}},
                               local_retries=0))
    with scripted.scripted("triage-main", broken), scripted.scripted("triage-spare", ["billing"]):
        result = await complete("triage", "My invoice is wrong")
    assert (result.text, result.role, result.model) == ("billing", "triage", "scripted/triage-spare")
    assert [r.role for r in engine_table()][-2:] == ["triage", "triage"]  # the role and its fallback


async def test_a_role_of_your_own_has_its_own_policy(fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud_role(fake_provider, monkeypatch, "triage", policy={"mode": "open", "roles": {"triage": "no-code"}})
    with pytest.raises(EgressRefused, match="role triage"):
        await complete("triage", "def secret(): return 42")  # untagged text is source under no-code
    assert fake_provider.requests == []


async def test_a_role_nobody_configured_calls_the_default_model_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings()
    with caplog.at_level(logging.WARNING, logger="turnout"):
        from turnout.engines import resolve

        first = resolve("summarizer", settings)
        resolve("summarizer", settings)
    assert (first.role, first.model) == ("summarizer", "llamacpp/smollm2")
    notices = [r.getMessage() for r in caplog.records if "summarizer" in r.getMessage()]
    assert notices == ["role 'summarizer' is not in [roles]: it calls the default model llamacpp/smollm2; give it "
                       "a model with [roles] summarizer = \"provider/name\""]


async def test_an_agent_runs_on_the_role_named_after_it() -> None:
    use_settings(load_settings(roles={"triage": "scripted/triage-agent"}))
    with scripted.scripted("triage-agent", ["billing"]):
        result = await Agent("triage", instructions="Say which team.").run("My invoice is wrong")
    assert result.text == "billing"


@pytest.mark.parametrize(("roles", "says"), [
    ({"planer": "llamacpp/smollm2"}, "unknown role 'planer': roles are planner, router, retriever, coder, verifier; "
                                     "did you mean 'planner'?"),
    ({"Triage!": "llamacpp/smollm2"}, "unknown role 'Triage!'"),
])
def test_a_misspelt_or_malformed_role_in_config_is_refused(roles: dict[str, str], says: str) -> None:
    with pytest.raises(ConfigError, match=says.replace("?", "\\?")):
        load_settings(roles=roles)


async def test_a_misspelt_role_in_code_is_refused_before_any_call() -> None:
    use_settings(load_settings(roles={"triage": "scripted/never"}))
    with pytest.raises(UnknownRole, match="unknown role 'traige': roles are .*triage; did you mean 'triage'\\?"):
        await complete("traige", "hi")
