"""The two-box setup for real: one role balanced over two `turnout serve` servers through
litellm's Router, with output schemas, keys, and a box that goes away mid-run."""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from turnout.config import load_settings, use_settings
from turnout.engines import complete, scripted
from turnout.serve import serving

KEY = "fleet-key"


class Route(BaseModel):
    agent: Literal["retriever", "coder"]
    box: Literal["a", "b"]


def _box(name: str) -> Any:
    return lambda messages: {"agent": "coder", "box": name}


async def test_a_role_is_balanced_over_two_turnout_serve_boxes_and_survives_losing_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLEET_KEY", KEY)
    with ExitStack() as stack:
        stack.enter_context(scripted.scripted("box-a", _box("a")))
        stack.enter_context(scripted.scripted("box-b", _box("b")))
        box_a = stack.enter_context(serving(load_settings(serve={"models": ["scripted/box-a"], "api_key": KEY})))
        with serving(load_settings(serve={"models": ["scripted/box-b"], "api_key": KEY})) as box_b:
            endpoints = [
                {"api_base": box_a.url, "model": "openai/scripted/box-a", "api_key_env": "FLEET_KEY"},
                {"api_base": box_b.url, "model": "openai/scripted/box-b", "api_key_env": "FLEET_KEY"},
            ]
            use_settings(load_settings(roles={"router": {"model": "openai/scripted/box-a", "endpoints": endpoints}}))
            answers = [await complete("router", "who edits inventory.py?", schema=Route) for _ in range(24)]
        after = [await complete("router", "and now?", schema=Route) for _ in range(8)]  # box b is gone

    served = Counter(a.output.box for a in answers if a.output is not None)
    assert set(served) == {"a", "b"}, served
    assert all(a.locality == "local" for a in answers)  # both boxes are on loopback
    assert {a.model for a in answers} == {"openai/scripted/box-a", "openai/scripted/box-b"}
    assert [a.output.box for a in after if a.output is not None] == ["a"] * 8
