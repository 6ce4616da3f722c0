"""The privacy policy, proven at the socket: what actually reaches a "cloud" model.

The planner role points at a fake OpenAI-compatible server on loopback, declared remote, and
litellm's real `openai` provider talks to it over TCP; every other role is scripted. A canary
string lives inside a function body of the repository the graph works on, so it is in the
source text the coder is shown but in no signature and no path. The tests read the raw
request bodies the server received, and a guard on `socket.connect` records every
connection the process makes: under `no-code` not one canary byte leaves, under
`local-only` not one connection is made.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from tests import refactor_repo
from tests.conftest import _is_loopback
from tests.privacy.fake_provider import FakeProvider, fake_provider_fixture, schema_name  # noqa: F401
from tests.refactor_repo import code, edit_plan, make_repo
from tests.scripted_team import REPO_FILES, Team, finish, plan, route
from turnout.config import ROLE_NAMES, Settings, load_settings, use_settings
from turnout.engines import complete, scripted, tag
from turnout.engines.tag import SOURCE_KINDS
from turnout.errors import ConfigError, EgressRefused
from turnout.graphs import build_hybrid_graph
from turnout.graphs.refactor import build_refactor_graph
from turnout.telemetry import _conventions as sc
from turnout.tools.workspace import tree_fingerprint

CANARY = "zq7-canary-4f1d9c2e-never-leaves-this-machine"
SIGNATURE = "def tax_for_region(amount: float, region: str) -> float"
PRICING_WITH_CANARY = (
    '"""Prices and taxes."""\n\n\n'
    f"{SIGNATURE}:\n"
    '    """Tax owed on a net amount in a region."""\n'
    f'    audit_note = "{CANARY}"\n'
    '    return amount * {"uk": 0.2}.get(region, 0.0)\n'
)
INVENTORY_WITH_CANARY = (
    "def load_inventory(path):\n"
    '    """Read stock counts from a text file."""\n'
    "    return dict(line.split('=') for line in open(path).read().split())\n\n\n"
    "def total(path):\n"
    f'    audit_note = "{CANARY}"\n'
    "    return sum(int(v) for v in load_inventory(path).values())\n"
)
TASK = "Make tax_for_region round to whole pennies"
CLOUD_MODEL = "openai/fake-cloud"


@dataclass
class Connections:
    """Every address the process tried to connect a socket to during the test."""

    targets: list[Any] = field(default_factory=list)
    escaped: list[Any] = field(default_factory=list)

    def tcp(self) -> set[tuple[str, int]]:
        return {(str(t[0]), int(t[1])) for t in self.targets if isinstance(t, tuple)}


@pytest.fixture(autouse=True)
def connections(_offline_and_isolated: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Connections]:
    """A second guard on top of conftest's: record each connection target, refuse and
    remember any that is not loopback (so a swallowed error still fails the test)."""
    seen = Connections()
    inner_connect = socket.socket.connect  # conftest's guard, installed before this fixture
    inner_connect_ex = socket.socket.connect_ex

    def check(address: Any) -> None:
        seen.targets.append(address)
        if not _is_loopback(address):
            seen.escaped.append(address)
            raise RuntimeError(f"privacy test: connection to {address!r} is not loopback")

    def connect(self: socket.socket, address: Any) -> Any:
        check(address)
        return inner_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> Any:
        check(address)
        return inner_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield seen
    assert not seen.escaped, f"connections left loopback: {seen.escaped}"


@pytest.fixture(autouse=True)
def _dummy_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-key-for-loopback")


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    """The scripted local roles (`scripted/t-<role>`) and the hybrid team's repository, with
    the canary planted in `tax_for_region`'s body. The router sends every step remote."""
    repo = tmp_path / "repo"
    for name, text in {**REPO_FILES, "shop/pricing.py": PRICING_WITH_CANARY}.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    local = Team(repo, {})
    local.use("router", route(tier="remote"))
    local.use("retriever", lambda messages: {"keywords": ["tax", "region"]})
    yield local
    for role in ROLE_NAMES:
        scripted.unregister(f"t-{role}")


def remote_planner(fake: FakeProvider) -> dict[str, Any]:
    return {"model": CLOUD_MODEL, "api_base": fake.base_url, "locality": "remote"}


def settings_for(
    fake: FakeProvider, mode: str, *, on_forbidden: str = "refuse", planner_remote: bool = True, **overrides: Any
) -> Settings:
    """Scripted roles, the planner on the fake cloud model, no retries (one request per call)."""
    roles: dict[str, Any] = {role: f"scripted/t-{role}" for role in ROLE_NAMES}
    if planner_remote:
        roles["planner"] = remote_planner(fake)
    settings = load_settings(
        roles=roles,
        remote_retries=0,
        policy={"mode": mode, "on_forbidden": on_forbidden},
        **overrides,
    )
    use_settings(settings)
    return settings


def by_schema(answers: dict[str, Any]) -> Callable[[dict[str, Any]], Any]:
    """The fake's answer: looked up by the output schema the request asks for."""
    return lambda request: answers[schema_name(request)]


def egress_attributes(spans: Any) -> list[dict[str, Any]]:
    """The attributes of every model-call span the egress guard reported on."""
    found = []
    for span in spans.get_finished_spans():
        attributes = dict(span.attributes or {})
        if sc.EGRESS_POLICY in attributes:
            found.append(attributes)
    return found


def source_bytes_on_spans(spans: Any) -> int:
    return sum(
        value
        for attributes in egress_attributes(spans)
        for kind in SOURCE_KINDS
        if isinstance(value := attributes.get(f"{sc.EGRESS_SENT_BYTES}.{kind}", 0), int)
    )


# -- the hybrid graph: the coder escalates to the remote planner with the code it was shown --

CLOUD_EDIT = {
    "edits": [
        {
            "path": "shop/pricing.py",
            "symbol": "tax_for_region",
            "code": f"{SIGNATURE}:\n    return round(amount * 0.2, 2)\n",
        }
    ],
    "explanation": "rounded to pennies",
}


def cloud_planner() -> Callable[[dict[str, Any]], Any]:
    return by_schema(
        {
            "Plan": plan(("code", "round tax_for_region to whole pennies", [])),
            "CodeResult": CLOUD_EDIT,
            "Decision": finish("tax_for_region now rounds"),
        }
    )


async def run_hybrid(team: Team, fake: FakeProvider, mode: str, on_forbidden: str = "refuse") -> dict[str, Any]:
    settings = settings_for(fake, mode, on_forbidden=on_forbidden, hybrid={"escalate_to": "planner"})
    fake.answer = cloud_planner()
    graph = build_hybrid_graph(repo=team.repo, settings=settings, checkpointer=InMemorySaver())
    state = await graph.ainvoke({"task": TASK}, {"configurable": {"thread_id": "privacy"}})
    assert state["status"] == "finished", state.get("reason")
    return state


async def test_under_no_code_the_remote_planner_plans_but_never_receives_source(
    team: Team, fake_provider: FakeProvider, connections: Connections, spans: Any
) -> None:
    local_coder = team.use("coder", [CLOUD_EDIT])
    state = await run_hybrid(team, fake_provider, "no-code")
    assert fake_provider.schema_names() == ["Plan", "Decision"]  # it planned and decided remotely
    assert not fake_provider.received(CANARY)
    [result] = state["results"]
    # The escalation was refused, never sent, and the step was rerouted to the local coder.
    assert (result.agent, result.tier, result.status) == ("coder", "local", "ok")
    assert "refused by privacy policy no-code" in (result.escalation_reason or "")
    assert CANARY in str(local_coder.calls)
    assert state["usage"].source_bytes_sent == 0
    assert state["usage"].refused_calls == 1
    assert source_bytes_on_spans(spans) == 0
    [refused] = [a for a in egress_attributes(spans) if a[sc.EGRESS_DECISION] == "refused"]
    assert refused[f"{sc.EGRESS_PARTS}.code"] >= 1  # the canary's function was offered, not sent
    assert "shop/pricing.py" in refused[sc.EGRESS_REFUSED_PART]
    assert connections.tcp() == {fake_provider.address}


async def test_under_open_the_canary_reaches_the_remote_planner(
    team: Team, fake_provider: FakeProvider, connections: Connections, spans: Any
) -> None:
    """The control: the same run with no policy sends the source, so the test above can fail."""
    state = await run_hybrid(team, fake_provider, "open")
    assert fake_provider.schema_names() == ["Plan", "CodeResult", "Decision"]
    assert fake_provider.received(CANARY)
    [result] = state["results"]
    assert (result.status, result.tier) == ("ok", "remote")
    assert state["usage"].source_bytes_sent > len(CANARY)
    assert source_bytes_on_spans(spans) > len(CANARY)
    assert connections.tcp() == {fake_provider.address}


async def test_under_no_code_with_outline_the_remote_planner_sees_signatures_not_bodies(
    team: Team, fake_provider: FakeProvider, connections: Connections, spans: Any
) -> None:
    state = await run_hybrid(team, fake_provider, "no-code", on_forbidden="outline")
    assert fake_provider.schema_names() == ["Plan", "CodeResult", "Decision"]
    assert not fake_provider.received(CANARY)
    [coder_request] = [body for body in fake_provider.bodies if b'"CodeResult"' in body]
    assert SIGNATURE.encode() in coder_request
    assert state["usage"].source_bytes_sent == 0
    assert source_bytes_on_spans(spans) == 0
    assert "rewritten" in [a[sc.EGRESS_DECISION] for a in egress_attributes(spans)]
    assert connections.tcp() == {fake_provider.address}


# -- the refactor graph: local attempts fail, the edit escalates to the remote planner --

def canary_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(refactor_repo.PACKAGE, "shop/inventory.py", INVENTORY_WITH_CANARY)
    return make_repo(tmp_path)


async def run_refactor(
    team: Team, fake: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> dict[str, Any]:
    repo = canary_repo(tmp_path, monkeypatch)
    before = tree_fingerprint(repo)
    settings = settings_for(fake, mode, hybrid={"escalate_to": "planner"})
    fake.answer = by_schema({"RefactorPlan": edit_plan("total"), "CodeResult": code("def total(path):\n    return -2\n")})
    team.use("coder", [code("def total(path):\n    return -1\n")])  # breaks the tests: escalate
    graph = build_refactor_graph(settings=settings, checkpointer=InMemorySaver(), work_dir=tmp_path / "work")
    state = await graph.ainvoke(
        {"request": "Tidy total", "repo": str(repo), "max_attempts": 1, "test_command": [sys.executable, "-m", "pytest", "-q"]},
        {"configurable": {"thread_id": "refactor"}},
    )
    assert tree_fingerprint(repo) == before
    return state


async def test_a_refactoring_under_no_code_sends_the_plan_request_but_no_source(
    team: Team, fake_provider: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, connections: Connections
) -> None:
    state = await run_refactor(team, fake_provider, tmp_path, monkeypatch, "no-code")
    assert fake_provider.schema_names() == ["RefactorPlan"]
    assert b"Tidy total" in fake_provider.bodies[0]
    assert not fake_provider.received(CANARY)
    local, remote = state["attempts"]
    assert (local.tier, remote.tier) == ("local", "remote")
    assert "egress refused" in (remote.problem or "")
    assert state["status"] == "failed"
    assert state["usage"].source_bytes_sent == 0
    assert connections.tcp() == {fake_provider.address}


async def test_a_refactoring_under_open_sends_the_source_to_the_remote_tier(
    team: Team, fake_provider: FakeProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control for the refactoring: without the policy the escalated edit carries the code."""
    state = await run_refactor(team, fake_provider, tmp_path, monkeypatch, "open")
    assert fake_provider.schema_names() == ["RefactorPlan", "CodeResult"]
    assert fake_provider.received(CANARY)
    assert [a.tier for a in state["attempts"]] == ["local", "remote"]
    assert state["usage"].source_bytes_sent > len(CANARY)


# -- local-only: no connection at all --

@pytest.mark.parametrize("graph", ["hybrid", "refactor"])
def test_under_local_only_a_graph_with_a_remote_planner_fails_to_build(
    graph: str, team: Team, fake_provider: FakeProvider, tmp_path: Path, connections: Connections
) -> None:
    settings = settings_for(fake_provider, "local-only")
    with pytest.raises(ConfigError, match="role planner") as refused:
        if graph == "hybrid":
            build_hybrid_graph(repo=team.repo, settings=settings)
        else:
            build_refactor_graph(settings=settings, work_dir=tmp_path / "work")
    assert CLOUD_MODEL in str(refused.value)
    assert fake_provider.connections == 0
    assert connections.tcp() == set()


async def test_under_local_only_a_run_on_local_roles_makes_no_connection(
    team: Team, fake_provider: FakeProvider, connections: Connections
) -> None:
    settings = settings_for(fake_provider, "local-only", planner_remote=False)
    team.use("router", route(tier="local"))
    team.use("planner", [plan(("retrieve", "find the tax code", [])), finish("in shop/pricing.py")])
    graph = build_hybrid_graph(repo=team.repo, settings=settings, checkpointer=InMemorySaver())
    state = await graph.ainvoke({"task": TASK}, {"configurable": {"thread_id": "local"}})
    assert state["status"] == "finished", state.get("reason")
    assert state["usage"].remote_calls == 0
    assert fake_provider.connections == 0
    assert connections.tcp() == set()


async def test_under_local_only_a_call_to_a_remote_role_is_refused_before_connecting(
    fake_provider: FakeProvider, connections: Connections
) -> None:
    settings = settings_for(fake_provider, "local-only")
    prompt = tag.compose("Review:\n{code}", code=tag.code(PRICING_WITH_CANARY, origin="shop/pricing.py"))
    with pytest.raises(EgressRefused) as refused:
        await complete("planner", prompt, settings=settings)
    assert (refused.value.role, refused.value.policy) == ("planner", "local-only")
    assert fake_provider.connections == 0 and fake_provider.bodies == []
    assert connections.tcp() == set()
