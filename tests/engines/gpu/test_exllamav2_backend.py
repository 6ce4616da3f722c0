"""exllamav2's backend on a fake of the library (the names it uses, signatures as in exllamav2
0.3.2's source): sampling settings per job, and the repetition penalty kept to the answer."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from turnout.config import ExLlamaV2Settings
from turnout.engines.gpu import make_tiny_llama
from turnout.engines.gpu.exllamav2_backend import ExLlamaV2Backend
from turnout.engines.gpu.worker import GenerationJob

pytest.importorskip("llguidance")


class Settings:
    """`ExLlamaV2Sampler.Settings`: its defaults, and `greedy()` with the penalty off."""

    def __init__(self, **kwargs: Any) -> None:
        self.temperature, self.top_p, self.top_k = 0.8, 0.8, 50
        self.token_repetition_penalty, self.token_repetition_range, self.token_repetition_decay = 1.025, -1, 0
        self.__dict__.update(kwargs)

    @staticmethod
    def greedy(**kwargs: Any) -> Settings:
        return Settings(**{"temperature": 1.0, "token_repetition_penalty": 1.0, "top_p": 0.0, "top_k": 1, **kwargs})


class Job:
    def __init__(self, *, input_ids: Any, max_new_tokens: int, gen_settings: Settings, identifier: Any, **kwargs: Any) -> None:
        self.gen_settings, self.identifier, self.new_tokens = gen_settings, identifier, 0


class Generator:
    def __init__(self, **kwargs: Any) -> None:
        self.jobs: list[Job] = []
        self.script: list[list[dict[str, Any]]] = []
        self.cancelled: list[Job] = []

    def enqueue(self, job: Job) -> None:
        self.jobs.append(job)

    def iterate(self) -> list[dict[str, Any]]:
        for job in self.jobs:
            job.new_tokens += 1  # one token per job per step, as without a draft model
        return self.script.pop(0)

    def cancel(self, job: Job) -> None:
        self.cancelled.append(job)


@pytest.fixture
def fake_exllamav2(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    class Tokenizer:
        def __init__(self, config: Any) -> None:
            pass

        def encode(self, text: str, **kwargs: Any) -> list[int]:
            return list(range(len(text.split())))

    class Model:
        def __init__(self, config: Any) -> None:
            pass

        def load_autosplit(self, cache: Any, progress: bool = False) -> None:
            pass

    package = types.ModuleType("exllamav2")
    package.ExLlamaV2Config = lambda directory: types.SimpleNamespace(max_seq_len=0)  # type: ignore[attr-defined]
    package.ExLlamaV2 = Model  # type: ignore[attr-defined]
    package.ExLlamaV2Tokenizer = Tokenizer  # type: ignore[attr-defined]
    for name in ("ExLlamaV2Cache", "ExLlamaV2Cache_Q4", "ExLlamaV2Cache_Q6", "ExLlamaV2Cache_Q8"):
        setattr(package, name, lambda model, **kwargs: object())
    generator = types.ModuleType("exllamav2.generator")
    generator.ExLlamaV2DynamicGenerator = Generator  # type: ignore[attr-defined]
    generator.ExLlamaV2DynamicJob = Job  # type: ignore[attr-defined]
    generator.ExLlamaV2Sampler = types.SimpleNamespace(Settings=Settings)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "exllamav2", package)
    monkeypatch.setitem(sys.modules, "exllamav2.generator", generator)
    return generator


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("tiny-v2"))


def test_the_penalty_replaces_exllamav2s_own_and_covers_only_the_answer(
    fake_exllamav2: types.ModuleType, tiny_model: Path
) -> None:
    backend = ExLlamaV2Backend(tiny_model, ExLlamaV2Settings())
    greedy = GenerationJob(prompt="a b c", temperature=0)
    sampled = GenerationJob(prompt="d e", temperature=0.7)
    greedy_job: Any = backend.enqueue(greedy)
    sampled_job: Any = backend.enqueue(sampled)
    for job in (greedy_job, sampled_job):  # not 1.025 over the whole sequence: 1.1 over none of it yet
        settings = job.gen_settings
        assert (settings.token_repetition_penalty, settings.token_repetition_range, settings.token_repetition_decay) == (1.1, 0, 0)
    assert sampled_job.gen_settings.temperature == 0.7 and greedy_job.gen_settings.top_k == 1
    generator: Any = backend.generator
    streaming = {"stage": "streaming", "eos": False, "text": "x"}
    generator.script = [[{**streaming, "identifier": greedy.id}, {**streaming, "identifier": sampled.id}]] * 70
    generator.script.append([{**streaming, "identifier": greedy.id, "eos": True, "eos_reason": "stop_token"}])
    for _ in range(3):
        backend.step()
    assert greedy_job.gen_settings.token_repetition_range == 3  # the three answer tokens, no prompt token
    for _ in range(67):
        backend.step()
    assert greedy_job.gen_settings.token_repetition_range == 64  # the window, once the answer is longer
    (done,) = backend.step()
    assert done.done and len(backend.penalised) == 1
    backend.cancel(sampled_job)
    assert len(backend.penalised) == 0


def test_a_penalty_of_one_turns_it_off(fake_exllamav2: types.ModuleType, tiny_model: Path) -> None:
    backend = ExLlamaV2Backend(tiny_model, ExLlamaV2Settings(repeat_penalty=1.0))
    job: Any = backend.enqueue(GenerationJob(prompt="a b", temperature=0.5))
    assert job.gen_settings.token_repetition_penalty == 1.0 and len(backend.penalised) == 0
