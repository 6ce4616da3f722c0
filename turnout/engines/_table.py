"""Each role's model, where it runs, the policy it is under and whether it can run here: the
table `turnout engines` prints, as data any caller can read (`engine_table`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel

from turnout.config import Settings, get_settings
from turnout.engines._checks import check_endpoint, check_model, check_role
from turnout.engines.privacy import deployments, mcp_server_locality, own_locality
from turnout.errors import TurnoutError


class EngineRow(BaseModel):
    """One role, or one endpoint or fallback under the role above it."""

    kind: Literal["role", "endpoint", "fallback", "mcp"]
    role: str
    model: str  # with its server (`model @ api_base`) for an endpoint
    locality: str
    policy: str | None = None  # a role's mode (and its no-code strategy); None on the rows under it
    unavailable: str | None = None  # why it cannot run here; None: it can
    endpoint: int | None = None  # an endpoint's number in its role's fleet, from 1


def engine_table(settings: Settings | None = None) -> list[EngineRow]:
    """Every role's row, each followed by one row per endpoint of its fleet and per fallback."""
    settings = settings or get_settings()
    rows: list[EngineRow] = []
    for role in settings.roles.names():
        config = settings.roles.get(role)
        mode, strategy = settings.policy.for_role(role)
        reachable = deployments(role, config.model, config.api_base, settings)
        label = f"{config.model} ({len(config.endpoints)} endpoints)" if config.endpoints else config.model
        rows.append(EngineRow(kind="role", role=role, model=label, locality=own_locality(reachable),
                              policy=f"{mode} ({strategy})" if mode == "no-code" else mode,
                              unavailable=_why_not(check_role, role, config)))
        for d in reachable:
            if d.endpoint_index is not None:
                endpoint = config.endpoints[d.endpoint_index]
                rows.append(EngineRow(kind="endpoint", role=role, model=f"{d.model} @ {d.api_base}", locality=d.locality,
                                      endpoint=d.endpoint_index + 1,
                                      unavailable=_why_not(check_endpoint, role, d.endpoint_index, endpoint, config.model)))
            elif d.fallback_index is not None:
                rows.append(EngineRow(kind="fallback", role=role, model=d.model, locality=d.locality,
                                      unavailable=_why_not(check_model, d.model)))
    for server, config in settings.mcp.servers.items():  # MCP servers whose tools agents may call
        rows.append(EngineRow(kind="mcp", role=server, model=config.url or " ".join(config.command or []),
                              locality=mcp_server_locality(config, settings)))
    return rows


def _why_not(check: Callable[..., None], *args: Any) -> str | None:
    try:
        check(*args)
    except TurnoutError as exc:
        return str(exc)
    return None
