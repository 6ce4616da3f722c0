"""The prompts a llama.cpp model sees, and a saved state of each one's instructions.

A prompt is built as `create_chat_completion` builds it: the GGUF's chat template, then
tokens. One llama.cpp context serves every role on a model, and it reuses only what its last
prompt shares with the next. A router call after a planner call would evaluate all of the
router's instructions again (measured on the embedded model, 2 cores: p50 641 ms a router
call right after a planner call, 298 ms with its instructions restored). So the state of the
context at the end of a prompt's system message (and the header of the message that
follows) is saved once for each distinct one, and restored when it covers more of the next
prompt than the live context does. An agent whose system message holds what is the same for
many calls (the router's step kind and candidates) has only the rest evaluated. A saved
state is one sequence's KV cache (~23 KB a token on the embedded model; 2-6 ms to save or
restore); at most `MAX_SAVED` are kept, the least recently used dropped. Restoring is exact: the logits that follow equal those of the
same tokens evaluated in the same steps.
Runs on the engine's worker thread under the model's lock, like generation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

MAX_SAVED = 16


class Prompts:
    """Prompt tokens and saved instruction states for one loaded `llama_cpp.Llama`."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self._formatters: tuple[Any, Any] | None = None  # the whole prompt's, the instructions'
        self._saved: OrderedDict[tuple[int, ...], bytes] = OrderedDict()

    def tokens(self, messages: list[dict[str, Any]]) -> tuple[list[int], int] | None:
        """The prompt's tokens and how many of them are its instructions: the leading system
        messages and the header of the message after them (e.g. `<|im_start|>user\n`), as far as
        they are a prefix of the prompt's tokens; 0 when there are no system messages. None
        when the GGUF has no chat template."""
        formatters = self._chat_formatters()
        if formatters is None:
            return None
        whole, without_generation_prompt = formatters
        prompt = self._tokenize(whole(messages=messages))
        leading = 0
        while leading < len(messages) and messages[leading].get("role") == "system":
            leading += 1
        if not leading or leading == len(messages):
            return prompt, 0
        header_only = {"role": messages[leading].get("role", "user"), "content": ""}
        head = self._tokenize(without_generation_prompt(messages=[*messages[:leading], header_only]))
        return prompt, common_prefix(prompt, head)

    def prepare(self, tokens: Sequence[int], instructions: int) -> None:
        """Before `tokens` are evaluated: the saved state that covers the most of them is
        restored when it covers more than the live context holds; then, when the first
        `instructions` tokens are not saved yet, they are evaluated (reusing the context) and
        saved. The caller evaluates the rest, reusing what the context now holds."""
        llm = self.llm
        if len(tokens) >= llm.n_ctx():
            return  # too long: the caller says so, as it would without this
        live = common_prefix(llm.input_ids[: llm.n_tokens].tolist(), tokens)
        best = max((key for key in self._saved if len(key) > live and tuple(tokens[: len(key)]) == key),
                   key=len, default=None)
        if best is not None:
            self._restore(best)
            live = len(best)
        if instructions <= 0 or instructions >= len(tokens) or tuple(tokens[:instructions]) in self._saved:
            return
        llm.n_tokens = min(live, instructions)
        llm.eval(tokens[llm.n_tokens : instructions])  # drops what the context held past them
        self._save(tuple(tokens[:instructions]))

    def _chat_formatters(self) -> tuple[Any, Any] | None:
        if self._formatters is None:
            from llama_cpp import llama_chat_format

            llm = self.llm
            template = llm.metadata.get("tokenizer.chat_template")
            if not template:
                return None
            eos, bos = llm.token_eos(), llm.token_bos()
            tokens = {
                "eos_token": llm._model.token_get_text(eos) if eos != -1 else "",
                "bos_token": llm._model.token_get_text(bos) if bos != -1 else "",
                "stop_token_ids": [eos],
            }
            self._formatters = (
                llama_chat_format.Jinja2ChatFormatter(template=template, **tokens),
                llama_chat_format.Jinja2ChatFormatter(template=template, add_generation_prompt=False, **tokens),
            )
        return self._formatters

    def _tokenize(self, formatted: Any) -> list[int]:
        return list(self.llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True))

    def _save(self, key: tuple[int, ...]) -> None:
        import ctypes

        import llama_cpp

        ctx = self.llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
        self._saved[key] = bytes(memoryview(buffer)[:written])
        while len(self._saved) > MAX_SAVED:
            self._saved.popitem(last=False)

    def _restore(self, key: tuple[int, ...]) -> None:
        import ctypes

        import llama_cpp

        llm = self.llm
        data = self._saved[key]
        self._saved.move_to_end(key)
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        llm.n_tokens = 0
        source = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, source, len(data), 0) != len(data):
            llm._ctx.kv_cache_seq_rm(-1, 0, -1)  # not restored: the caller evaluates everything
            del self._saved[key]
            return
        llm.input_ids[: len(key)] = key
        llm.n_tokens = len(key)
        llm._requires_eval = True  # llama-cpp-python decodes again before it samples


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading tokens `a` and `b` share."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
