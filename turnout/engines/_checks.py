"""Checks made before a call is sent: is the provider known, the model present, the key set?

They turn what would be a deep litellm or llama.cpp traceback into one line naming the fix.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from turnout.config import Endpoint, RoleConfig
from turnout.engines.privacy._locality import is_loopback_url, split_model
from turnout.engines._registry import LOCAL_ENGINES, get_engine, is_local_provider
from turnout.errors import MissingCredentials, TurnoutError, UnknownProvider
from turnout.telemetry._redact import is_secret_name


# Keys litellm's validate_environment does not ask for, though the provider needs them.
_UNCHECKED_KEYS: dict[str, tuple[str, ...]] = {"azure_ai": ("AZURE_AI_API_KEY",)}


def check_model(model: str, api_base: str | None = None) -> None:
    """Raise a TurnoutError saying what is wrong with `model` and how to fix it."""
    provider, name = split_model(model)
    if is_local_provider(provider):
        get_engine(provider).check(name)
        return
    default_base = _default_base(model, api_base)
    if is_loopback_url(api_base or default_base):
        return
    from turnout.engines._provider import litellm_module

    # litellm counts a key that is set but empty as present; the provider then fails mid-call.
    empty = {name for name, value in os.environ.items() if is_secret_name(name) and not value.strip()}
    with _hidden(empty):
        needed = litellm_module().validate_environment(model, api_base=api_base).get("missing_keys", [])
    missing = [key for key in needed if is_secret_name(key)]
    missing += [key for key in _UNCHECKED_KEYS.get(provider, ()) if key not in missing and not os.environ.get(key, "").strip()]
    if missing:
        said = [f"{key} (set, but empty)" if key in empty else key for key in missing]
        raise MissingCredentials(
            f"{model} needs {' and '.join(said)} in the environment: export it, "
            "or point the role at a local model (e.g. llamacpp/smollm2)"
        )


@contextlib.contextmanager
def _hidden(names: set[str]) -> Iterator[None]:
    """os.environ without `names` for the length of the block (litellm reads it directly)."""
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def _default_base(model: str, api_base: str | None) -> str | None:
    """The provider's base URL for `model`; UnknownProvider when litellm knows no such provider."""
    from turnout.engines._provider import litellm_module

    try:
        return litellm_module().get_llm_provider(model, api_base=api_base)[3]
    except Exception:
        provider, _ = split_model(model)
        raise UnknownProvider(
            f"unknown provider {provider or model!r} in model {model!r}: use one of turnout's "
            f"engines ({', '.join(f'{p}/…' for p in LOCAL_ENGINES)}) or a litellm provider "
            "(anthropic/…, openai/…, azure_ai/…, ollama/…, hosted_vllm/…)"
        ) from None


def check_role(role: str, config: RoleConfig) -> None:
    """`check_model` for a role: each of its endpoints when it has a fleet (an endpoint's key
    comes from its own `api_key_env`, not the provider's usual variable)."""
    if not config.endpoints:
        check_model(config.model, config.api_base)
        return
    for index, endpoint in enumerate(config.endpoints):
        check_endpoint(role, index, endpoint, config.model)


def check_endpoint(role: str, index: int, endpoint: Endpoint, role_model: str) -> None:
    """Raise UnknownProvider or MissingCredentials when one server of a fleet cannot be called."""
    from turnout.engines._routing import endpoint_key

    _default_base(endpoint.model or role_model, endpoint.api_base)
    endpoint_key(role, index, endpoint)


def availability(model: str, api_base: str | None = None) -> str | None:
    """None when `model` can be called here, otherwise why not (for `turnout engines`)."""
    try:
        check_model(model, api_base)
    except TurnoutError as exc:
        return str(exc)
    return None
