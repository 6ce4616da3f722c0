"""A choice schema decided on llama.cpp by scoring its listed answers (see `choices`).

The prompt is built as `create_chat_completion` builds it (`_llamacpp_prompts`) and evaluated
once, reusing what the context or a saved state of its instructions holds; the listed
answers, each with the end token, are then scored as constrained decoding would score them,
sharing common prefixes and, at temperature 0, skipping those that can no longer be the most
probable. A single answer is no choice: it is given without evaluating anything.
Runs on the engine's worker thread under the model's lock, like generation.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

from turnout.engines._base import EngineChunk, EngineRequest, plain_messages
from turnout.engines._llamacpp_prompts import Prompts, common_prefix
from turnout.engines.choices import answer_text
from turnout.errors import EngineUnavailable, PromptTooLong


class ChoiceScorer:
    """Scores choices on one loaded `llama_cpp.Llama`."""

    def __init__(self, llm: Any, prompts: Prompts) -> None:
        self.llm = llm
        self.prompts = prompts

    def choose(self, request: EngineRequest, answers: list[Any]) -> Iterator[EngineChunk]:
        """Decide a choice schema by scoring: the prompt evaluated once (its cached prefix
        reused), then the listed answers' tokens and the end token, sharing their common
        prefixes. At temperature 0 the answer is the most probable one, and a branch that can
        no longer beat the best complete answer is not evaluated (the answer is the same as
        scoring all of them); at a higher temperature every answer is scored and one drawn."""
        import numpy as np

        llm = self.llm
        made = self.prompts.tokens(plain_messages(request.messages))
        if made is None:
            raise EngineUnavailable("this GGUF has no chat template: a choice cannot be scored on it")
        prompt, instructions = made
        texts = [answer_text(answer) for answer in answers]
        sequences = [list(llm.tokenize(t.encode("utf-8"), add_bos=False, special=False)) + [llm.token_eos()] for t in texts]
        if len(prompt) + max(map(len, sequences)) > llm.n_ctx():
            raise PromptTooLong(
                f"the prompt is {len(prompt):,} tokens, which with its answer exceeds the context window of "
                f"llamacpp/{request.model} ({llm.n_ctx():,} tokens; [llamacpp] n_ctx): shorten the prompt or raise n_ctx"
            )
        if len(sequences) == 1:  # one answer is no choice: nothing to evaluate
            yield EngineChunk(text=texts[0])
            yield EngineChunk(finish_reason="stop", input_tokens=len(prompt), output_tokens=len(sequences[0]) - 1,
                              extras={"choice": "only", "choices": 1, "choices_scored": 0, "choice_probability": 1.0,
                                      "choice_probabilities": json.dumps({texts[0]: 1.0}), "choices_left": "[]"})
            return
        self.prompts.prepare(prompt, instructions)
        shared = 0
        while all(len(s) > shared + 1 and s[shared] == sequences[0][shared] for s in sequences):
            shared += 1  # the same for every answer: evaluated with the prompt, never scored
        self._evaluate(prompt + sequences[0][:shared])
        greedy = not request.temperature
        logprobs, left = self._score([s[shared:] for s in sequences], request.cancel, prune=greedy)
        if request.cancel.is_set():  # scored in part: no answer
            yield EngineChunk(finish_reason="cancelled", input_tokens=len(prompt), output_tokens=0)
            return
        probable = {i: lp for i, lp in enumerate(logprobs) if lp is not None}
        scored = list(probable)
        if greedy:
            best = max(scored, key=lambda i: (probable[i], -i))  # ties: the first listed, as argmax
        else:
            chosen_among = np.array([probable[i] for i in scored])
            weights = np.exp((chosen_among - chosen_among.max()) / request.temperature)
            rng = np.random.default_rng(request.seed if request.seed is not None else 0)
            best = scored[int(rng.choice(len(scored), p=weights / weights.sum()))]
        yield EngineChunk(text=texts[best])
        yield EngineChunk(
            finish_reason="stop",
            input_tokens=len(prompt),
            output_tokens=len(sequences[best]) - 1,
            extras={
                "choice": "scored",
                "choices": len(texts),
                "choices_scored": len(scored),
                "choice_probability": float(np.exp(probable[best])),
                "choice_probabilities": json.dumps({texts[i]: round(float(np.exp(probable[i])), 6) for i in scored}),
                "choices_left": json.dumps(
                    [{"answers": [texts[i] for i in members], "probability": round(float(np.exp(lp)), 6)} for members, lp in left]
                ),
            },
        )

    def _evaluate(self, tokens: list[int]) -> None:
        """`tokens` evaluated, reusing what the context already holds of them; at least the
        last one is evaluated, so its logits are current."""
        llm = self.llm
        reuse = min(common_prefix(llm.input_ids[: llm.n_tokens].tolist(), tokens), len(tokens) - 1)
        llm.n_tokens = reuse
        llm.eval(tokens[reuse:])

    def _last_log_softmax(self) -> Any:
        import llama_cpp
        import numpy as np

        llm = self.llm
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(llm.n_vocab(),))
        shifted = logits - logits.max()
        return shifted - np.log(np.exp(shifted).sum())

    def _score(
        self, sequences: list[list[int]], cancel: threading.Event, *, prune: bool
    ) -> tuple[list[float | None], list[tuple[list[int], float]]]:
        """Each sequence's log-probability as constrained decoding would give it: at each
        point where the sequences branch, the model's probabilities over the branching tokens
        only (what the grammar allows there), renormalised, so all of them sum to 1; a token
        every remaining sequence shares is forced, adds nothing, and is evaluated in one batch
        with the rest. Branches are taken most probable first; with `prune`, a branch whose
        probability so far is below the best complete sequence's is left unscored (None):
        probabilities only shrink along a sequence, so none of its sequences could win. The
        probabilities of the branches left, each the exact total of the sequences under it,
        come back with them."""
        import numpy as np

        llm = self.llm
        logprobs: list[float | None] = [None] * len(sequences)
        left: list[tuple[list[int], float]] = []
        best = -np.inf

        def walk(group: list[int], depth: int, so_far: float) -> None:
            nonlocal best
            branches: dict[int, list[int]] = {}
            for index in group:
                branches.setdefault(sequences[index][depth], []).append(index)
            taken = dict.fromkeys(branches, so_far)
            if len(branches) > 1:
                scores = self._last_log_softmax()
                picked = scores[list(branches)]
                total = float(picked.max() + np.log(np.exp(picked - picked.max()).sum()))
                taken = {token: so_far + float(scores[token]) - total for token in branches}
            here = llm.n_tokens
            for token in sorted(branches, key=lambda t: -taken[t]):
                members = branches[token]
                if cancel.is_set():
                    continue
                if prune and taken[token] < best:
                    left.append((members, taken[token]))
                    continue
                chain = [token]
                end = depth + 1
                while True:  # forced tokens: every member goes on the same way
                    alive = [i for i in members if len(sequences[i]) > end]
                    if not alive or len(alive) != len(members) or len({sequences[i][end] for i in alive}) != 1:
                        break
                    chain.append(sequences[alive[0]][end])
                    end += 1
                for index in members:
                    if len(sequences[index]) <= end:  # complete: nothing left to branch on
                        logprobs[index] = taken[token]
                        best = max(best, taken[token])
                deeper = [i for i in members if len(sequences[i]) > end]
                if deeper:
                    llm.n_tokens = here
                    llm.eval(chain)
                    walk(deeper, end, taken[token])

        walk(list(range(len(sequences))), 0, 0.0)
        return logprobs, left
