"""exllamav2's dynamic generator behind the worker's backend protocol.

Imported only inside the worker thread on a machine that can run it; nothing here is
imported by `import turnout`. One backend holds one model, its paged cache and one
`ExLlamaV2DynamicGenerator`; every job the worker enqueues shares them, and jobs batch
when flash-attn is present (`paged=True`); without it they run one at a time.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from turnout.config import GpuEngineSettings
from turnout.engines.repetition import AnswerRanges
from turnout.engines.gpu.schema_constraint import SchemaConstraint, vocabulary_for
from turnout.engines.gpu.stops import (
    finish_reason,
    job_stop_conditions,
    stop_conditions,
)
from turnout.engines.gpu.worker import GenerationJob, JobEvent


def paged_attention_available() -> bool:
    """exllamav2 batches jobs with a paged cache only when flash-attn >= 2.5.7 imports."""
    if importlib.util.find_spec("flash_attn") is None:
        return False
    from importlib.metadata import version

    from packaging.version import Version

    return Version(version("flash-attn")) >= Version("2.5.7")


def next_token_sets(constraint: SchemaConstraint) -> tuple[set[int], set[int]]:
    """What `ExLlamaV2Filter.next()` returns, which must be sets: (every token that may come
    next, end tokens included; the end tokens that end the output now)."""
    import numpy as np

    row, ends = constraint.next_tokens()
    return set(np.flatnonzero(row).tolist()), ends


def make_filter(constraint: SchemaConstraint, model: Any, tokenizer: Any) -> Any:
    """An `ExLlamaV2Filter` that asks `constraint` which tokens may come next."""
    from exllamav2.generator.filters import ExLlamaV2Filter

    class SchemaFilter(ExLlamaV2Filter):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(model, tokenizer)
            self.constraint = constraint

        def clone(self, c: Any = None) -> Any:
            raise TypeError("schema filters are per job and are not cloned")

        def begin(self, prefix_str: str) -> None:
            self.constraint.begin()

        def feed(self, token: Any) -> None:
            self.constraint.feed(int(token.item() if hasattr(token, "item") else token))

        def next(self) -> tuple[set[int], set[int]]:
            return next_token_sets(self.constraint)

        def use_background_worker(self) -> bool:
            return True  # grammar work overlaps the next forward pass

    return SchemaFilter()


class ExLlamaV2Backend:
    """Model + cache + dynamic generator for one model directory (built on the worker thread)."""

    def __init__(self, model_dir: Path, settings: GpuEngineSettings) -> None:
        from exllamav2 import (
            ExLlamaV2,
            ExLlamaV2Cache,
            ExLlamaV2Cache_Q4,
            ExLlamaV2Cache_Q6,
            ExLlamaV2Cache_Q8,
            ExLlamaV2Config,
            ExLlamaV2Tokenizer,
        )
        from exllamav2.generator import ExLlamaV2DynamicGenerator

        config = ExLlamaV2Config(str(model_dir))
        config.max_seq_len = settings.max_seq_len
        self.model = ExLlamaV2(config)
        cache_class = {"FP16": ExLlamaV2Cache, "Q4": ExLlamaV2Cache_Q4, "Q6": ExLlamaV2Cache_Q6,
                       "Q8": ExLlamaV2Cache_Q8}[settings.cache_quant]
        if settings.gpu_split:
            self.model.load(gpu_split=settings.gpu_split, progress=False)
            self.cache = cache_class(self.model, max_seq_len=settings.cache_tokens)
        else:
            self.cache = cache_class(self.model, max_seq_len=settings.cache_tokens, lazy=True)
            self.model.load_autosplit(self.cache, progress=False)
        self.tokenizer = ExLlamaV2Tokenizer(config)
        self.paged = paged_attention_available()
        self.generator = ExLlamaV2DynamicGenerator(
            model=self.model,
            cache=self.cache,
            tokenizer=self.tokenizer,
            max_batch_size=settings.max_batch_size if self.paged else 1,
            paged=self.paged,
        )
        self.stops = stop_conditions(model_dir)
        self.vocabulary = vocabulary_for(model_dir / "tokenizer.json", tuple(sorted(self.stops.token_ids)))
        self.default_max_tokens = settings.max_tokens
        self.repeat_penalty = settings.repeat_penalty
        self.penalised = AnswerRanges()  # jobs whose penalty range follows their answer (see `repetition`)

    @property
    def batched(self) -> bool:
        return self.paged

    def enqueue(self, job: GenerationJob) -> object:
        from exllamav2.generator import ExLlamaV2DynamicJob, ExLlamaV2Sampler

        # The chat template already wrote any BOS it wants; special tokens in it are real tokens.
        input_ids = self.tokenizer.encode(job.prompt, add_bos=False, encode_special_tokens=True)
        if job.temperature == 0:
            sampling = ExLlamaV2Sampler.Settings.greedy()
        else:
            sampling = ExLlamaV2Sampler.Settings()
            if job.temperature is not None:
                sampling.temperature = job.temperature
            if job.top_p is not None:
                sampling.top_p = job.top_p
        # Its own default (1.025 over the whole sequence) gives way to the answer-only penalty.
        sampling.token_repetition_penalty = self.repeat_penalty
        sampling.token_repetition_decay = 0
        filters = None
        if job.json_schema is not None:
            filters = [make_filter(SchemaConstraint(job.json_schema, self.vocabulary), self.model, self.tokenizer)]
        handle = ExLlamaV2DynamicJob(
            input_ids=input_ids,
            max_new_tokens=job.max_tokens or self.default_max_tokens,
            gen_settings=sampling,
            seed=job.seed,
            stop_conditions=job_stop_conditions(self.stops, job),
            filters=filters,
            identifier=job.id,
        )
        if self.repeat_penalty != 1.0:
            self.penalised.track(job.id, handle, lambda n: setattr(sampling, "token_repetition_range", n))
        self.generator.enqueue(handle)
        return handle

    def step(self) -> list[JobEvent]:
        events = []
        for result in self.penalised.after_step(self.generator.iterate()):
            if result.get("stage") != "streaming":
                continue
            done = bool(result.get("eos"))
            if done:
                self.penalised.drop(str(result["identifier"]))
            events.append(
                JobEvent(
                    job_id=result["identifier"],
                    text=result.get("text", ""),
                    done=done,
                    finish_reason=finish_reason(result) if done else None,
                    prompt_tokens=result.get("prompt_tokens"),
                    cached_tokens=result.get("cached_tokens"),
                    generated_tokens=result.get("new_tokens"),
                    prefill_s=result.get("time_prefill"),
                )
            )
        return events

    def cancel(self, handle: object) -> None:
        self.generator.cancel(handle)
        self.penalised.drop(str(getattr(handle, "identifier", None)))

    def active(self) -> int:
        return int(self.generator.num_remaining_jobs())

    def close(self) -> None:
        self.model.unload()
