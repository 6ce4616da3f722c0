"""Fleet routing: a role served by several endpoints through litellm's Router, balanced,
with a failing server set aside and the role's fallbacks behind them all."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.privacy.fake_provider import FakeProvider
from turnout.cli import app
from turnout.config import Settings, load_settings, use_settings
from turnout.engines import complete, scripted, stream, tag
from turnout.engines.privacy._policy import check_policy
from turnout.errors import ConfigError, EgressRefused, MissingCredentials

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def boxes() -> Iterator[list[FakeProvider]]:
    """Three OpenAI-compatible servers on loopback, each answering with its own name."""
    servers = [FakeProvider(lambda request, name=name: f"from {name}").start() for name in "abc"]
    yield servers
    for server in servers:
        server.stop()


def _fleet(*endpoints: dict[str, Any], **role: Any) -> Settings:
    settings = load_settings(
        roles={"coder": {"model": "openai/smollm2", "endpoints": list(endpoints), **role}}, traces_dir="off"
    )
    use_settings(settings)
    return settings


def _down(request: dict[str, Any]) -> str:
    raise RuntimeError("this box is down")


async def test_calls_are_spread_over_every_endpoint(boxes: list[FakeProvider]) -> None:
    _fleet(*({"api_base": box.base_url} for box in boxes))
    answers = Counter([(await complete("coder", "hi")).text for _ in range(45)])
    assert set(answers) == {"from a", "from b", "from c"}, answers
    assert sum(answers.values()) == 45


async def test_weights_set_each_endpoints_share(boxes: list[FakeProvider]) -> None:
    a, b, _ = boxes
    _fleet({"api_base": a.base_url, "weight": 4}, {"api_base": b.base_url})
    answers = Counter([(await complete("coder", "hi")).text for _ in range(150)])
    assert answers["from a"] > 2 * answers["from b"] > 0, answers  # 4:1 expected; 2:1 is far outside chance


async def test_a_failing_endpoint_is_set_aside_and_no_call_fails(boxes: list[FakeProvider]) -> None:
    a, b, _ = boxes
    b.answer = _down
    _fleet({"api_base": b.base_url}, {"api_base": a.base_url})
    answers = [(await complete("coder", "hi")).text for _ in range(20)]
    assert answers == ["from a"] * 20
    assert len(b.bodies) <= 1  # tried at most once, then cooled down for [routing] cooldown_s
    b.errors.clear()


async def test_an_unreachable_endpoint_is_skipped(boxes: list[FakeProvider]) -> None:
    a = boxes[0]
    _fleet({"api_base": "http://127.0.0.1:9/v1"}, {"api_base": a.base_url})
    assert [(await complete("coder", "hi")).text for _ in range(10)] == ["from a"] * 10


async def test_when_every_endpoint_fails_the_roles_fallback_answers(boxes: list[FakeProvider]) -> None:
    a, b, _ = boxes
    a.answer = b.answer = _down
    with scripted.scripted("fleet-backup", ["from this machine"]):
        _fleet({"api_base": a.base_url}, {"api_base": b.base_url}, fallbacks=["scripted/fleet-backup"])
        result = await complete("coder", "hi")
    assert (result.text, result.model, result.locality) == ("from this machine", "scripted/fleet-backup", "local")
    assert len(a.bodies) == len(b.bodies) == 1  # each endpoint tried once before falling back
    a.errors.clear()
    b.errors.clear()


async def test_streams_are_balanced_too(boxes: list[FakeProvider]) -> None:
    _fleet(*({"api_base": box.base_url} for box in boxes[:2]))
    texts = set()
    for _ in range(20):
        answer = stream("coder", "hi")
        texts.add("".join([piece async for piece in answer]))
        assert answer.result.locality == "local"
    assert texts == {"from a", "from b"}


async def test_each_endpoint_sends_its_own_key_from_the_environment(
    boxes: list[FakeProvider], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, _ = boxes
    monkeypatch.setenv("BOX_A_KEY", "key-for-a")
    _fleet({"api_base": a.base_url, "api_key_env": "BOX_A_KEY"}, {"api_base": b.base_url})
    for _ in range(12):
        await complete("coder", "hi")
    assert set(a.authorizations) == {"Bearer key-for-a"}
    assert set(b.authorizations) == {"Bearer none"}  # a server without a key still gets a header


async def test_an_unset_key_variable_is_named_before_anything_is_sent(boxes: list[FakeProvider]) -> None:
    coder = {"model": "openai/smollm2", "endpoints": [{"api_base": boxes[0].base_url, "api_key_env": "NOT_EXPORTED_KEY"}]}
    use_settings(load_settings(roles={"coder": coder, "planner": "scripted/fleet-planner"}, traces_dir="off"))
    with pytest.raises(MissingCredentials, match=r"endpoint 1 .* takes its API key from NOT_EXPORTED_KEY, which is not set"):
        await complete("coder", "hi")
    assert boxes[0].bodies == []
    with scripted.scripted("fleet-planner", ["planned"]):  # the other roles are not held up by it
        assert (await complete("planner", "hi")).text == "planned"


async def test_one_remote_endpoint_makes_the_whole_fleet_remote_to_the_guard(boxes: list[FakeProvider]) -> None:
    settings = _fleet({"api_base": boxes[0].base_url}, {"api_base": "http://gpu-b.example:8000/v1"})
    use_settings(settings.with_policy("no-code"))
    with pytest.raises(EgressRefused, match="role coder → openai/smollm2 is remote"):
        await complete("coder", tag.code("def secret(): pass"))
    assert boxes[0].bodies == []
    with pytest.raises(ConfigError, match=r"role coder: its endpoint 2, openai/smollm2 at http://gpu-b.example:8000/v1, is remote"):
        check_policy(settings.with_policy("local-only"))


async def test_local_hosts_make_a_lan_fleet_local(boxes: list[FakeProvider]) -> None:
    settings = load_settings(
        roles={"coder": {"model": "openai/smollm2", "endpoints": [{"api_base": "http://gpu-a.lan:8000/v1"}]}},
        policy={"mode": "local-only", "local_hosts": ["gpu-a.lan"]},
    )
    check_policy(settings)  # no error: the LAN box counts as this team's own


@pytest.mark.parametrize(
    ("role", "message"),
    [
        ({"api_base": "http://a/v1", "endpoints": [{"api_base": "http://b/v1"}]}, "either api_base or endpoints"),
        ({"endpoints": [{"api_base": "gpu-a:8000"}]}, "is not a server URL"),
        ({"endpoints": [{"api_base": "http://a/v1", "api_key_env": "sk-live-123"}]}, "not an environment variable name"),
        ({"endpoints": [{"api_base": "http://a/v1", "model": "smollm2"}]}, "has no provider"),
        ({"endpoints": [{"api_base": "http://a/v1", "weight": 0}]}, "greater than or equal to 1"),
    ],
)
def test_malformed_endpoints_are_clear_config_errors(role: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(roles={"coder": {"model": "openai/smollm2", **role}})


def test_the_two_box_example_loads_and_turnout_engines_lists_each_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    example = ROOT / "examples" / "fleet" / "turnout.toml"
    settings = load_settings(example)
    assert [e.api_base for e in settings.roles.coder.endpoints] == ["http://gpu-a:8000/v1", "http://gpu-b:8000/v1"]
    monkeypatch.setenv("FLEET_KEY", "k")
    result = CliRunner().invoke(app, ["engines", "--config", str(example)], env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    assert "openai/llamacpp/smollm2 (2 endpoints)" in result.stdout
    assert "↳ endpoint 2" in result.stdout and "http://gpu-b:8000/v1" in result.stdout
