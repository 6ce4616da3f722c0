"""`engine_table()`: what `turnout engines` prints, as data a program can read."""

from __future__ import annotations

import pytest

from turnout.config import ROLE_NAMES, load_settings
from turnout.engines import engine_table


def test_with_no_config_every_role_runs_here_on_the_embedded_model() -> None:
    rows = engine_table(load_settings())
    assert [r.role for r in rows] == list(ROLE_NAMES) and {r.kind for r in rows} == {"role"}
    assert all(r.model == "llamacpp/smollm2" and r.locality == "local" and r.unavailable is None for r in rows)


def test_a_remote_role_without_its_key_says_why_and_its_fallback_has_a_row(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    settings = load_settings(roles={"planner": {"model": "anthropic/claude-sonnet-4-5", "fallbacks": ["llamacpp/smollm2"]}},
                             policy={"mode": "no-code"})
    planner, fallback = [r for r in engine_table(settings) if r.role == "planner"]
    assert (planner.kind, planner.locality, planner.policy) == ("role", "remote", "no-code (refuse)")
    assert planner.unavailable is not None and "ANTHROPIC_API_KEY" in planner.unavailable
    assert (fallback.kind, fallback.model, fallback.locality, fallback.unavailable) == ("fallback", "llamacpp/smollm2", "local", None)
