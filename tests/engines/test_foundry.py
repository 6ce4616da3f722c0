"""Microsoft Foundry as the planner: litellm's real `azure_ai` provider, over TCP to a loopback
fake of a Foundry deployment's endpoint (`…/models/chat/completions`, a Bearer key), under the
egress guard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.privacy.fake_provider import FakeProvider
from turnout.config import load_settings, use_settings
from turnout.engines import check_model, complete, engine_table, tag
from turnout.errors import MissingCredentials

CANARY = "zq7-canary-in-source-for-foundry"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mellum_team.toml"


@pytest.fixture
def foundry(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    provider = FakeProvider(lambda request: "Plan: read pricing.py, then answer.", chat_path="/models/chat/completions")
    provider.start()
    monkeypatch.setenv("AZURE_AI_API_KEY", "foundry-test-key")
    try:
        yield provider
    finally:
        provider.stop()


def planner_on(foundry: FakeProvider, **settings: object) -> None:
    use_settings(load_settings(roles={"planner": {"model": "azure_ai/mai-thinking-1", "api_base": foundry.base_url,
                                                  "locality": "remote"}}, remote_retries=0, **settings))


async def test_the_planner_calls_a_foundry_deployment_through_litellm(foundry: FakeProvider) -> None:
    planner_on(foundry)
    answer = await complete("planner", tag.request("Plan how to find the tax code."))
    assert answer.text == "Plan: read pricing.py, then answer."
    assert (answer.model, answer.locality) == ("azure_ai/mai-thinking-1", "remote")
    (request,) = foundry.requests
    assert request["model"] == "mai-thinking-1" and foundry.authorizations == ["Bearer foundry-test-key"]


async def test_under_no_code_source_never_reaches_foundry(foundry: FakeProvider) -> None:
    planner_on(foundry, policy={"mode": "no-code", "on_forbidden": "outline"})
    code = f"def tax(amount):\n    note = '{CANARY}'\n    return amount * 0.2\n"
    prompt = tag.compose("Where is tax computed?\n{code}", code=tag.code(code, origin="shop/tax.py:1-3"))
    answer = await complete("planner", prompt)
    assert answer.egress is not None and answer.egress.decision == "rewritten"
    assert not foundry.received(CANARY) and foundry.received("def tax(amount)")  # the outline went, the body not


def test_a_foundry_planner_without_its_key_says_which_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_AI_API_KEY", raising=False)
    with pytest.raises(MissingCredentials, match="azure_ai/mai-thinking-1 needs AZURE_AI_API_KEY"):
        check_model("azure_ai/mai-thinking-1", "https://my-resource.services.ai.azure.com/models")


def test_the_example_team_is_a_foundry_planner_over_local_mellum2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_AI_API_KEY", "k")
    rows = {(r.kind, r.role): r for r in engine_table(load_settings(EXAMPLE))}
    planner = rows["role", "planner"]
    assert (planner.model, planner.locality, planner.policy, planner.unavailable) == (
        "azure_ai/mai-thinking-1", "remote", "no-code (outline)", None)
    for role in ("router", "retriever", "coder", "verifier"):
        assert (rows["role", role].model, rows["role", role].locality) == ("llamacpp/mellum2", "local")
