"""Which models a call may reach, where each runs, and which policy governs it.

A role's call can reach its model and, through litellm's Router, its fallbacks; the guard
judges every one of them. `check_policy()` is the start-up check: a run under `local-only`
whose config names a remote model fails before it starts, not halfway through.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from turnout.config import MCPServerConfig, OnForbidden, PolicyMode, Settings
from turnout.engines.privacy._locality import Locality, effective_api_base, is_loopback_url, locality_of, matches_host
from turnout.errors import ConfigError, UnknownRole
from turnout.telemetry import CaptureMode, capture_mode
from turnout.telemetry._setup import otlp_endpoint

logger = logging.getLogger("turnout")
_warned: set[str] = set()


@dataclass(frozen=True)
class Deployment:
    """One model a call may be sent to: one of the role's own servers, or a fallback."""

    model: str
    api_base: str | None
    locality: Locality
    fallback_index: int | None = None  # None: the role's own model (one of its endpoints)
    endpoint_index: int | None = None  # which of the role's endpoints, when it has several


def mcp_server_locality(config: MCPServerConfig, settings: Settings) -> Locality:
    """Where an MCP server runs: a stdio server here; a URL by its host (loopback and
    `local_hosts` are local, any other host remote), unless config declares it."""
    if config.locality != "auto":
        return config.locality
    if config.command is not None:
        return "local"
    local = is_loopback_url(config.url) or matches_host(config.url, settings.policy.local_hosts)
    return "local" if local else "remote"


def model_locality(model: str, api_base: str | None, settings: Settings, declared: str = "auto") -> Locality:
    """Where `model` runs under these settings (local_hosts and declared locality applied)."""
    return locality_of(
        model,
        effective_api_base(model, api_base),
        local_hosts=settings.policy.local_hosts,
        declared=declared,
    )


def deployments(role: str | None, model: str, api_base: str | None, settings: Settings) -> list[Deployment]:
    """The role's own model (each of its endpoints, when it has a fleet), then its fallbacks
    (a bare model string has neither endpoints nor fallbacks)."""
    if role is None:
        return [Deployment(model, api_base, model_locality(model, api_base, settings))]
    config = settings.roles.get(role)  # type: ignore[arg-type]
    if config.endpoints:
        found = [
            Deployment(
                e.model or model, e.api_base,
                model_locality(e.model or model, e.api_base, settings, e.locality or config.locality),
                endpoint_index=index,
            )
            for index, e in enumerate(config.endpoints)
        ]
    else:
        found = [Deployment(model, api_base, model_locality(model, api_base, settings, config.locality))]
    for index, fallback in enumerate(config.fallbacks):
        found.append(Deployment(fallback, None, model_locality(fallback, None, settings), index))
    return found


def own_locality(reachable: Iterable[Deployment]) -> Locality:
    """Where the role's own model runs: remote when any of its endpoints is remote, since the
    Router may pick any of them."""
    own = [d for d in reachable if d.fallback_index is None]
    return "remote" if any(d.locality == "remote" for d in own) else "local"


def served_locality(served: str, role: str | None, api_base: str | None, settings: Settings) -> Locality:
    """Where the model that answered runs (the role's declared locality covers its own model).

    `api_base`: where it answered, when the response says; otherwise the role's own."""
    if role is None:
        return model_locality(served, api_base, settings)
    config = settings.roles.get(role)  # type: ignore[arg-type]
    own = [d for d in deployments(role, config.model, config.api_base, settings) if d.fallback_index is None]
    matching = [d for d in own if d.model == served]
    if api_base is not None:
        answered = api_base.rstrip("/")
        matching = [d for d in matching if d.api_base is None or d.api_base.rstrip("/") == answered] or matching
    if matching:
        return own_locality(matching)
    return model_locality(served, None, settings)


def policy_for(role: str | None, settings: Settings) -> tuple[PolicyMode, OnForbidden]:
    return settings.policy.for_role(role)


def _role_hint(role: str, settings: Settings) -> str:
    if settings.policy.floor == "local-only":  # typed for this run: config cannot loosen it
        return f"set [roles] {role} to a local model (e.g. llamacpp/smollm2), or run without --policy local-only / --offline"
    return (
        f"set [roles] {role} to a local model (e.g. llamacpp/smollm2) or give it "
        f"[policy.roles.{role}] mode = \"no-code\""
    )


def check_policy(
    settings: Settings, *, roles: Iterable[str] | None = None, models: Mapping[str, str | None] | None = None
) -> None:
    """Raise ConfigError, before any run starts, when config contradicts the policy: a role,
    or a model the run will call (`models`: where it was named → role or model string, e.g.
    `{"[hybrid] escalate_to": "anthropic/…"}`), that is remote under `local-only`, or a
    summarizer that is not local."""
    problems: list[str] = []
    named = {where: m for where, m in (models or {}).items() if m}
    known = settings.roles.names()
    for role in dict.fromkeys([*(known if roles is None else roles), *(m for m in named.values() if m in known)]):
        mode, strategy = policy_for(role, settings)
        config = settings.roles.get(role)  # type: ignore[arg-type]
        if mode == "local-only":
            for d in deployments(role, config.model, config.api_base, settings):
                if d.locality != "remote":
                    continue
                if d.endpoint_index is not None:
                    fix = f"remove it from [roles.{role}] endpoints or add its host to [policy] local_hosts"
                    what = f"its endpoint {d.endpoint_index + 1}, {d.model} at {d.api_base},"
                elif d.fallback_index is None:
                    fix = _role_hint(role, settings)
                    what = f"its model {d.model}"
                else:
                    fix = f"remove it from [roles.{role}] fallbacks"
                    what = f"its fallback {d.fallback_index + 1} {d.model}"
                problems.append(
                    f"role {role}: {what} is remote, but policy local-only allows no remote call; {fix}"
                )
        if strategy == "summarize" and mode == "no-code":
            _check_summarizer(settings, problems)
    for server, config in settings.mcp.servers.items():
        if policy_for(None, settings)[0] == "local-only" and mcp_server_locality(config, settings) == "remote":
            problems.append(f"MCP server {server}: {config.url} is remote, but policy local-only allows no remote "
                            "call; use a local server or add its host to [policy] local_hosts")
    for where, model in named.items():
        if model in known:
            continue  # checked as a role above
        mode, _ = policy_for(None, settings)
        if mode == "local-only" and model_locality(model, None, settings) == "remote":
            problems.append(
                f"{where} = {model!r} is remote, but policy local-only allows no remote call; name a local model"
            )
    if problems:
        raise ConfigError("the configuration contradicts the privacy policy: " + "; ".join(dict.fromkeys(problems)))


def _check_summarizer(settings: Settings, problems: list[str]) -> None:
    from turnout.engines._request import resolve

    name = settings.policy.summarize_with
    try:
        target = resolve(name, settings)
    except UnknownRole:
        problems.append(f"[policy] summarize_with = {name!r} is neither a role nor a model string")
        return
    if summarizer_reaches_remote(target.role, target.model, target.api_base, settings):
        problems.append(
            f"[policy] summarize_with = {name!r} can reach a remote model ({target.model}, its endpoints "
            "or fallbacks): summaries of code must be written locally; name a local role or model "
            "(e.g. llamacpp/smollm2)"
        )


def summarizer_reaches_remote(role: str | None, model: str, api_base: str | None, settings: Settings) -> bool:
    """Whether any model the summarizer's call can reach is remote: it must see code, so its
    own model, every endpoint and every fallback must be local."""
    return any(d.locality == "remote" for d in deployments(role, model, api_base, settings))


def span_capture(settings: Settings, role: str | None) -> CaptureMode:
    """The content-capture mode for this call's span: as configured, except that a call under
    a policy other than `open` never puts message content on spans that an OTLP exporter
    would send to a collector outside this machine or `local_hosts`."""
    mode = capture_mode(settings.capture_content)
    if mode is CaptureMode.NO_CONTENT or policy_for(role, settings)[0] == "open":
        return mode
    endpoint = otlp_endpoint()
    if endpoint and not (is_loopback_url(endpoint) or matches_host(endpoint, settings.policy.local_hosts)):
        if endpoint not in _warned:
            _warned.add(endpoint)
            logger.warning(
                "message content is not captured on spans: the privacy policy is %s and traces go to "
                "%s, outside this machine (add its host to [policy] local_hosts if it is yours)",
                policy_for(role, settings)[0],
                endpoint,
            )
        return CaptureMode.NO_CONTENT
    return mode
