"""Constrained decoding on CPU: walk the tiny model's real vocabulary under the mask."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from turnout.engines.gpu import make_tiny_llama, stop_conditions
from turnout.engines.gpu.schema_constraint import SchemaConstraint, vocabulary_for

pytest.importorskip("llguidance")


class Detail(BaseModel):
    name: str = Field(max_length=6)
    count: int = Field(ge=0, le=99)


class Answer(BaseModel):
    color: Literal["red", "green", "blue"]
    detail: Detail
    ok: bool


@pytest.fixture(scope="module")
def constraint(tmp_path_factory: pytest.TempPathFactory) -> SchemaConstraint:
    model = make_tiny_llama(tmp_path_factory.mktemp("tiny"))
    eos = tuple(sorted(stop_conditions(model).token_ids))
    return SchemaConstraint(Answer.model_json_schema(), vocabulary_for(model / "tokenizer.json", eos))


def _walk(constraint: SchemaConstraint, seed: int) -> str:
    """Sample uniformly among allowed tokens, as an unconstrained random model would be forced to."""
    rng = random.Random(seed)
    constraint.begin()
    for _ in range(400):
        allowed, ends = constraint.allowed()
        if ends:
            return constraint.text()
        constraint.feed(rng.choice(sorted(allowed)))
    raise AssertionError(f"no end after 400 tokens: {constraint.text()!r}")


@pytest.mark.parametrize("seed", range(5))
def test_any_path_through_the_mask_is_valid_json_for_the_schema(constraint: SchemaConstraint, seed: int) -> None:
    text = _walk(constraint, seed)
    Answer.model_validate(json.loads(text))


def test_the_first_token_must_open_the_object(constraint: SchemaConstraint) -> None:
    constraint.begin()
    allowed, ends = constraint.allowed()
    assert allowed and not ends
    tokenizer = constraint.vocabulary.tokenizer
    assert all(tokenizer.decode_str([t]).startswith("{") for t in allowed)


def test_end_of_output_is_allowed_only_once_the_object_is_complete(constraint: SchemaConstraint) -> None:
    constraint.begin()
    seen_end_early = False
    rng = random.Random(7)
    for _ in range(400):
        allowed, ends = constraint.allowed()
        if ends:
            break
        seen_end_early |= bool(set(constraint.vocabulary.eos_token_ids) & allowed)
        constraint.feed(rng.choice(sorted(allowed)))
    assert not seen_end_early and ends <= set(constraint.vocabulary.eos_token_ids)
    json.loads(constraint.text())


def test_a_forbidden_token_puts_the_constraint_in_error(constraint: SchemaConstraint) -> None:
    constraint.begin()
    allowed, _ = constraint.allowed()
    forbidden = next(t for t in range(constraint.vocabulary.size) if t not in allowed)
    constraint.feed(forbidden)
    assert constraint.failed
