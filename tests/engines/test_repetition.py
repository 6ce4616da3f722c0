"""The repetition penalty covers the answer's last 64 tokens, never the prompt's, on every local engine."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from turnout.engines.repetition import REPEAT_LAST_N, AnswerRanges, AnswerRepetitionPenalty, answer_range


def test_the_range_grows_with_the_answer_up_to_the_window() -> None:
    assert [answer_range(n) for n in (-1, 0, 1, 63, 64, 500)] == [0, 0, 1, 63, 64, 64]


@dataclass
class FakeJob:
    new_tokens: int = 0


def test_a_tracked_jobs_range_starts_at_zero_and_follows_its_new_tokens() -> None:
    ranges: dict[str, list[int]] = {"a": [], "b": []}
    jobs = {"a": FakeJob(), "b": FakeJob(new_tokens=-1)}  # b heals its prompt's last token first
    penalised = AnswerRanges()
    for name, job in jobs.items():
        penalised.track(name, job, ranges[name].append)
    assert ranges == {"a": [0], "b": [0]}
    for step in range(70):
        jobs["a"].new_tokens += 1
        jobs["b"].new_tokens += 1
        penalised.update()
        if step == 2:
            penalised.drop("b")  # ended: no longer updated
    assert ranges["a"] == [0, *range(1, 65), *[REPEAT_LAST_N] * 6]
    assert ranges["b"] == [0, 0, 1, 2]
    assert len(penalised) == 1


def test_the_llama_cpp_processor_never_penalises_the_prompt() -> None:
    penalty = AnswerRepetitionPenalty(2.0)
    prompt = [5, 6, 7]
    first = penalty(np.array(prompt), np.full(10, 4.0))  # the prompt alone: nothing generated yet
    assert first.tolist() == [4.0] * 10
    scores = penalty(np.array([*prompt, 5, 8]), np.array([-2.0] + [4.0] * 9))
    assert scores[[5, 8]].tolist() == [2.0, 2.0]  # answer tokens, positive: divided
    assert scores[[6, 7]].tolist() == [4.0, 4.0]  # prompt tokens: untouched
    assert penalty(np.array([*prompt, 0]), np.array([-2.0] + [4.0] * 9))[0] == pytest.approx(-4.0)  # negative: multiplied
