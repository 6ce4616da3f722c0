"""When a GPU engine stops generating, and how streamed text is cut at a stop string.

A chat model ends its turn with a token (EOS, or an end-of-turn marker such as `<|im_end|>`
or `<|eot_id|>` that is often *not* the configured EOS), so stopping on EOS alone lets it
run on into an invented next turn. `stop_conditions` collects, for a model directory:

- token ids: `eos_token_id` from `config.json` and `generation_config.json` (int or list),
  plus every end-of-turn marker below that is a single token in `tokenizer.json`;
- strings: those markers (also caught as text, in case a model spells one out piece by
  piece), then the caller's own stop strings.

A marker counts when the chat template mentions it, when the tokenizer has it as an added
token, or when it is the tokenizer config's `eos_token`.

`StopScanner` applies the strings to streamed text: it emits what cannot be part of a stop
string, holds back a suffix that could still become one, and on a hit emits the text
before the stop string and never the stop string itself (OpenAI's `stop` semantics).

`job_stop_conditions` and `finish_reason` are the two ends of an exllama job, the same in
exllamav2 and exllamav3: the stop conditions a job is given, and OpenAI's finish_reason for
the `eos_reason` it ends with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from turnout.engines.gpu.chat_template import ChatTemplate, read_json

if TYPE_CHECKING:
    from turnout.engines.gpu.worker import GenerationJob

END_OF_TURN_MARKERS = (
    "<|im_end|>", "<|eot_id|>", "<end_of_turn>", "</s>", "<|end|>", "<|endoftext|>",
)
# An exllama job's eos_reason -> OpenAI's finish_reason (anything else is "stop").
FINISH_REASONS = {"stop_token": "stop", "stop_string": "stop", "end_filter": "stop", "max_new_tokens": "length"}


@dataclass
class StopConditions:
    """Token ids that end generation, and strings that end it when they appear in the text."""

    token_ids: set[int] = field(default_factory=set)
    strings: list[str] = field(default_factory=list)

    def with_strings(self, strings: Iterable[str]) -> StopConditions:
        """A copy with a request's own stop strings added (duplicates and empties dropped)."""
        return StopConditions(set(self.token_ids), _unique([*self.strings, *strings]))

    def scanner(self) -> StopScanner:
        """A fresh scanner for one generation."""
        return StopScanner(self.strings)


def stop_conditions(
    model_dir: Path, *, template: ChatTemplate | None = None, stop: Iterable[str] = ()
) -> StopConditions:
    """The stop conditions of the model in `model_dir`, plus the stop strings in `stop`.

    `template` defaults to `ChatTemplate.from_model_dir(model_dir)`; missing files simply
    contribute nothing.
    """
    model_dir = Path(model_dir)
    template = template or ChatTemplate.from_model_dir(model_dir)
    tokenizer = read_json(model_dir / "tokenizer.json")
    added = {t["content"]: t["id"] for t in tokenizer.get("added_tokens", []) if "content" in t}
    markers = [m for m in END_OF_TURN_MARKERS if m in template.source or m in added]
    if template.eos_token:
        markers.append(template.eos_token)
    ids = set()
    for name in ("config.json", "generation_config.json"):
        ids |= _token_ids(read_json(model_dir / name).get("eos_token_id"))
    for marker in markers:
        token_id = added.get(marker, _vocab_id(tokenizer, marker))
        if token_id is not None:
            ids.add(token_id)
    return StopConditions(ids, _unique([*markers, *stop]))


def job_stop_conditions(stops: StopConditions, job: GenerationJob) -> list[int | str]:
    """The model's stop token ids and strings plus the job's own, as an exllama job's
    `stop_conditions`: token ids (sorted), then strings."""
    token_ids = sorted({int(t) for t in stops.token_ids} | {int(t) for t in job.stop_token_ids})
    return [*token_ids, *stops.with_strings(job.stop_strings).strings]


def finish_reason(result: Mapping[str, Any]) -> str:
    """OpenAI's finish_reason for an exllama generator's eos result."""
    return FINISH_REASONS.get(str(result.get("eos_reason", "")), "stop")


class Scan(NamedTuple):
    """What a chunk of streamed text yields: text safe to emit, and whether a stop was hit."""

    text: str
    stopped: bool


class StopScanner:
    """Cuts a stream of text chunks at the first stop string, however the chunks split it.

    `feed` each decoded chunk and emit the returned text; once `stopped`, end generation.
    When generation ends for another reason (EOS token, max tokens), `flush` returns the
    text still held back.
    """

    def __init__(self, strings: Iterable[str]) -> None:
        self.strings = tuple(_unique(strings))
        self.holdback = max((len(s) for s in self.strings), default=1) - 1
        self.matched: str | None = None
        self._held = ""

    @property
    def stopped(self) -> bool:
        return self.matched is not None

    def feed(self, chunk: str) -> Scan:
        if self.stopped:
            return Scan("", True)
        text = self._held + chunk
        hits = [(text.find(s), s) for s in self.strings if s in text]
        if hits:
            start, self.matched = min(hits, key=lambda hit: hit[0])
            self._held = ""
            return Scan(text[:start], True)
        keep = self._partial_suffix(text)
        self._held = text[len(text) - keep :]
        return Scan(text[: len(text) - keep], False)

    def flush(self) -> str:
        """The held-back text, at the end of a generation that no stop string ended."""
        held, self._held = self._held, ""
        return held

    def _partial_suffix(self, text: str) -> int:
        """The length of the longest suffix of `text` that begins some stop string."""
        for length in range(min(self.holdback, len(text)), 0, -1):
            suffix = text[-length:]
            if any(s.startswith(suffix) for s in self.strings):
                return length
        return 0


def _unique(strings: Iterable[str]) -> list[str]:
    return [s for s in dict.fromkeys(strings) if s]


def _token_ids(value: Any) -> set[int]:
    if isinstance(value, int):
        return {value}
    if isinstance(value, list):
        return {v for v in value if isinstance(v, int)}
    return set()


def _vocab_id(tokenizer: dict[str, Any], piece: str) -> int | None:
    """The id of `piece` in the tokenizer model's own vocabulary (BPE/WordPiece map, or
    Unigram's list of [piece, score] pairs), if it is a single token there."""
    vocab = tokenizer.get("model", {}).get("vocab")
    if isinstance(vocab, dict):
        return vocab.get(piece)
    if isinstance(vocab, list):
        for token_id, entry in enumerate(vocab):
            if entry and entry[0] == piece:
                return token_id
    return None
