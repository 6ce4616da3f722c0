"""The one place in-process engines are registered, by provider name.

Engines are imported on first use, so `import turnout` never loads llama_cpp or torch.
"""

from __future__ import annotations

import importlib
import threading

from turnout.engines._base import LocalEngine

LOCAL_ENGINES: dict[str, str] = {
    "exllamav2": "turnout.engines.exllamav2:ExLlamaV2Engine",
    "exllamav3": "turnout.engines.exllamav3:ExLlamaV3Engine",
    "llamacpp": "turnout.engines.llamacpp:LlamaCppEngine",
    "scripted": "turnout.engines.scripted:ScriptedEngine",
}

_instances: dict[str, LocalEngine] = {}
_lock = threading.Lock()


def register_engine(provider: str, engine: str | type[LocalEngine]) -> None:
    """Make `provider/<model>` strings run on `engine` (a LocalEngine class, or its
    "module:Class" path to import on first use), behind litellm like the built-in ones."""
    if not provider.isidentifier():
        raise ValueError(f"engine provider {provider!r} must be an identifier, e.g. 'myengine'")
    with _lock:
        LOCAL_ENGINES[provider] = engine if isinstance(engine, str) else f"{engine.__module__}:{engine.__qualname__}"
        _instances.pop(provider, None)


def is_local_provider(provider: str) -> bool:
    return provider in LOCAL_ENGINES


def get_engine(provider: str) -> LocalEngine:
    """The process-wide engine for `provider` (KeyError if it is not a local provider)."""
    with _lock:
        engine = _instances.get(provider)
        if engine is None:
            module_name, _, class_name = LOCAL_ENGINES[provider].partition(":")
            engine_cls = getattr(importlib.import_module(module_name), class_name)
            engine = _instances[provider] = engine_cls()
        return engine
