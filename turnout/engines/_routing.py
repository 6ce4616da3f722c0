"""A litellm Router per settings: one model group per role, with the role's fallbacks.

A role with `endpoints` is a fleet: its group holds one deployment per server, and the Router
balances calls over them (`[routing] strategy`), sets a failing server aside for a while and
retries on another. Retries, timeouts, balancing and fallbacks are litellm's; turnout only says
which models and servers form a role.
"""

from __future__ import annotations

import json

import os
import threading
from typing import Any

from turnout.config import Endpoint, Settings
from turnout.engines._provider import litellm_module
from turnout.errors import MissingCredentials

_routers: dict[str, Any] = {}
_lock = threading.Lock()


def _deployment(group: str, model: str, api_base: str | None, settings: Settings) -> dict[str, Any]:
    params: dict[str, Any] = {"model": model, "timeout": settings.timeout_s}
    if api_base:
        params["api_base"] = api_base
    # A deployment-level allowed_fails keeps litellm from ever setting aside the only
    # deployment of a group (one in-process engine has no stand-in), while a fleet's
    # failing server is set aside after that many failures.
    return {"model_name": group, "litellm_params": params, "model_info": {"allowed_fails": settings.routing.allowed_fails}}


def _endpoint_deployment(role: str, index: int, endpoint: Endpoint, model: str, settings: Settings) -> dict[str, Any]:
    deployment = _deployment(role, endpoint.model or model, endpoint.api_base, settings)
    params = deployment["litellm_params"]
    # Checked per call (check_role): a key missing for one role must not stop every other role.
    params["api_key"] = endpoint_key(role, index, endpoint, required=False)
    params["weight"] = endpoint.weight
    params.update({name: value for name in ("rpm", "tpm") if (value := getattr(endpoint, name)) is not None})
    deployment["model_info"]["id"] = endpoint_id(role, index)
    return deployment


def endpoint_key(role: str, index: int, endpoint: Endpoint, *, required: bool = True) -> str:
    """The API key for one endpoint: from its `api_key_env` variable, or a placeholder for a
    server that takes none (OpenAI-compatible clients refuse to send no key at all)."""
    if endpoint.api_key_env is None:
        return "none"
    key = os.environ.get(endpoint.api_key_env)
    if not key and not required:
        return "none"
    if not key:
        raise MissingCredentials(
            f"[roles.{role}] endpoint {index + 1} ({endpoint.api_base}) takes its API key from "
            f"{endpoint.api_key_env}, which is not set: export it, or drop api_key_env for a server without a key"
        )
    return key


def endpoint_id(role: str, index: int) -> str:
    return f"{role}~endpoint{index}"


def fallback_group(role: str, index: int) -> str:
    return f"{role}~fallback{index}"


def endpoint_retries(settings: Settings, role: str | None) -> int:
    """Retries that let a fleet's call reach each of its servers once."""
    if role is None:
        return 0
    return max(len(settings.roles.get(role).endpoints) - 1, 0)  # type: ignore[arg-type]


def router_for(settings: Settings, role: str | None = None) -> Any:
    """The Router for these settings (built once per distinct configuration), with every
    configured role, and `role` too when it is one nobody configured (the default model)."""
    roles = settings.roles.names()
    if role is not None and role not in roles:
        roles = (*roles, role)
    key = json.dumps([settings.model_dump_json(), roles])
    with _lock:
        router = _routers.get(key)
        if router is None:
            router = _build(settings, roles)
            _routers[key] = router
        return router


def _build(settings: Settings, roles: tuple[str, ...]) -> Any:
    model_list = []
    fallbacks = []
    for role in roles:
        config = settings.roles.get(role)
        if config.endpoints:
            model_list.extend(
                _endpoint_deployment(role, index, endpoint, config.model, settings)
                for index, endpoint in enumerate(config.endpoints)
            )
        else:
            model_list.append(_deployment(role, config.model, config.api_base, settings))
        groups = []
        for index, model in enumerate(config.fallbacks):
            groups.append(fallback_group(role, index))
            model_list.append(_deployment(groups[-1], model, None, settings))
        if groups:
            fallbacks.append({role: groups})
    return litellm_module().Router(
        model_list=model_list,
        fallbacks=fallbacks,
        timeout=settings.timeout_s,
        routing_strategy=settings.routing.strategy,
        cooldown_time=settings.routing.cooldown_s,
    )
