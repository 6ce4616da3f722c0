"""Which models a call may reach, where each runs, and which policy governs it.

A role's call can reach its model and, through litellm's Router, its fallbacks; the guard
judges every one of them. `check_policy()` is the start-up check: a run under `local-only`
whose config names a remote model fails before it starts, not halfway through.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from turnout.config import ROLE_NAMES, OnForbidden, PolicyMode, Settings
from turnout.engines._checks import effective_api_base
from turnout.engines._locality import is_loopback_url, locality_of, matches_host
from turnout.engines._result import Locality
from turnout.errors import ConfigError
from turnout.telemetry import CaptureMode, capture_mode
from turnout.telemetry._setup import otlp_endpoint

logger = logging.getLogger("turnout")
_warned: set[str] = set()


@dataclass(frozen=True)
class Deployment:
    """One model a call may be sent to: the role's own model (index 0) or a fallback."""

    model: str
    api_base: str | None
    locality: Locality
    fallback_index: int | None = None  # None: the role's own model


def model_locality(model: str, api_base: str | None, settings: Settings, declared: str = "auto") -> Locality:
    """Where `model` runs under these settings (local_hosts and declared locality applied)."""
    return locality_of(
        model,
        effective_api_base(model, api_base),
        local_hosts=settings.policy.local_hosts,
        declared=declared,
    )


def deployments(role: str | None, model: str, api_base: str | None, settings: Settings) -> list[Deployment]:
    """The role's model and its fallbacks (a bare model string has no fallbacks)."""
    if role is None:
        return [Deployment(model, api_base, model_locality(model, api_base, settings))]
    config = settings.roles.get(role)  # type: ignore[arg-type]
    found = [Deployment(model, api_base, model_locality(model, api_base, settings, config.locality))]
    for index, fallback in enumerate(config.fallbacks):
        found.append(Deployment(fallback, None, model_locality(fallback, None, settings), index))
    return found


def served_locality(served: str, role: str | None, api_base: str | None, settings: Settings) -> Locality:
    """Where the model that answered runs (the role's declared locality covers its own model)."""
    declared = "auto"
    if role is not None:
        config = settings.roles.get(role)  # type: ignore[arg-type]
        if served == config.model:
            declared = config.locality
        else:
            api_base = None
    return model_locality(served, api_base, settings, declared)


def policy_for(role: str | None, settings: Settings) -> tuple[PolicyMode, OnForbidden]:
    return settings.policy.for_role(role)


def _role_hint(role: str) -> str:
    return (
        f"set [roles] {role} to a local model (e.g. llamacpp/smollm2) or give it "
        f"[policy.roles.{role}] mode = \"no-code\""
    )


def check_policy(
    settings: Settings, *, roles: Iterable[str] = ROLE_NAMES, models: Mapping[str, str | None] | None = None
) -> None:
    """Raise ConfigError, before any run starts, when config contradicts the policy: a role,
    or a model the run will call (`models`: where it was named → role or model string, e.g.
    `{"[hybrid] escalate_to": "anthropic/…"}`), that is remote under `local-only`, or a
    summarizer that is not local."""
    problems: list[str] = []
    named = {where: m for where, m in (models or {}).items() if m}
    for role in dict.fromkeys([*roles, *(m for m in named.values() if m in ROLE_NAMES)]):
        mode, strategy = policy_for(role, settings)
        config = settings.roles.get(role)  # type: ignore[arg-type]
        if mode == "local-only":
            for d in deployments(role, config.model, config.api_base, settings):
                if d.locality != "remote":
                    continue
                if d.fallback_index is None:
                    fix = _role_hint(role)
                    what = "its model"
                else:
                    fix = f"remove it from [roles.{role}] fallbacks"
                    what = f"its fallback {d.fallback_index + 1}"
                problems.append(
                    f"role {role}: {what} {d.model} is remote, but policy local-only allows no remote call; {fix}"
                )
        if strategy == "summarize" and mode == "no-code":
            _check_summarizer(settings, problems)
    for where, model in named.items():
        if model in ROLE_NAMES:
            continue  # checked as a role above
        mode, _ = policy_for(None, settings)
        if mode == "local-only" and model_locality(model, None, settings) == "remote":
            problems.append(
                f"{where} = {model!r} is remote, but policy local-only allows no remote call; name a local model"
            )
    if problems:
        raise ConfigError("the configuration contradicts the privacy policy: " + "; ".join(dict.fromkeys(problems)))


def _check_summarizer(settings: Settings, problems: list[str]) -> None:
    name = settings.policy.summarize_with
    if name in ROLE_NAMES:
        config = settings.roles.get(name)  # type: ignore[arg-type]
        locality = model_locality(config.model, config.api_base, settings, config.locality)
        model = config.model
    elif "/" in name:
        locality, model = model_locality(name, None, settings), name
    else:
        problems.append(f"[policy] summarize_with = {name!r} is neither a role nor a model string")
        return
    if locality != "local":
        problems.append(
            f"[policy] summarize_with = {name!r} runs on {model}, which is remote: summaries of code "
            "must be written locally; name a local role or model (e.g. llamacpp/smollm2)"
        )


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
