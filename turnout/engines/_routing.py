"""A litellm Router per settings: one model group per role, with the role's fallbacks.

Retries, timeouts and fallbacks are litellm's; turnout only says which models form a role.
"""

from __future__ import annotations

import threading
from typing import Any

from turnout.config import ROLE_NAMES, Settings
from turnout.engines._provider import litellm_module

_routers: dict[str, Any] = {}
_lock = threading.Lock()


def _deployment(group: str, model: str, api_base: str | None, timeout_s: float) -> dict[str, Any]:
    params: dict[str, Any] = {"model": model, "timeout": timeout_s}
    if api_base:
        params["api_base"] = api_base
    return {"model_name": group, "litellm_params": params}


def fallback_group(role: str, index: int) -> str:
    return f"{role}~fallback{index}"


def router_for(settings: Settings) -> Any:
    """The Router for these settings (built once per distinct configuration)."""
    key = settings.model_dump_json()
    with _lock:
        router = _routers.get(key)
        if router is None:
            model_list = []
            fallbacks = []
            for role in ROLE_NAMES:
                config = settings.roles.get(role)
                model_list.append(_deployment(role, config.model, config.api_base, settings.timeout_s))
                groups = []
                for index, model in enumerate(config.fallbacks):
                    groups.append(fallback_group(role, index))
                    model_list.append(_deployment(groups[-1], model, None, settings.timeout_s))
                if groups:
                    fallbacks.append({role: groups})
            router = litellm_module().Router(
                model_list=model_list,
                fallbacks=fallbacks,
                timeout=settings.timeout_s,
                # A failing local engine is not "cooled down" for a minute: it is the only one.
                disable_cooldowns=True,
            )
            _routers[key] = router
        return router
