"""A scripted team for the hybrid graph (the `team` fixture): every role answers from a
script the test controls."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from turnout.config import ROLE_NAMES, load_settings, use_settings
from turnout.engines import scripted
from turnout.engines.scripted import Script

REPO_FILES = {
    "shop/pricing.py": (
        '"""Prices and taxes."""\n\n\ndef tax_for_region(amount: float, region: str) -> float:\n'
        '    """Tax owed on a net amount in a region."""\n    return amount * {"uk": 0.2}.get(region, 0.0)\n'
    ),
    "shop/inventory.py": (
        '"""Stock."""\n\n\ndef load_inventory(path: str) -> dict:\n    """Read the inventory CSV."""\n'
        "    return {}\n"
    ),
}


def first_candidate(messages: list[dict[str, Any]]) -> str:
    return re.search(r"Agents: ([a-z]+)", messages[0]["content"]).group(1)  # type: ignore[union-attr]


def route(confidence: float = 0.9, tier: str = "local") -> Any:
    return lambda m: {"agent": first_candidate(m), "tier": tier, "confidence": confidence, "reason": "fits"}


def plan(*steps: tuple[str, str, list[int]]) -> dict[str, Any]:
    return {"steps": [{"kind": k, "description": d, "depends_on": deps} for k, d, deps in steps]}


def in_order(*answers: Any) -> Any:
    """A script callable giving `answers` in turn; an exception among them is raised instead."""
    remaining = iter(answers)

    def answer(messages: list[dict[str, Any]]) -> Any:
        value = next(remaining)
        if isinstance(value, Exception):
            raise value
        return value

    return answer


def finish(answer: str = "tax_for_region in shop/pricing.py") -> dict[str, Any]:
    return {"action": "finish", "answer": answer, "steps": []}


@dataclass
class Team:
    repo: Path
    scripts: dict[str, Script]

    def use(self, role: str, responses: Any) -> Script:
        script = scripted.register(f"t-{role}", responses)
        self.scripts[role] = script
        return script


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Team]:
    repo = tmp_path / "repo"
    for name, text in REPO_FILES.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    for role in ROLE_NAMES:
        monkeypatch.setenv(f"TURNOUT_ROLES__{role.upper()}", f"scripted/t-{role}")
    use_settings(load_settings())
    t = Team(repo, {})
    t.use("router", route())
    t.use("retriever", lambda m: {"keywords": ["tax", "region"]})
    yield t
    for role in ROLE_NAMES:
        scripted.unregister(f"t-{role}")
    scripted.unregister("t-cloud")


def dumps(value: Any) -> str:
    return json.dumps(value)
