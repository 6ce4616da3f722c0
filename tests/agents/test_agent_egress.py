"""Every agent's prompt is built from tagged parts, so the egress guard holds for each one:
under `no-code` a code snippet never reaches a remote model; under `open` it does; and
prompts that carry no code go remote under `no-code` without a false refusal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from turnout.agents import (
    Coder,
    Evidence,
    Planner,
    PlanStep,
    Retriever,
    Router,
    Snippet,
    Verifier,
)
from turnout.agents.refactor_planner import RefactorPlanner
from turnout.config import Settings, load_settings
from turnout.engines import scripted, tag
from turnout.errors import EgressRefused
from turnout.tools import CodeIndex

CANARY = "CANARY_b61e_RATE_TABLE"
BODY = f"def tax_for_region(amount, region):\n    return amount * {CANARY}[region]\n"
SNIPPET = Snippet(path="pricing.py", start_line=1, end_line=2, score=1.0, symbol="tax_for_region", text=BODY)


def remote(role: str, mode: str) -> Settings:
    """`role` on a scripted engine declared remote (a stand-in for a cloud model)."""
    return load_settings(roles={role: {"model": "scripted/cloud", "locality": "remote"}}, policy={"mode": mode})


@pytest.fixture
def index(tmp_path: Path) -> CodeIndex:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "pricing.py").write_text(BODY)
    return CodeIndex.build(tmp_path / "repo")


# Agents whose input can carry code: (role, answer, call)
CODE_CARRYING: dict[str, tuple[str, Any, Callable[[Settings], Awaitable[Any]]]] = {
    "coder": (
        "coder",
        {"edits": [], "explanation": "nothing to do"},
        lambda s: Coder(settings=s).run("Fix the UK rate", evidence=Evidence(query="q", snippets=[SNIPPET])),
    ),
    "verifier": (
        "verifier",
        {"passed": True, "reasons": []},
        lambda s: Verifier(settings=s).run(
            "Did the fix work?", evidence=tag.compose("Diff:\n{d}", d=tag.diff(f"+    return {CANARY}\n"))
        ),
    ),
    "verifier-tests": (
        "verifier",
        {"passed": True, "reasons": []},
        lambda s: Verifier(settings=s).run(
            "Did the fix work?", evidence=tag.test_output(f"FAILED test_tax - KeyError: {CANARY}")
        ),
    ),
    "planner": (
        "planner",
        {"steps": [{"kind": "answer", "description": "answer", "depends_on": []}]},
        lambda s: Planner(settings=s).run("Where is tax computed?", context=tag.code(BODY, origin="pricing.py")),
    ),
    "planner-untagged": (
        "planner",
        {"steps": [{"kind": "answer", "description": "answer", "depends_on": []}]},
        lambda s: Planner(settings=s).run("Where is tax computed?", context=f"pasted: {BODY}"),
    ),
}


@pytest.mark.parametrize("case", sorted(CODE_CARRYING))
async def test_code_never_reaches_a_remote_agent_under_no_code(case: str) -> None:
    role, answer, call = CODE_CARRYING[case]
    with scripted.scripted("cloud", [answer]) as cloud, pytest.raises(EgressRefused):
        await call(remote(role, "no-code"))
    assert cloud.calls == []


@pytest.mark.parametrize("case", sorted(CODE_CARRYING))
async def test_code_reaches_a_remote_agent_under_open(case: str) -> None:
    role, answer, call = CODE_CARRYING[case]
    with scripted.scripted("cloud", [answer]) as cloud:
        await call(remote(role, "open"))
    assert CANARY in "".join(str(m["content"]) for m in cloud.calls[0])


async def test_the_coder_under_outline_shows_a_remote_model_signatures_only() -> None:
    settings = load_settings(
        roles={"coder": {"model": "scripted/cloud", "locality": "remote"}},
        policy={"mode": "no-code", "on_forbidden": "outline"},
    )
    with scripted.scripted("cloud", [{"edits": [], "explanation": "ok"}]) as cloud:
        await Coder(settings=settings).run("Fix the UK rate", evidence=Evidence(query="q", snippets=[SNIPPET]))
    seen = "".join(str(m["content"]) for m in cloud.calls[0])
    assert CANARY not in seen
    assert "def tax_for_region(amount, region)" in seen and "pricing.py:1-2" in seen


# Agents whose prompts hold only the request, paths, signatures and agents' summaries.
CODE_FREE: dict[str, tuple[str, Any, Callable[[Settings, CodeIndex], Awaitable[Any]]]] = {
    "planner.decide": (
        "planner",
        {"action": "finish", "answer": "in pricing.py", "steps": []},
        lambda s, i: Planner(settings=s).decide(
            "Where is tax computed?", [PlanStep(kind="retrieve", description="find tax")], ["found pricing.py:1-2"]
        ),
    ),
    "planner.answer": (
        "planner",
        {"text": "in pricing.py"},
        lambda s, i: Planner(settings=s).answer(
            "Where is tax computed?", PlanStep(kind="answer", description="answer"), ["found pricing.py:1-2"]
        ),
    ),
    "router": (
        "router",
        {"agent": "retriever", "tier": "local", "confidence": 0.9, "reason": "search"},
        lambda s, i: Router(settings=s).run(PlanStep(kind="retrieve", description="find tax"), candidates=["retriever"]),
    ),
    "retriever": (
        "retriever",
        {"keywords": ["tax"], "symbols": ["tax_for_region"]},
        lambda s, i: Retriever(i, settings=s).run("Where is tax computed?"),
    ),
    "refactor_planner": (
        "planner",
        {"operation": "rename", "symbol": "tax_for_region", "new_name": "regional_tax"},
        lambda s, i: RefactorPlanner(settings=s).run(
            "Rename tax_for_region to regional_tax", symbols=["tax_for_region"], new_names=["regional_tax"]
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(CODE_FREE))
async def test_code_free_prompts_go_remote_under_no_code(case: str, index: CodeIndex) -> None:
    role, answer, call = CODE_FREE[case]
    with scripted.scripted("cloud", [answer]) as cloud:
        await call(remote(role, "no-code"), index)
    assert len(cloud.calls) == 1
    assert CANARY not in "".join(str(m["content"]) for m in cloud.calls[0])
