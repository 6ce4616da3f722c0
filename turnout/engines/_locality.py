"""Where a model runs: `local` (in-process engines, servers on loopback) or `remote`."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlparse

from turnout.engines._registry import is_local_provider
from turnout.engines._result import Locality


def split_model(model: str) -> tuple[str, str]:
    """`provider/name` → (provider, name); the name may itself contain slashes."""
    provider, sep, name = model.partition("/")
    return (provider, name) if sep else ("", model)


def is_loopback_url(url: str | None) -> bool:
    if not url:
        return False
    host = urlparse(url if "//" in url else f"//{url}").hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def locality_of(model: str, api_base: str | None = None) -> Locality:
    """`local` for in-process engines and for any model served from a loopback address."""
    provider, _ = split_model(model)
    if is_local_provider(provider) or is_loopback_url(api_base):
        return "local"
    return "remote"
