"""JSON-schema constrained decoding for the GPU engines, independent of any one of them.

The grammar engine is llguidance (maintained, a Rust wheel with no Python dependencies, so
it pins no pydantic — unlike formatron's exllamav2 filter — and the engine exllamav3 uses
itself). lm-format-enforcer was tried first and rejected: on a real vocabulary it let raw
newlines into JSON strings and ignored integer bounds, so outputs failed validation. This
module answers, after each generated token, which tokens may come next and which end the
output; the exllamav2 engine wraps it in a proper `ExLlamaV2Filter`. It runs on CPU.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turnout.errors import SchemaImportError

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Vocabulary:
    """A model's tokenizer as the grammar engine sees it."""

    tokenizer: Any  # llguidance.LLTokenizer
    eos_token_ids: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(self.tokenizer.vocab_size)


@lru_cache(maxsize=8)
def vocabulary_for(tokenizer_json: Path, eos_token_ids: tuple[int, ...]) -> Vocabulary:
    """The vocabulary of a HF `tokenizer.json`, with the model's end-of-output tokens."""
    import llguidance

    tokenizer = llguidance.LLTokenizer(str(tokenizer_json), eos_token=list(eos_token_ids) or None)
    return Vocabulary(tokenizer, tuple(eos_token_ids))


def closed(schema: Any) -> Any:
    """`schema` with every object closed to undeclared keys (pydantic leaves them open; a
    generator would otherwise be free to add keys forever)."""
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: closed(value) for key, value in schema.items()}
    if result.get("type") == "object" and "properties" in result:
        result.setdefault("additionalProperties", False)
    return result


class SchemaConstraint:
    """Which tokens may follow, so the output is JSON that validates against `schema`.

    `begin()` before a job, `feed(token)` after each sampled token, `next_tokens()` for the
    next step: (a bool row of the tokens that may come next, the tokens that end the output
    now); `allowed()` gives the same as sets."""

    def __init__(self, schema: dict[str, Any], vocabulary: Vocabulary) -> None:
        import llguidance
        from llguidance.numpy import allocate_token_bitmask

        grammar = llguidance.LLMatcher.grammar_from_json_schema(
            json.dumps(closed(schema)), defaults={"whitespace_flexible": False}
        )
        self.schema = schema
        self.vocabulary = vocabulary
        self._grammar = grammar
        self._matcher = llguidance.LLMatcher(vocabulary.tokenizer, grammar, log_level=0)
        if self._matcher.is_error():
            raise SchemaImportError(f"cannot constrain output to this schema: {self._matcher.get_error()}")
        self._tokens: list[int] = []
        self._bitmask = allocate_token_bitmask(1, vocabulary.size)  # refilled for every token

    def begin(self) -> None:
        self._matcher.reset()
        self._tokens = []

    def feed(self, token_id: int) -> None:
        self._tokens.append(int(token_id))
        self._matcher.consume_token(int(token_id))

    def next_tokens(self) -> tuple[np.ndarray, set[int]]:
        """The tokens that may come next as a bool row of `vocabulary.size` (end tokens
        included where the grammar may end here), and the end tokens that end the output now.

        A row, not a set: a set of a 128k vocabulary costs milliseconds per token per job,
        the row microseconds."""
        import numpy as np
        from llguidance.numpy import fill_next_token_bitmask

        size = self.vocabulary.size
        fill_next_token_bitmask(self._matcher, self._bitmask)
        row = np.unpackbits(self._bitmask[0].view(np.uint8), bitorder="little")[:size].view(np.bool_)
        accepting = self._matcher.is_accepting()
        ends = {t for t in self.vocabulary.eos_token_ids if accepting and 0 <= t < size and row[t]}
        return row, ends

    def allowed(self) -> tuple[set[int], set[int]]:
        """`next_tokens()` as sets: (tokens that may come next, not ending; tokens that end)."""
        import numpy as np

        row, ends = self.next_tokens()
        return set(np.flatnonzero(row).tolist()) - ends, ends

    @property
    def failed(self) -> str | None:
        """The matcher's error, if a token it forbade was fed anyway."""
        return self._matcher.get_error() if self._matcher.is_error() else None

    def text(self) -> str:
        return bytes(self.vocabulary.tokenizer.decode_bytes(self._tokens)).decode("utf-8", "replace")
