"""The exllamav3 backend on CPU: its pure helpers with plain dicts, its schema filter logic on
the tiny model's real vocabulary, and the backend itself against a stand-in `exllamav3`
package that records how it is called. The real library runs only in the `gpu` tests."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from pydantic import BaseModel, Field

from turnout.config import ExLlamaV3Settings
from turnout.engines.gpu import make_tiny_llama, stop_conditions
from turnout.engines.gpu.exllamav3_backend import (
    ExLlamaV3Backend,
    SchemaMask,
    additive_mask,
    cache_layer,
    job_event,
    load_options,
    new_token_budget,
    released_text,
    sampler_steps,
)
from turnout.engines.gpu.worker import GenerationJob, GenerationWorker, JobEvent
from turnout.errors import UserError

# --- options for the cache, the load and the sampler


@pytest.mark.parametrize(
    ("quant", "expected"),
    [
        ("FP16", ("CacheLayer_fp16", {})),
        ("Q4", ("CacheLayer_quant", {"k_bits": 4, "v_bits": 4})),
        ("Q6", ("CacheLayer_quant", {"k_bits": 6, "v_bits": 6})),
        ("Q8", ("CacheLayer_quant", {"k_bits": 8, "v_bits": 8})),
    ],
)
def test_cache_quant_settings_map_to_exllamav3_cache_layers(quant: str, expected: tuple[str, dict[str, int]]) -> None:
    assert cache_layer(quant) == expected


def test_an_unknown_cache_quant_is_named() -> None:
    with pytest.raises(ValueError, match="'Q3'.*FP16, Q4, Q6, Q8"):
        cache_layer("Q3")


def test_without_a_gpu_split_the_model_autosplits() -> None:
    assert load_options(None) == {"progressbar": False}
    assert load_options([]) == {"progressbar": False}


def test_a_gpu_split_is_gigabytes_per_device() -> None:
    assert load_options([20, 0, 23.5]) == {"progressbar": False, "use_per_device": [20.0, 0.0, 23.5]}


GREEDY = [("SS_Argmax", {})]
DEFAULT = [("SS_MinP", {"min_p": 0.08}), ("SS_Temperature", {"temperature": 0.8}), ("SS_Sample", {})]


def top_p(p: float, t: float) -> list[tuple[str, dict[str, float]]]:
    return [("SS_Temperature", {"temperature": t}), ("SS_TopP", {"top_p": p}), ("SS_Sample", {})]


@pytest.mark.parametrize(
    ("temperature", "top_p_value", "expected"),
    [
        (0, None, GREEDY),
        (0.0, 0.9, GREEDY),
        (0.7, 0, GREEDY),
        (None, None, DEFAULT),
        (0.7, None, top_p(1.0, 0.7)),
        (None, 0.9, top_p(0.9, 1.0)),
        (1.2, 0.5, top_p(0.5, 1.2)),
    ],
)
def test_sampler_steps_spell_out_exllamav3s_presets(temperature: float | None, top_p_value: float | None,
                                                    expected: Any) -> None:
    assert sampler_steps(temperature, top_p_value) == expected


def test_a_repetition_penalty_comes_first_over_the_answers_window() -> None:
    assert sampler_steps(0, None, 1.1) == [("SS_RepP", {"rep_p": 1.1, "sustain_range": 64}), ("SS_Argmax", {})]
    assert sampler_steps(None, None, 1.3)[0] == ("SS_RepP", {"rep_p": 1.3, "sustain_range": 64})
    assert sampler_steps(0, None, 1.0) == GREEDY  # 1.0: no penalty step at all


# --- how many tokens a job may generate


def test_the_default_answer_length_applies_when_the_call_sets_none() -> None:
    assert new_token_budget(100, None, default=1024, max_seq_len=4096) == 1024


def test_the_calls_answer_length_wins_over_the_default() -> None:
    assert new_token_budget(100, 16, default=1024, max_seq_len=4096) == 16


def test_prompt_and_answer_are_cut_to_fit_max_seq_len() -> None:
    assert new_token_budget(4000, 1024, default=1024, max_seq_len=4096) == 96
    assert new_token_budget(4095, None, default=1024, max_seq_len=4096) == 1


def test_a_prompt_that_fills_max_seq_len_is_refused_with_the_fix() -> None:
    with pytest.raises(UserError, match=r"4096 tokens.*max_seq_len 4096.*raise \[exllamav3\] max_seq_len"):
        new_token_budget(4096, 10, default=1024, max_seq_len=4096)


# --- iterate() results -> JobEvents


def streaming(**fields: Any) -> dict[str, Any]:
    return {"stage": "streaming", "eos": False, "serial": 0, "identifier": "job-1", **fields}


@pytest.mark.parametrize("stage", ["started", "prefill"])
def test_results_before_streaming_make_no_event(stage: str) -> None:
    assert job_event({"stage": stage, "eos": False, "identifier": "job-1", "serial": 0}) is None


def test_a_result_without_an_identifier_makes_no_event() -> None:
    result = streaming(text="x")
    del result["identifier"]
    assert job_event(result) is None


def test_a_streaming_result_is_a_text_delta() -> None:
    event = job_event(streaming(text="Hello", token_ids=object()), prompt_tokens=12)
    assert event == JobEvent(job_id="job-1", text="Hello", prompt_tokens=12)


def test_a_result_with_no_text_is_an_empty_delta() -> None:
    assert job_event(streaming()) == JobEvent(job_id="job-1")


def test_the_last_result_carries_usage_and_timings() -> None:
    result = streaming(
        eos=True, eos_reason="max_new_tokens", text=" end", new_tokens=16, prompt_tokens=40,
        cached_tokens=256, time_enqueued=0.25, time_prefill=0.5, time_generate=1.0, full_completion="...",
    )
    event = job_event(result)
    assert event == JobEvent(
        job_id="job-1", text=" end", done=True, finish_reason="length", prompt_tokens=40,
        cached_tokens=256, generated_tokens=16, prefill_s=0.5, ttft_s=0.75,
    )


def test_the_backends_prompt_count_wins_over_the_results() -> None:
    """After a requeue exllamav3 counts generated tokens as prompt; the backend knows better."""
    event = job_event(streaming(eos=True, eos_reason="stop_token", prompt_tokens=300), prompt_tokens=40)
    assert event is not None and event.prompt_tokens == 40


def test_missing_usage_stays_unknown() -> None:
    event = job_event(streaming(eos=True, eos_reason="stop_token"))
    assert event is not None and event.done and event.finish_reason == "stop"
    assert (event.prompt_tokens, event.cached_tokens, event.generated_tokens, event.prefill_s, event.ttft_s) == (
        None, None, None, None, None,
    )


def test_text_held_back_before_a_stop_token_is_released_without_the_token() -> None:
    """With a stop string "\\n\\n", a trailing "\\n" is held; the stop token then ends the job."""
    result = streaming(
        eos=True, eos_reason="stop_token", eos_triggering_token_id=5, eos_triggering_token_str="<|im_end|>",
        held={"text": "\n<|im_end|>", "token_ids": object()},
    )
    event = job_event(result)
    assert event is not None and event.text == "\n"


def test_a_stop_string_and_what_follows_it_stay_held() -> None:
    result = streaming(
        eos=True, eos_reason="stop_string", eos_triggering_string="END", text="the answer ",
        held={"text": "END and more"},
    )
    event = job_event(result)
    assert event is not None and event.text == "the answer "


@pytest.mark.parametrize(
    "held",
    [
        None,
        {},
        {"text": "<|im_end|>"},  # only the stop token itself
        {"text": "abc"},  # does not end in the stop token's piece: unknown layout, keep it held
        {"text": "\ufffd<|im_end|>"},  # an incomplete character
    ],
)
def test_nothing_is_released_when_there_is_nothing_safe_to_release(held: Any) -> None:
    result = {"eos_reason": "stop_token", "eos_triggering_token_str": "<|im_end|>", "held": held}
    assert released_text(result) == ""


def test_held_text_is_released_only_at_a_stop_token() -> None:
    held = {"text": "x<|im_end|>"}
    assert released_text({"eos_reason": "max_new_tokens", "eos_triggering_token_str": "<|im_end|>", "held": held}) == ""
    assert released_text({"eos_reason": "stop_token", "eos_triggering_token_str": "<|im_end|>", "held": held}) == "x"


# --- the schema filter's logic


def row(size: int, *permitted: int) -> np.ndarray:
    """A bool row of `size`, True at `permitted`."""
    result = np.zeros(size, dtype=np.bool_)
    result[list(permitted)] = True
    return result


def ids(permitted: np.ndarray) -> set[int]:
    return set(np.flatnonzero(permitted).tolist())


@pytest.mark.parametrize("width", [4, 5, 100])  # padded to the mask's size, exact, cut to it
def test_the_additive_mask_is_zero_for_permitted_tokens_and_minus_infinity_elsewhere(width: int) -> None:
    mask = additive_mask(row(width, *(t for t in (1, 3, 99) if t < width)), 5)
    assert mask.dtype.name == "float32" and mask.shape == (5,)
    assert [0.0 if v == 0 else v for v in mask.tolist()] == [-math.inf, 0.0, -math.inf, 0.0, -math.inf]


def test_an_empty_mask_masks_everything() -> None:
    assert all(v == -math.inf for v in additive_mask(row(3), 3).tolist())


class Detail(BaseModel):
    name: str = Field(max_length=6)
    count: int = Field(ge=0, le=99)


class Answer(BaseModel):
    color: Literal["red", "green", "blue"]
    detail: Detail


@pytest.fixture(scope="module")
def schema_mask(tmp_path_factory: pytest.TempPathFactory) -> SchemaMask:
    pytest.importorskip("llguidance")
    from turnout.engines.gpu.schema_constraint import SchemaConstraint, vocabulary_for

    model = make_tiny_llama(tmp_path_factory.mktemp("tiny"))
    eos = tuple(sorted(stop_conditions(model).token_ids))
    return SchemaMask(SchemaConstraint(Answer.model_json_schema(), vocabulary_for(model / "tokenizer.json", eos)))


def _generate(mask: SchemaMask, seed: int) -> tuple[list[int], list[set[int]]]:
    """What exllamav3 does with the filter: reset, then per token mask -> sample -> accept,
    sampling uniformly among permitted tokens (a random model, forced by the mask)."""
    rng = random.Random(seed)
    eos = set(mask.constraint.vocabulary.eos_token_ids)
    mask.reset()
    tokens, permitted_sets = [], []
    for _ in range(400):
        permitted = ids(mask.permitted())
        permitted_sets.append(permitted)
        token = rng.choice(sorted(permitted))
        mask.accept(token)
        tokens.append(token)
        if token in eos:  # a stop token: exllamav3 ends the job here
            return tokens, permitted_sets
    raise AssertionError(f"no end after 400 tokens: {mask.constraint.text()!r}")


@pytest.mark.parametrize("seed", range(4))
def test_output_under_the_mask_is_valid_json_for_the_schema(schema_mask: SchemaMask, seed: int) -> None:
    tokens, permitted_sets = _generate(schema_mask, seed)
    eos = set(schema_mask.constraint.vocabulary.eos_token_ids)
    assert schema_mask.completed and schema_mask.error is None
    assert not any(eos & permitted for permitted in permitted_sets[:-1])  # no end before the JSON is
    text = schema_mask.constraint.vocabulary.tokenizer.decode_str(tokens[:-1])
    Answer.model_validate(json.loads(text))


def test_once_the_json_is_closed_only_end_tokens_are_permitted(schema_mask: SchemaMask) -> None:
    _, permitted_sets = _generate(schema_mask, 11)
    assert permitted_sets[-1] == set(schema_mask.constraint.vocabulary.eos_token_ids)


def test_reset_starts_the_grammar_over(schema_mask: SchemaMask) -> None:
    _generate(schema_mask, 3)
    schema_mask.reset()
    assert not schema_mask.completed
    tokenizer = schema_mask.constraint.vocabulary.tokenizer
    assert all(tokenizer.decode_str([t]).startswith("{") for t in ids(schema_mask.permitted()))


def test_a_forbidden_token_completes_the_filter_with_an_error(schema_mask: SchemaMask) -> None:
    schema_mask.reset()
    permitted = ids(schema_mask.permitted())
    forbidden = next(t for t in range(schema_mask.constraint.vocabulary.size) if t not in permitted)
    schema_mask.accept(forbidden)
    assert schema_mask.completed and schema_mask.error
    schema_mask.accept(forbidden)  # tokens after completion are ignored, not fed


# --- the backend against a stand-in exllamav3 package


class FakeIds:
    def __init__(self, n: int) -> None:
        self.shape = (1, n)


class FakeGenerator:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.jobs: list[Any] = []
        self.script: list[list[dict[str, Any]]] = []
        self.cancelled: list[Any] = []

    def enqueue(self, job: Any) -> int:
        self.jobs.append(job)
        return len(self.jobs) - 1

    def iterate(self) -> list[dict[str, Any]]:
        results = self.script.pop(0) if self.script else []
        for result in results:
            if result.get("eos"):
                self.jobs = [j for j in self.jobs if j.identifier != result["identifier"]]
        return results

    def cancel(self, job: Any) -> None:
        self.cancelled.append(job)
        self.jobs.remove(job)

    def num_remaining_jobs(self) -> int:
        return len(self.jobs)


@pytest.fixture
def fake_exllamav3(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Just the names the backend uses, with the signatures read from exllamav3's source."""
    calls: dict[str, Any] = {"load": None, "unloaded": False}

    class Config:
        def __init__(self, directory: str) -> None:
            self.directory = directory

        @staticmethod
        def from_directory(directory: str, **kwargs: Any) -> Config:
            assert isinstance(directory, str)
            return Config(directory)

    class Model:
        def __init__(self, config: Config) -> None:
            self.config = config
            self.caches: list[Any] = []

        @staticmethod
        def from_config(config: Config, component: str = "text", **kwargs: Any) -> Model:
            return Model(config)

        def load(self, **kwargs: Any) -> None:
            assert self.caches, "the cache must exist before load() allocates it"
            calls["load"] = kwargs

        def unload(self) -> None:
            calls["unloaded"] = True

    class CacheLayer_fp16:
        pass

    class CacheLayer_quant:
        pass

    class Cache:
        def __init__(self, model: Model, max_num_tokens: int, layer_type: Any = None, **kwargs: Any) -> None:
            model.caches.append(self)
            calls["cache"] = {"max_num_tokens": max_num_tokens, "layer_type": layer_type, **kwargs}

    class Tokenizer:
        @staticmethod
        def from_config(config: Config) -> Tokenizer:
            return Tokenizer()

        def encode(self, text: str, add_bos: bool = False, add_eos: bool = False,
                   encode_special_tokens: bool = False, **kwargs: Any) -> FakeIds:
            calls["encode"] = {"text": text, "add_bos": add_bos, "encode_special_tokens": encode_special_tokens}
            return FakeIds(len(text.split()))

    class Job:
        def __init__(self, input_ids: Any, max_new_tokens: int | None = None, sampler: Any = None,
                     seed: int | None = None, stop_conditions: Any = None, filters: Any = None,
                     identifier: Any = None, **kwargs: Any) -> None:
            assert not kwargs
            self.input_ids, self.max_new_tokens, self.sampler, self.seed = input_ids, max_new_tokens, sampler, seed
            self.stop_conditions, self.filters, self.identifier = stop_conditions, filters or [], identifier

    def generator(**kwargs: Any) -> FakeGenerator:
        calls["generator"] = FakeGenerator(**kwargs)
        return calls["generator"]

    samplers = types.ModuleType("exllamav3.generator.sampler")
    for name in ("SS_RepP", "SS_Argmax", "SS_MinP", "SS_Temperature", "SS_TopP", "SS_Sample"):
        setattr(samplers, name, type(name, (), {"__init__": lambda self, **kw: self.__dict__.update(kw)}))
    samplers.CustomSampler = type(  # type: ignore[attr-defined]
        "CustomSampler", (), {"__init__": lambda self, steps: setattr(self, "steps", list(steps))})
    package = types.ModuleType("exllamav3")
    generator_package = types.ModuleType("exllamav3.generator")
    generator_package.sampler = samplers  # type: ignore[attr-defined]
    for name, value in {
        "Config": Config, "Model": Model, "Cache": Cache, "CacheLayer_fp16": CacheLayer_fp16,
        "CacheLayer_quant": CacheLayer_quant, "Tokenizer": Tokenizer, "Generator": generator, "Job": Job,
        "generator": generator_package,
    }.items():
        setattr(package, name, value)
    monkeypatch.setitem(sys.modules, "exllamav3", package)
    monkeypatch.setitem(sys.modules, "exllamav3.generator", generator_package)
    monkeypatch.setitem(sys.modules, "exllamav3.generator.sampler", samplers)
    calls["layers"] = {"FP16": CacheLayer_fp16, "Q8": CacheLayer_quant}
    return calls


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-v3"))


def test_the_backend_builds_cache_before_load_and_a_batching_generator(
    fake_exllamav3: dict[str, Any], tiny_model: Path
) -> None:
    settings = ExLlamaV3Settings(cache_tokens=8192, cache_quant="Q8", max_batch_size=4, gpu_split=[10, 12])
    backend = ExLlamaV3Backend(tiny_model, settings)
    assert fake_exllamav3["cache"] == {
        "max_num_tokens": 8192, "layer_type": fake_exllamav3["layers"]["Q8"], "max_batch_size": 4, "k_bits": 8, "v_bits": 8,
    }
    assert fake_exllamav3["load"] == {"progressbar": False, "use_per_device": [10.0, 12.0]}
    generator = fake_exllamav3["generator"]
    assert generator.kwargs["max_batch_size"] == 4 and generator.kwargs["cache"] is backend.cache
    assert backend.batched is True
    backend.close()
    assert fake_exllamav3["unloaded"]


def test_a_job_becomes_an_exllamav3_job(fake_exllamav3: dict[str, Any], tiny_model: Path) -> None:
    backend = ExLlamaV3Backend(tiny_model, ExLlamaV3Settings(max_seq_len=256, max_tokens=100))
    job = GenerationJob(prompt="one two three", temperature=0, seed=5, stop_strings=["END"])
    handle: Any = backend.enqueue(job)
    assert fake_exllamav3["encode"] == {"text": "one two three", "add_bos": False, "encode_special_tokens": True}
    assert fake_exllamav3["load"] == {"progressbar": False}
    assert handle.identifier == job.id and handle.seed == 5 and handle.filters == []
    assert handle.max_new_tokens == 100
    assert [type(step).__name__ for step in handle.sampler.steps] == ["SS_RepP", "SS_Argmax"]
    penalty = handle.sampler.steps[0]
    assert penalty.rep_p == 1.1 and penalty.sustain_range == 0  # made over 64, then no answer yet
    stops = stop_conditions(tiny_model)
    assert handle.stop_conditions == [*sorted(stops.token_ids), *stops.strings, "END"]
    assert backend.active() == 1

    long_job = GenerationJob(prompt=" ".join(["w"] * 250), max_tokens=50, temperature=0.5)
    long_handle: Any = backend.enqueue(long_job)
    assert long_handle.max_new_tokens == 6
    assert [(type(step).__name__, vars(step)) for step in long_handle.sampler.steps[1:]] == [
        ("SS_Temperature", {"temperature": 0.5}), ("SS_TopP", {"top_p": 1.0}), ("SS_Sample", {})]

    unpenalised = ExLlamaV3Backend(tiny_model, ExLlamaV3Settings(repeat_penalty=1.0))
    assert [type(step).__name__ for step in unpenalised.enqueue(job).sampler.steps] == ["SS_Argmax"]  # type: ignore[attr-defined]
    assert len(unpenalised.penalised) == 0


def test_step_translates_results_and_forgets_finished_and_cancelled_jobs(
    fake_exllamav3: dict[str, Any], tiny_model: Path
) -> None:
    backend = ExLlamaV3Backend(tiny_model, ExLlamaV3Settings())
    a = GenerationJob(prompt="a b c")
    b = GenerationJob(prompt="d e")
    a_handle: Any = backend.enqueue(a)
    b_handle: Any = backend.enqueue(b)
    generator: FakeGenerator = fake_exllamav3["generator"]
    a_handle.new_tokens, b_handle.new_tokens = 0, 0
    generator.script = [
        [{"stage": "started", "eos": False, "identifier": a.id, "serial": 0},
         {"stage": "prefill", "eos": False, "identifier": a.id, "serial": 0, "curr_progress": 2, "max_progress": 2}],
        [{"stage": "streaming", "eos": False, "identifier": a.id, "serial": 0, "text": "Hi"},
         {"stage": "streaming", "eos": False, "identifier": b.id, "serial": 1, "text": "Yo"}],
        [{"stage": "streaming", "eos": True, "identifier": a.id, "serial": 0, "text": "!", "eos_reason": "max_new_tokens",
          "new_tokens": 2, "prompt_tokens": 3, "cached_tokens": 0, "time_enqueued": 0.0, "time_prefill": 0.1}],
    ]
    assert backend.step() == []
    a_handle.new_tokens, b_handle.new_tokens = 1, 1  # as the generator counts them
    assert [(e.job_id, e.text, e.prompt_tokens) for e in backend.step()] == [(a.id, "Hi", 3), (b.id, "Yo", 2)]
    assert a_handle.sampler.steps[0].sustain_range == b_handle.sampler.steps[0].sustain_range == 1
    a_handle.new_tokens = 2
    (last,) = backend.step()
    assert (last.done, last.finish_reason, last.generated_tokens) == (True, "length", 2)
    assert backend.active() == 1 and len(backend.penalised) == 1
    backend.cancel(b_handle)
    assert generator.cancelled == [b_handle] and backend.active() == 0
    assert backend._prompt_tokens == {} and len(backend.penalised) == 0


# --- imports


def test_importing_the_backend_loads_neither_torch_nor_exllamav3() -> None:
    heavy = ("torch", "exllamav3", "llguidance", "numpy")
    code = (
        "import sys, turnout.engines.gpu.exllamav3_backend; "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the real library (where CUDA and exllamav3 are)


@pytest.mark.gpu
async def test_gpu_the_backend_generates_plain_and_schema_constrained_output(tiny_gpu_model: Path) -> None:
    pytest.importorskip("exllamav3")
    settings = ExLlamaV3Settings(cache_tokens=4096, max_batch_size=4, max_seq_len=1024)
    worker = GenerationWorker(lambda: ExLlamaV3Backend(tiny_gpu_model, settings), name="exllamav3-test")
    try:
        plain = GenerationJob(prompt="<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", max_tokens=8,
                              temperature=0)
        events = [event async for event in worker.submit(plain)]
        assert events[-1].done and events[-1].finish_reason in {"stop", "length"}
        assert events[-1].prompt_tokens and 0 < (events[-1].generated_tokens or 0) <= 8

        constrained = GenerationJob(prompt=plain.prompt, max_tokens=300, json_schema=Answer.model_json_schema())
        events = [event async for event in worker.submit(constrained)]
        assert events[-1].finish_reason == "stop"
        Answer.model_validate(json.loads("".join(e.text for e in events)))
    finally:
        worker.shutdown()
