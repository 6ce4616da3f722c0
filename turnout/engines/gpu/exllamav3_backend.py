"""exllamav3's continuous-batching generator behind the worker's backend protocol.

Imported only inside the worker thread on a machine that can run it; nothing here is
imported by `import turnout`, and importing this module loads neither torch nor exllamav3
(they are imported inside the constructor and the functions that need them). One backend
holds one model, its paged cache and one `Generator`; every job the worker enqueues shares
them. exllamav3 pages its cache with its own attention kernels, so jobs always batch.

The pure pieces (cache and load options, sampler steps, token budget, stop conditions, the
schema filter's logic, result dict -> `JobEvent`) are plain functions and classes, tested on
CPU with dicts and the tiny model's vocabulary; the exllamav3 classes are thin shells around
them.

API facts (exllamav3 1.x, turboderp-org/exllamav3; exllamav3/version.py reads 1.6.0.test):

- exllamav3/__init__.py: exports Config, Model, Tokenizer, Cache, CacheLayer_fp16,
  CacheLayer_quant, Generator, Job (and the samplers via `from .generator.sampler import *`).
- exllamav3/model/config.py: `Config.from_directory(directory: str)` reads config.json and
  picks the architecture's config class; `config.vocab_size`, `eos_token_id_list`.
- exllamav3/model/model.py: `Model.from_config(config)`; `model.load(**load_gen kwargs)`:
  `use_per_device=[GB per device]` (0 leaves a device out) or, by default, an autosplit with
  0.5 GB reserved per device; `progressbar=False` is the default; `model.unload()`.
- exllamav3/cache/cache.py: `Cache(model, max_num_tokens, layer_type=None, **kwargs)`:
  layer_type defaults to CacheLayer_fp16 and the kwargs go to the layer class; the cache
  attaches to the model, so it is made *before* `model.load()`, which allocates it (and
  the autosplit accounts for it). max_num_tokens must be a multiple of the page size.
- exllamav3/cache/quant.py: `CacheLayer_quant(..., k_bits, v_bits)`, each 2..8 bits.
- exllamav3/constants.py: `PAGE_SIZE = 256`.
- exllamav3/tokenizer/tokenizer.py: `Tokenizer.from_config(config)`;
  `encode(text, add_bos=False, encode_special_tokens=False)` -> CPU LongTensor (1, n).
- exllamav3/generator/generator.py: `Generator(model, cache, tokenizer, max_batch_size=256,
  max_chunk_size=2048, ...)`; `enqueue(job)` -> serial; `cancel(job)`; `num_remaining_jobs()`
  (pending + active); `iterate()` -> list of dicts with "stage" ("started", "prefill",
  "streaming"), "eos", "serial", and "identifier" when the job has one;
  `padded_vocab_size` = vocab_size rounded up to 32. Filter masks are computed on a thread
  pool (when `use_background_worker()`) while the forward pass runs.
- exllamav3/generator/job.py: `Job(input_ids, max_new_tokens, min_new_tokens, max_skips,
  sampler, seed, stop_conditions, decode_special_tokens=False, ..., filters, token_healing,
  identifier, banned_strings, embeddings, max_rq_tokens, **kwargs)`; stop_conditions holds
  ints (token ids) and strs (strings), nothing else. A streaming result carries "text" and
  "token_ids"; at eos also "eos_reason" (stop_token | stop_string | max_new_tokens |
  end_filter), "eos_triggering_token_id"/"_str" (stop_token), "eos_triggering_string"
  (stop_string), "full_completion", "new_tokens", "prompt_tokens", "cached_tokens",
  "time_enqueued", "time_prefill", "time_generate" (durations in seconds) and "held": what
  was held back and not emitted (at a stop token: the text before it plus its own piece;
  at a stop string: the string and what followed). A job requeued by max_rq_tokens
  re-initialises itself in place, so the handle stays the same object.
  Filters: on activation `attach(job)`, `reset()`, `is_active = trigger_token is None`;
  after each sample an active filter gets `accept_token(int)`, then `is_completed()` makes it
  inactive (and ends the job with "end_filter" when `eos_after_completed`); before each
  sample `get_next_logit_mask()` is *added* into a pinned half buffer of shape
  (1, padded_vocab_size). A stop token ends the job before the filter-completed check.
- exllamav3/generator/filter/filter.py: `Filter(tokenizer, trigger_token, prefix_str,
  eos_after_completed)`; `attach()` sets `vocab_size` to the generator's padded vocab size;
  `logits_dtype = torch.half`; `use_background_worker()` defaults to True.
- exllamav3/generator/filter/llguidance.py and formatron.py: the mask is 0 for allowed
  tokens and -inf for the rest (padding included), shape (1, vocab_size), logits_dtype.
- exllamav3/generator/sampler/presets.py: `DefaultSampler()` (min_p 0.08, temperature 0.8),
  `GreedySampler` (= ArgmaxSampler), `TopPSampler(top_p, temperature=1.0)` (temperature then
  top-p); exllamav3/generator/sampler/custom.py: top_p 1.0 and temperature 1.0 steps become
  no-ops, and SS_Temperature divides by the temperature, so 0 must mean greedy.
  `CustomSampler(steps)` drops a step whose `alt()` is a no-op (`SS_RepP` with rep_p 1.0 or a
  range of 0) and keeps leading penalty steps as they are, reading `SS_RepP(rep_p,
  sustain_range, decay_range)`'s range when it runs; the penalty must come first; the job
  passes the whole sequence (prompt and answer) as past ids, and counts `new_tokens`.
- pyproject.toml: dependencies name no flash-attn (paged attention is
  exllamav3/modules/attention_fn/triton_paged.py); llguidance is a dependency.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turnout.config import GpuEngineSettings
from turnout.engines.repetition import REPEAT_LAST_N, AnswerRanges
from turnout.engines.gpu.schema_constraint import SchemaConstraint, vocabulary_for
from turnout.engines.gpu.stops import (
    finish_reason,
    job_stop_conditions,
    stop_conditions,
)
from turnout.engines.gpu.worker import GenerationJob, JobEvent
from turnout.errors import EngineUnavailable, UserError

if TYPE_CHECKING:
    import numpy as np

    from turnout.engines.gpu.schema_constraint import Vocabulary

PAGE_SIZE = 256  # exllamav3/constants.py
CACHE_BITS: dict[str, int | None] = {"FP16": None, "Q4": 4, "Q6": 6, "Q8": 8}


# --- pure helpers: what the backend decides, without torch or exllamav3


def cache_layer(cache_quant: str) -> tuple[str, dict[str, int]]:
    """The exllamav3 cache layer class name and its arguments for a `cache_quant` setting."""
    try:
        bits = CACHE_BITS[cache_quant]
    except KeyError:
        raise ValueError(f"unknown cache_quant {cache_quant!r}; one of {', '.join(CACHE_BITS)}") from None
    if bits is None:
        return "CacheLayer_fp16", {}
    return "CacheLayer_quant", {"k_bits": bits, "v_bits": bits}


def load_options(gpu_split: Iterable[float] | None) -> dict[str, Any]:
    """`model.load()` arguments: GB per GPU when `gpu_split` is set, else exllamav3's autosplit."""
    options: dict[str, Any] = {"progressbar": False}
    if gpu_split:
        options["use_per_device"] = [float(gb) for gb in gpu_split]
    return options


def sampler_steps(temperature: float | None, top_p: float | None, repeat_penalty: float = 1.0) -> list[tuple[str, dict[str, Any]]]:
    """The exllamav3 sampler steps (class names in `exllamav3.generator.sampler`, arguments) a
    job's settings ask for: exllamav3's own presets, spelled out, after the repetition penalty.

    Temperature 0 (or top_p 0) is greedy (`GreedySampler`: argmax); neither set is
    `DefaultSampler` (min_p 0.08, temperature 0.8); otherwise `TopPSampler` (temperature, then
    top-p), the unset one at its neutral value (temperature 1, top_p 1). A penalty other than
    1.0 comes first, as exllamav3 requires: `SS_RepP` over `REPEAT_LAST_N` tokens, a range
    `AnswerRanges` then keeps to the answer's (see `turnout.engines.repetition`).
    """
    if temperature == 0 or top_p == 0:
        steps: list[tuple[str, dict[str, Any]]] = [("SS_Argmax", {})]
    elif temperature is None and top_p is None:
        steps = [("SS_MinP", {"min_p": 0.08}), ("SS_Temperature", {"temperature": 0.8}), ("SS_Sample", {})]
    else:
        steps = [("SS_Temperature", {"temperature": 1.0 if temperature is None else float(temperature)}),
                 ("SS_TopP", {"top_p": 1.0 if top_p is None else float(top_p)}), ("SS_Sample", {})]
    if repeat_penalty != 1.0:
        steps.insert(0, ("SS_RepP", {"rep_p": float(repeat_penalty), "sustain_range": REPEAT_LAST_N}))
    return steps


def new_token_budget(prompt_tokens: int, requested: int | None, default: int, max_seq_len: int) -> int:
    """The job's max_new_tokens: the request's (or the default), cut so prompt + answer fit
    in `max_seq_len` (the cut answer then ends with finish_reason "length")."""
    room = max_seq_len - prompt_tokens
    if room < 1:
        raise UserError(
            f"the prompt is {prompt_tokens} tokens, which leaves no room for an answer within "
            f"max_seq_len {max_seq_len}; shorten the prompt or raise [exllamav3] max_seq_len"
        )
    return max(1, min(requested or default, room))


def released_text(result: Mapping[str, Any]) -> str:
    """Text exllamav3 held back when a stop *token* ended the job, minus that token.

    exllamav3 holds text that might begin a stop string; when a stop token then ends the job
    that text is reported under "held", followed by the stop token's own piece, and is never
    emitted. It is answer text (it never became a stop string), so it is released, as
    `StopScanner.flush` does. Anything that does not end in the stop token's piece, or holds
    an incomplete character, stays held.
    """
    if result.get("eos_reason") != "stop_token":
        return ""
    held = result.get("held") or {}
    text = held.get("text", "") if isinstance(held, Mapping) else ""
    stop = result.get("eos_triggering_token_str") or ""
    if not text or not stop or not text.endswith(stop):
        return ""
    text = text[: len(text) - len(stop)]
    return "" if "\ufffd" in text else text


def job_event(result: Mapping[str, Any], *, prompt_tokens: int | None = None) -> JobEvent | None:
    """The `JobEvent` for one `iterate()` result; None for results that are not a job's
    output ("started", "prefill", or one without an identifier).

    `prompt_tokens` is the job's prompt length as the backend encoded it; it wins over the
    result's own count, which after a requeue includes generated tokens.
    """
    if result.get("stage") != "streaming" or result.get("identifier") is None:
        return None
    done = bool(result.get("eos"))
    if prompt_tokens is None:
        prompt_tokens = _int(result.get("prompt_tokens"))
    prefill = _float(result.get("time_prefill"))
    enqueued = _float(result.get("time_enqueued"))
    return JobEvent(
        job_id=str(result["identifier"]),
        text=result.get("text", "") + (released_text(result) if done else ""),
        done=done,
        finish_reason=finish_reason(result) if done else None,
        prompt_tokens=prompt_tokens,
        cached_tokens=_int(result.get("cached_tokens")),
        generated_tokens=_int(result.get("new_tokens")),
        prefill_s=prefill,
        ttft_s=enqueued + prefill if enqueued is not None and prefill is not None else None,
    )


def additive_mask(permitted: np.ndarray, size: int) -> np.ndarray:
    """A float32 row of `size`: 0 where the bool row `permitted` is True, -inf elsewhere
    (`permitted` is cut to `size`, or padded with -inf up to it)."""
    import numpy as np

    mask = np.full(size, -np.inf, dtype=np.float32)
    n = min(size, permitted.size)
    mask[:n][permitted[:n]] = 0.0
    return mask


class SchemaMask:
    """An exllamav3 filter's logic over a `SchemaConstraint`, free of torch and exllamav3.

    `reset()` when the job starts, `permitted()` before each sample (a bool row: True for the
    tokens to leave unmasked), `accept(token)` after it. The constraint offers end-of-output
    tokens only once the JSON is complete (and nothing else once it cannot grow); the filter
    is `completed` when one of those was sampled, or when a token it forbade was fed anyway.
    If the constraint permits nothing at all, the end tokens are permitted so the job can end.
    """

    def __init__(self, constraint: SchemaConstraint) -> None:
        self.constraint = constraint
        self.ends: set[int] = set()
        self.completed = False

    def reset(self) -> None:
        self.constraint.begin()
        self.ends = set()
        self.completed = False

    def permitted(self) -> np.ndarray:
        import numpy as np

        row, self.ends = self.constraint.next_tokens()
        if row.any():
            return row
        eos = [t for t in self.constraint.vocabulary.eos_token_ids if t >= 0]
        row = np.zeros(max([row.size, *(t + 1 for t in eos)]), dtype=np.bool_)
        row[eos] = True
        return row

    def accept(self, token: int) -> None:
        if self.completed:
            return
        self.constraint.feed(int(token))
        if int(token) in self.ends or self.constraint.failed:
            self.completed = True

    @property
    def error(self) -> str | None:
        return self.constraint.failed


# --- exllamav3 shells


def make_filter(constraint: SchemaConstraint, tokenizer: Any) -> Any:
    """An exllamav3 `Filter` that masks every token `constraint` does not allow next."""
    import torch
    from exllamav3.generator.filter import Filter

    class SchemaFilter(Filter):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(tokenizer=tokenizer, trigger_token=None, prefix_str=None, eos_after_completed=True)
            self.logic = SchemaMask(constraint)

        def reset(self) -> None:
            self.logic.reset()

        def accept_token(self, token: int) -> None:
            self.logic.accept(int(token))

        def get_next_logit_mask(self) -> Any:
            row = additive_mask(self.logic.permitted(), int(self.vocab_size))
            return torch.from_numpy(row).to(self.logits_dtype).unsqueeze(0)

        def is_completed(self) -> bool:
            return self.logic.completed

        def use_background_worker(self) -> bool:
            return True  # grammar work overlaps the forward pass

    return SchemaFilter()


def make_sampler(temperature: float | None, top_p: float | None, repeat_penalty: float = 1.0) -> tuple[Any, Any]:
    """The exllamav3 sampler for a job's settings (see `sampler_steps`), and its repetition
    penalty step (None without one), whose `sustain_range` the backend moves with the answer.
    The step is made with a non-zero range: exllamav3 drops a penalty step of range 0 as a no-op."""
    from exllamav3.generator import sampler as samplers

    steps = [getattr(samplers, name)(**kwargs) for name, kwargs in sampler_steps(temperature, top_p, repeat_penalty)]
    penalty = next((step for step in steps if type(step).__name__ == "SS_RepP"), None)
    return samplers.CustomSampler(steps), penalty


class ExLlamaV3Backend:
    """Model + cache + generator for one model directory (built on the worker thread)."""

    def __init__(self, model_dir: Path, settings: GpuEngineSettings) -> None:
        import exllamav3
        from exllamav3 import Cache, Config, Generator, Model, Tokenizer

        model_dir = Path(model_dir)
        self.config = Config.from_directory(str(model_dir))
        self.model = Model.from_config(self.config)
        layer_name, layer_args = cache_layer(settings.cache_quant)
        # Made before load(): the cache is allocated by it, and counted in the autosplit.
        self.cache = Cache(
            self.model, max_num_tokens=settings.cache_tokens, layer_type=getattr(exllamav3, layer_name),
            max_batch_size=settings.max_batch_size, **layer_args,
        )
        self.model.load(**load_options(settings.gpu_split))
        self.tokenizer = Tokenizer.from_config(self.config)
        self.generator = Generator(
            model=self.model,
            cache=self.cache,
            tokenizer=self.tokenizer,
            max_batch_size=settings.max_batch_size,
        )
        self.model_dir = model_dir
        self.stops = stop_conditions(model_dir)
        self.default_max_tokens = settings.max_tokens
        self.max_seq_len = settings.max_seq_len
        self.repeat_penalty = settings.repeat_penalty
        self.penalised = AnswerRanges()  # jobs whose penalty range follows their answer (see `repetition`)
        self._prompt_tokens: dict[str, int] = {}

    @property
    def batched(self) -> bool:
        return True

    @property
    def vocabulary(self) -> Vocabulary:
        """The grammar engine's view of the tokenizer (built on the first schema job)."""
        return vocabulary_for(self.model_dir / "tokenizer.json", tuple(sorted(self.stops.token_ids)))

    def enqueue(self, job: GenerationJob) -> object:
        from exllamav3 import Job

        # The chat template already wrote any BOS it wants; special tokens in it are real tokens.
        input_ids = self.tokenizer.encode(job.prompt, add_bos=False, encode_special_tokens=True)
        prompt_tokens = int(input_ids.shape[-1])
        max_new_tokens = new_token_budget(prompt_tokens, job.max_tokens, self.default_max_tokens, self.max_seq_len)
        filters = None
        if job.json_schema is not None:
            filters = [make_filter(SchemaConstraint(job.json_schema, self.vocabulary), self.tokenizer)]
        sampler, penalty = make_sampler(job.temperature, job.top_p, self.repeat_penalty)
        handle = Job(
            input_ids=input_ids,
            max_new_tokens=max_new_tokens,
            sampler=sampler,
            seed=job.seed,
            stop_conditions=job_stop_conditions(self.stops, job),
            filters=filters,
            identifier=job.id,
        )
        if filters and not getattr(handle, "filters", None):
            # Early exllamav3 releases took `filters` into **kwargs and ignored it.
            raise EngineUnavailable("this exllamav3 has no sampling filters; upgrade it for schema-constrained output")
        if penalty is not None:
            self.penalised.track(job.id, handle, lambda n: setattr(penalty, "sustain_range", n))
        self.generator.enqueue(handle)
        self._prompt_tokens[job.id] = prompt_tokens
        return handle

    def step(self) -> list[JobEvent]:
        events = []
        for result in self.penalised.after_step(self.generator.iterate()):
            identifier = result.get("identifier")
            event = job_event(result, prompt_tokens=self._prompt_tokens.get(str(identifier)))
            if event is None:
                continue
            if event.done:
                self._prompt_tokens.pop(event.job_id, None)
                self.penalised.drop(event.job_id)
            events.append(event)
        return events

    def cancel(self, handle: object) -> None:
        self.generator.cancel(handle)
        self._prompt_tokens.pop(str(getattr(handle, "identifier", None)), None)
        self.penalised.drop(str(getattr(handle, "identifier", None)))

    def active(self) -> int:
        return int(self.generator.num_remaining_jobs())

    def close(self) -> None:
        pool = getattr(self.generator, "filter_pool", None)
        if pool is not None:
            pool.shutdown(wait=False)
        self.model.unload()


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)
