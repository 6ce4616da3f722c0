"""The repetition penalty every local engine applies: over the answer's last 64 tokens only.

A small model can loop on one token or n-gram until `max_tokens` runs out. The penalty
divides the score of each token used in the last `REPEAT_LAST_N` tokens *of the answer* by
`repeat_penalty` (multiplies it when negative), as llama.cpp and the exllama engines do.
Their own penalties also count the prompt's tokens, which pushes the model away from the
names, paths and keys it was given to copy, so here the window never reaches into the prompt:

- llama.cpp: `AnswerRepetitionPenalty`, a logits processor (its own `repeat_penalty` is 1);
- exllamav2 and exllamav3: their own penalty (`token_repetition_range`, `SS_RepP`'s
  `sustain_range`), whose range `AnswerRanges` sets from the job's answer length after every
  step, starting at 0.

Each call's span carries the settings (`sampler_stats`). `repeat_penalty` is set per engine
(`[llamacpp]`, `[exllamav2]`, `[exllamav3]`; 1.1 by default, 1.0 turns it off).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

ResultsT = TypeVar("ResultsT")

REPEAT_LAST_N = 64


def sampler_stats(repeat_penalty: float) -> dict[str, Any]:
    """The penalty's settings, as a call's span and engine stats show them."""
    return {"repeat_penalty": repeat_penalty, "repeat_last_n": REPEAT_LAST_N}


def answer_range(answer_tokens: int, window: int = REPEAT_LAST_N) -> int:
    """How many of the latest tokens the penalty covers once the answer has `answer_tokens`
    (negative while an engine heals the prompt's last token: none yet)."""
    return max(0, min(window, answer_tokens))


@dataclass
class AnswerRepetitionPenalty:
    """llama-cpp-python logits processor: the penalty over the answer's last `window` tokens
    (the first call sees the prompt alone, and remembers its length)."""

    penalty: float
    window: int = REPEAT_LAST_N
    prompt_tokens: int | None = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import numpy as np

        if self.prompt_tokens is None:
            self.prompt_tokens = len(input_ids)
        generated = input_ids[self.prompt_tokens :][-self.window :]
        if self.penalty == 1.0 or len(generated) == 0:
            return scores
        seen = np.unique(np.asarray(generated, dtype=np.intp))
        picked = scores[seen]
        scores[seen] = np.where(picked > 0, picked / self.penalty, picked * self.penalty)
        return scores


@dataclass
class AnswerRanges:
    """The GPU engines' jobs whose penalty range follows their answer. `track` a job when it
    is made (its range starts at 0: no answer yet), `update` after every generator step (the
    range becomes `answer_range` of the job's `new_tokens`; `after_step` wraps the step's
    results), `drop` it when it ends."""

    _jobs: dict[str, tuple[Any, Callable[[int], None]]] = field(default_factory=dict)

    def track(self, job_id: str, handle: Any, set_range: Callable[[int], None]) -> None:
        set_range(0)
        self._jobs[job_id] = (handle, set_range)

    def update(self) -> None:
        for handle, set_range in self._jobs.values():
            set_range(answer_range(int(getattr(handle, "new_tokens", 0))))

    def after_step(self, results: ResultsT) -> ResultsT:
        """A generator step's `results`, once every range is set for the next step."""
        self.update()
        return results

    def drop(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)

    def __len__(self) -> int:
        return len(self._jobs)
