"""A choice schema decided on llama.cpp by scoring its listed answers (see `choices`).

The prompt is built as `create_chat_completion` builds it (the GGUF's chat template) and
evaluated once, reusing what the context already holds; each listed answer, plus the end
token, is then scored as constrained decoding would score it, sharing common prefixes.
Runs on the engine's worker thread under the model's lock, like generation.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

from turnout.engines._base import EngineChunk, EngineRequest, plain_messages
from turnout.engines.choices import answer_text
from turnout.errors import EngineUnavailable, PromptTooLong


class ChoiceScorer:
    """Scores choices on one loaded `llama_cpp.Llama`."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.formatter: Any = None  # the model's chat template, made on first use

    def prompt_tokens(self, messages: list[dict[str, Any]]) -> list[int]:
        """The prompt as create_chat_completion builds it: the GGUF's chat template, then tokens."""
        from llama_cpp import llama_chat_format

        llm = self.llm
        if self.formatter is None:
            template = llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise EngineUnavailable("this GGUF has no chat template: a choice cannot be scored on it")
            eos, bos = llm.token_eos(), llm.token_bos()
            self.formatter = llama_chat_format.Jinja2ChatFormatter(
                template=template,
                eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
                bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
                stop_token_ids=[eos],
            )
        formatted = self.formatter(messages=messages)
        return list(llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True))

    def choose(self, request: EngineRequest, answers: list[Any]) -> Iterator[EngineChunk]:
        """Decide a choice schema by scoring: the prompt evaluated once (its cached prefix
        reused), then every listed answer's tokens and the end token, sharing their common
        prefixes; the answer is the most probable (at temperature 0) or drawn by probability."""
        import numpy as np

        llm = self.llm
        prompt = self.prompt_tokens(plain_messages(request.messages))
        texts = [answer_text(answer) for answer in answers]
        sequences = [list(llm.tokenize(t.encode("utf-8"), add_bos=False, special=False)) + [llm.token_eos()] for t in texts]
        if len(prompt) + max(map(len, sequences)) > llm.n_ctx():
            raise PromptTooLong(
                f"the prompt is {len(prompt):,} tokens, which with its answer exceeds the context window of "
                f"llamacpp/{request.model} ({llm.n_ctx():,} tokens; [llamacpp] n_ctx): shorten the prompt or raise n_ctx"
            )
        shared = 0
        while all(len(s) > shared + 1 and s[shared] == sequences[0][shared] for s in sequences):
            shared += 1  # the same for every answer: evaluated with the prompt, never scored
        logprobs = np.zeros(len(sequences))
        self._evaluate(prompt + sequences[0][:shared])
        self._score([s[shared:] for s in sequences], logprobs, request.cancel)
        if request.cancel.is_set():  # scored in part: no answer
            yield EngineChunk(finish_reason="cancelled", input_tokens=len(prompt), output_tokens=0)
            return
        probabilities = np.exp(logprobs - logprobs.max())
        probabilities /= probabilities.sum()
        if request.temperature:
            weights = np.exp((logprobs - logprobs.max()) / request.temperature)
            rng = np.random.default_rng(request.seed if request.seed is not None else 0)
            best = int(rng.choice(len(texts), p=weights / weights.sum()))
        else:
            best = int(np.argmax(logprobs))
        yield EngineChunk(text=texts[best])
        yield EngineChunk(
            finish_reason="stop",
            input_tokens=len(prompt),
            output_tokens=len(sequences[best]) - 1,
            extras={
                "choice": "scored",
                "choices": len(texts),
                "choice_probability": float(probabilities[best]),
                "choice_probabilities": json.dumps({t: round(float(p), 6) for t, p in zip(texts, probabilities, strict=True)}),
            },
        )

    def _evaluate(self, tokens: list[int]) -> None:
        """`tokens` evaluated, reusing what the context already holds of them; at least the
        last one is evaluated, so its logits are current."""
        llm = self.llm
        held = llm.input_ids[: llm.n_tokens].tolist()
        reuse = 0
        while reuse < min(len(held), len(tokens) - 1) and held[reuse] == tokens[reuse]:
            reuse += 1
        llm.n_tokens = reuse
        llm.eval(tokens[reuse:])

    def _last_log_softmax(self) -> Any:
        import llama_cpp
        import numpy as np

        llm = self.llm
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(llm.n_vocab(),))
        shifted = logits - logits.max()
        return shifted - np.log(np.exp(shifted).sum())

    def _score(self, sequences: list[list[int]], logprobs: Any, cancel: threading.Event) -> None:
        """Add each sequence's log-probability as constrained decoding would give it: at each
        point where the sequences branch, the model's probabilities over the branching tokens
        only (what the grammar allows there), renormalised; a token every remaining sequence
        shares is forced, so it adds nothing and is evaluated in one batch with the rest."""
        llm = self.llm

        def walk(group: list[int], depth: int) -> None:
            branches: dict[int, list[int]] = {}
            for index in group:
                branches.setdefault(sequences[index][depth], []).append(index)
            if len(branches) > 1:
                scores = self._last_log_softmax()
                allowed = list(branches)
                picked = scores[allowed]
                top = picked.max()
                total = top + float(np.log(np.exp(picked - top).sum()))
                for token, members in branches.items():
                    for index in members:
                        logprobs[index] += float(scores[token]) - total
            here = llm.n_tokens
            for token, members in branches.items():
                chain = [token]
                end = depth + 1
                while True:  # forced tokens: every member goes on the same way
                    alive = [i for i in members if len(sequences[i]) > end]
                    if not alive or len(alive) != len(members) or len({sequences[i][end] for i in alive}) != 1:
                        break
                    chain.append(sequences[alive[0]][end])
                    end += 1
                deeper = [i for i in members if len(sequences[i]) > end]
                if deeper and not cancel.is_set():
                    llm.n_tokens = here
                    llm.eval(chain)
                    walk(deeper, end)

        import numpy as np

        walk(list(range(len(sequences))), 0)
