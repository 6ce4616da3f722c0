"""Where a model runs: `local` (in-process engines, servers on loopback or on hosts config
declares local) or `remote`."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Literal
from urllib.parse import urlparse

from turnout.engines._registry import is_local_provider

Locality = Literal["local", "remote"]


def split_model(model: str) -> tuple[str, str]:
    """`provider/name` → (provider, name); the name may itself contain slashes."""
    provider, sep, name = model.partition("/")
    return (provider, name) if sep else ("", model)


def _host_port(url: str) -> tuple[str, int | None]:
    parsed = urlparse(url if "//" in url else f"//{url}")
    try:
        port = parsed.port
    except ValueError:
        port = None
    return (parsed.hostname or "").lower(), port


def is_loopback_url(url: str | None) -> bool:
    if not url:
        return False
    host, _ = _host_port(url)
    return is_loopback_host(host)


def is_loopback_host(host: str) -> bool:
    """`localhost`, a `*.localhost` name, or a loopback address (IPv6 in brackets or not)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def matches_host(url: str | None, rules: Sequence[str]) -> bool:
    """Whether `url`'s host is one of `rules`: a name, `name:port`, or a CIDR network."""
    if not url or not rules:
        return False
    host, port = _host_port(url)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for rule in rules:
        if "/" in rule:
            if address is not None and address in ipaddress.ip_network(rule, strict=False):
                return True
            continue
        rule_host, rule_port = _host_port(rule)
        if rule_host == host and (rule_port is None or rule_port == port):
            return True
    return False


def locality_of(
    model: str,
    api_base: str | None = None,
    *,
    local_hosts: Sequence[str] = (),
    declared: str = "auto",
) -> Locality:
    """`local` for in-process engines and for models served from loopback or `local_hosts`;
    `declared` ('local'/'remote', from a role's config) overrides that judgement for servers."""
    provider, _ = split_model(model)
    if is_local_provider(provider) and declared != "remote":
        return "local"
    if declared in ("local", "remote"):
        return declared  # type: ignore[return-value]
    if is_loopback_url(api_base) or matches_host(api_base, local_hosts):
        return "local"
    return "remote"


def effective_api_base(model: str, api_base: str | None) -> str | None:
    """The base URL a remote model will be called at (litellm's default when none is set)."""
    provider, _ = split_model(model)
    if api_base or is_local_provider(provider):
        return api_base
    from turnout.engines._provider import litellm_module

    try:
        return litellm_module().get_llm_provider(model)[3]
    except Exception:
        return None
