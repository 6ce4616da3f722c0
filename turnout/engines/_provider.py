"""litellm, imported lazily and configured once, with turnout's engines as custom providers.

This is the only module that imports litellm; the rest of turnout reaches it through
`litellm_module()`, and model calls go out in one place, `_exchange.py`.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

from turnout._sync import iterate_sync, run_sync
from turnout.engines._base import EngineChunk, EngineRequest, LocalEngine
from turnout.engines._registry import LOCAL_ENGINES, get_engine
from turnout.engines.schema_bounds import grammar_schema
from turnout.engines.schema_budget import SCHEMA_MAX_TOKENS, fit_to_budget

DEFAULT_TIMEOUT_S = 600.0
TTFT_FIELD = "turnout_ttft_s"
EXTRAS_FIELD = "turnout_engine_stats"

_module: ModuleType | None = None
_module_lock = threading.Lock()
_registered: set[str] = set()


def litellm_module() -> ModuleType:
    """`import litellm`, offline and quiet, with every local engine registered as a provider
    (engines registered later with `register_engine` are added on the next call)."""
    global _module
    with _module_lock:
        if _module is None:
            # Must be set before the import: litellm otherwise fetches its cost map online.
            os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
            # Nor may it fetch anything else on its own (beta-header lists, HF tokenizers for
            # token counting): only calls to the models config names leave the machine.
            os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
            import litellm

            litellm.suppress_debug_info = True
            litellm.telemetry = False
            litellm.disable_hf_tokenizer_download = True
            _module = litellm
        if _registered != set(LOCAL_ENGINES):
            litellm = _module
            litellm.custom_provider_map = [
                *[p for p in litellm.custom_provider_map if p["provider"] not in LOCAL_ENGINES],
                *[{"provider": name, "custom_handler": _adapter(name)} for name in LOCAL_ENGINES],
            ]
            _registered.clear()
            _registered.update(LOCAL_ENGINES)
    return _module


def _seconds(timeout: Any) -> float:
    if timeout is None:
        return DEFAULT_TIMEOUT_S
    if isinstance(timeout, (int, float)):
        return float(timeout)
    for attribute in ("read", "connect", "pool"):  # httpx.Timeout
        value = getattr(timeout, attribute, None)
        if value:
            return float(value)
    return DEFAULT_TIMEOUT_S


def _request(engine: LocalEngine, model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> EngineRequest:
    """The engine's request; its schema is the one every local engine may safely decode under
    (SchemaRefused before any grammar is built for one past the limits), with free-text bounds
    fitted so the answer closes within max_tokens (see `schema_budget`)."""
    response_format = params.get("response_format") or {}
    schema = None
    if response_format.get("type") == "json_schema":
        schema = response_format["json_schema"].get("schema")
    elif response_format.get("type") == "json_object":
        schema = response_format.get("schema") or {"type": "object"}
    stop = params.get("stop") or []
    max_tokens = params.get("max_tokens") or params.get("max_completion_tokens")
    fitted = None
    if schema is not None:
        max_tokens = max_tokens or SCHEMA_MAX_TOKENS
        fitted = fit_to_budget(grammar_schema(schema), max_tokens, engine.max_bytes_per_char).schema
    return EngineRequest(
        model=model,
        messages=messages,
        max_tokens=max_tokens,
        temperature=params.get("temperature"),
        top_p=params.get("top_p"),
        stop=[stop] if isinstance(stop, str) else list(stop),
        seed=params.get("seed"),
        json_schema=fitted,
    )


async def _guarded(
    engine: LocalEngine, request: EngineRequest, timeout: Any, provider: str
) -> AsyncIterator[EngineChunk]:
    """The engine's stream under a deadline: on expiry the engine is told to stop and
    litellm.Timeout is raised, so Router retries and fallbacks fire on a hung local engine."""
    litellm = litellm_module()
    seconds = _seconds(timeout)
    deadline = asyncio.get_running_loop().time() + seconds
    chunks = engine.stream(request)
    try:
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                request.cancel.set()
                raise litellm.Timeout(
                    message=f"{provider}/{request.model} produced no answer within {seconds:g}s",
                    model=request.model,
                    llm_provider=provider,
                ) from None
            yield chunk
    finally:
        request.cancel.set()
        await chunks.aclose()  # type: ignore[attr-defined]


def _adapter(provider: str) -> Any:
    from litellm import CustomLLM
    from litellm.types.utils import GenericStreamingChunk
    from litellm.types.utils import Usage as LitellmUsage

    def to_generic(chunk: EngineChunk) -> GenericStreamingChunk:
        usage = None
        if chunk.finish_reason is not None:
            usage = {
                "prompt_tokens": chunk.input_tokens or 0,
                "completion_tokens": chunk.output_tokens or 0,
                "total_tokens": (chunk.input_tokens or 0) + (chunk.output_tokens or 0),
            }
        return GenericStreamingChunk(
            text=chunk.text,
            is_finished=chunk.finish_reason is not None,
            finish_reason=chunk.finish_reason or "",
            usage=usage,  # type: ignore[typeddict-item]
            index=0,
            tool_use=None,
            # what the engine reported beyond usage: the door reads it off the last delta
            provider_specific_fields={EXTRAS_FIELD: chunk.extras} if chunk.finish_reason is not None else None,
        )

    class EngineProvider(CustomLLM):
        """litellm's view of one turnout engine."""

        async def acompletion(self, model: str, messages: list, **kwargs: Any) -> Any:  # type: ignore[override]
            engine = get_engine(provider)
            request = _request(engine, model, messages, kwargs.get("optional_params") or {})
            started = time.perf_counter()
            ttft: float | None = None
            parts: list[str] = []
            last = EngineChunk(finish_reason="stop")
            async for chunk in _guarded(engine, request, kwargs.get("timeout"), provider):
                if chunk.text:
                    if ttft is None:
                        ttft = time.perf_counter() - started
                    parts.append(chunk.text)
                if chunk.finish_reason is not None:
                    last = chunk
            response = kwargs["model_response"]
            response.model = model
            response.choices[0].message.content = "".join(parts)
            response.choices[0].finish_reason = last.finish_reason
            prompt, completion = last.input_tokens or 0, last.output_tokens or 0
            response.usage = LitellmUsage(
                prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
            )
            response._hidden_params[TTFT_FIELD] = ttft
            response._hidden_params[EXTRAS_FIELD] = last.extras
            return response

        def completion(self, model: str, messages: list, **kwargs: Any) -> Any:  # type: ignore[override]
            return run_sync(self.acompletion(model, messages, **kwargs))

        async def astreaming(self, model: str, messages: list, **kwargs: Any) -> AsyncIterator[GenericStreamingChunk]:  # type: ignore[override]
            engine = get_engine(provider)
            request = _request(engine, model, messages, kwargs.get("optional_params") or {})
            async for chunk in _guarded(engine, request, kwargs.get("timeout"), provider):
                yield to_generic(chunk)

        def streaming(self, model: str, messages: list, **kwargs: Any) -> Iterator[GenericStreamingChunk]:  # type: ignore[override]
            return iterate_sync(self.astreaming(model, messages, **kwargs))

    return EngineProvider()
