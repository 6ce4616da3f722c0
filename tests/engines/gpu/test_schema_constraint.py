"""Constrained decoding on CPU: walk the tiny model's real vocabulary under the mask."""

from __future__ import annotations

import json
import random
from typing import Literal

import numpy as np
import pytest
from pydantic import BaseModel, Field

from turnout.engines.gpu import make_tiny_llama, stop_conditions
from turnout.engines.gpu.exllamav2_backend import next_token_sets
from turnout.engines.gpu.exllamav3_backend import SchemaMask
from turnout.engines.gpu.schema_constraint import (
    SchemaConstraint,
    Vocabulary,
    vocabulary_for,
)

pytest.importorskip("llguidance")


class Detail(BaseModel):
    name: str = Field(max_length=6)
    count: int = Field(ge=0, le=99)


class Answer(BaseModel):
    color: Literal["red", "green", "blue"]
    detail: Detail
    ok: bool


@pytest.fixture(scope="module")
def vocabulary(tmp_path_factory: pytest.TempPathFactory) -> Vocabulary:
    model = make_tiny_llama(tmp_path_factory.mktemp("tiny"))
    return vocabulary_for(model / "tokenizer.json", tuple(sorted(stop_conditions(model).token_ids)))


@pytest.fixture(scope="module")
def constraint(vocabulary: Vocabulary) -> SchemaConstraint:
    return SchemaConstraint(Answer.model_json_schema(), vocabulary)


@pytest.fixture
def fresh(vocabulary: Vocabulary) -> SchemaConstraint:
    """A constraint of its own (llguidance's reset() keeps an error from an earlier walk)."""
    return SchemaConstraint(Answer.model_json_schema(), vocabulary)


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


# --- the row form the engines read is the per-token sets the constraint used to build


def _sets_from_a_fresh_bitmask(constraint: SchemaConstraint) -> tuple[set[int], set[int]]:
    """`allowed()` as it was before `next_tokens()`: a new bitmask per token, read into sets."""
    from llguidance.numpy import allocate_token_bitmask, fill_next_token_bitmask

    size = constraint.vocabulary.size
    mask = allocate_token_bitmask(1, size)
    fill_next_token_bitmask(constraint._matcher, mask)
    bits = np.unpackbits(mask[0].view(np.uint8), bitorder="little")[:size]
    allowed = {int(i) for i in np.flatnonzero(bits)}
    ends = allowed & set(constraint.vocabulary.eos_token_ids) if constraint._matcher.is_accepting() else set()
    return allowed - ends, ends


def _assert_every_form_permits_what_the_sets_did(constraint: SchemaConstraint) -> tuple[set[int], set[int]]:
    allowed, ends = _sets_from_a_fresh_bitmask(constraint)
    row, row_ends = constraint.next_tokens()
    assert row.dtype == np.bool_ and row.shape == (constraint.vocabulary.size,)
    assert (set(np.flatnonzero(row).tolist()), row_ends) == (allowed | ends, ends)
    assert constraint.allowed() == (allowed, ends)
    assert next_token_sets(constraint) == (allowed | ends, ends)  # exllamav2's filter
    v3 = SchemaMask(constraint)  # exllamav3's filter, at the constraint's current state
    assert set(np.flatnonzero(v3.permitted()).tolist()) == (allowed | ends) and v3.ends == ends
    return allowed, ends


@pytest.mark.parametrize("seed", range(5))
def test_every_step_permits_the_same_tokens_as_the_per_token_sets(fresh: SchemaConstraint, seed: int) -> None:
    constraint = fresh
    rng = random.Random(seed)
    constraint.begin()
    for _ in range(400):
        allowed, ends = _assert_every_form_permits_what_the_sets_did(constraint)
        if ends:
            constraint.feed(rng.choice(sorted(ends)))
            _assert_every_form_permits_what_the_sets_did(constraint)  # after the end
            return
        constraint.feed(rng.choice(sorted(allowed)))
    raise AssertionError(f"no end after 400 tokens: {constraint.text()!r}")


def test_after_a_forbidden_token_every_form_permits_the_same_tokens(fresh: SchemaConstraint) -> None:
    constraint = fresh
    constraint.begin()
    allowed, _ = _assert_every_form_permits_what_the_sets_did(constraint)
    constraint.feed(next(t for t in range(constraint.vocabulary.size) if t not in allowed))
    assert constraint.failed
    _assert_every_form_permits_what_the_sets_did(constraint)


class _NothingAllowed:
    """A constraint whose grammar permits no token at all."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary

    def next_tokens(self) -> tuple[np.ndarray, set[int]]:
        return np.zeros(self.vocabulary.size, dtype=np.bool_), set()


def test_exllamav3_permits_the_end_tokens_when_the_grammar_permits_nothing(vocabulary: Vocabulary) -> None:
    mask = SchemaMask(_NothingAllowed(vocabulary))  # type: ignore[arg-type]
    assert set(np.flatnonzero(mask.permitted()).tolist()) == set(vocabulary.eos_token_ids)
