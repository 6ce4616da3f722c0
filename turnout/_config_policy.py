"""`[policy]`: what the egress guard lets reach remote models."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from turnout._config_roles import DEFAULT_MODEL, check_role_name

PolicyMode = Literal["open", "no-code", "local-only"]
OnForbidden = Literal["refuse", "redact", "outline", "summarize"]
_MODE_ALIASES = {"all": "open", "none": "local-only", "offline": "local-only", "no_code": "no-code"}
STRICTNESS: dict[str, int] = {"open": 0, "no-code": 1, "local-only": 2}


def stricter(a: PolicyMode, b: PolicyMode | None) -> PolicyMode:
    return b if b is not None and STRICTNESS[b] > STRICTNESS[a] else a


def _mode(value: Any) -> Any:
    return _MODE_ALIASES.get(value, value) if isinstance(value, str) else value



def _role_key(name: str) -> str:
    check_role_name(name)
    return name

class RolePolicy(BaseModel):
    """`[policy.roles.<role>]`: this role's own policy (unset keys follow `[policy]`)."""

    model_config = ConfigDict(extra="forbid")

    mode: PolicyMode | None = None
    on_forbidden: OnForbidden | None = None

    @field_validator("mode", mode="before")
    @classmethod
    def _alias(cls, value: Any) -> Any:
        return _mode(value)


class PolicySettings(BaseModel):
    """`[policy]`: what may be sent to remote models (the egress guard).

    open: anything; no-code: the request, paths, signatures and text written by model agents,
    never source text, diffs or test output; local-only: no remote call at all.
    """

    model_config = ConfigDict(extra="forbid")

    mode: PolicyMode = "open"
    on_forbidden: OnForbidden = Field(
        "refuse",
        description="What the guard does with a payload the policy forbids: refuse the call, "
        "redact the forbidden parts, outline code as its signatures, or summarize it locally.",
    )
    summarize_with: str = Field(DEFAULT_MODEL, description="Local role or model that writes summaries.")
    local_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts (name, name:port, or CIDR such as 10.0.0.0/8) whose servers count as local.",
    )
    roles: dict[Annotated[str, AfterValidator(_role_key)], RolePolicy] = Field(default_factory=dict)
    floor: PolicyMode | None = Field(None, description=(
        "The loosest mode any role may have, whatever [policy.roles] says: set by --policy, --offline and "
        "TURNOUT_POLICY__MODE, which a person typed for this run."))

    @field_validator("mode", "floor", mode="before")
    @classmethod
    def _alias(cls, value: Any) -> Any:
        return _mode(value)

    @field_validator("roles", mode="before")
    @classmethod
    def _role_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"mode": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("local_hosts")
    @classmethod
    def _hosts_parse(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if "/" in host:
                try:
                    ipaddress.ip_network(host, strict=False)
                except ValueError:
                    raise ValueError(f"{host!r} is not a network: write e.g. 10.0.0.0/8") from None
            elif not host or any(c.isspace() for c in host) or "://" in host:
                raise ValueError(f"{host!r} is not a host: write a name, name:port, or a CIDR network")
        return hosts

    def for_role(self, role: str | None) -> tuple[PolicyMode, OnForbidden]:
        """The mode and strategy that apply to calls made through `role` (None: a model string):
        the role's own mode, else `[policy] mode`, never looser than `floor`."""
        own = self.roles.get(role) if role else None  # type: ignore[call-overload]
        mode = stricter(own.mode if own and own.mode else self.mode, self.floor)
        strategy = own.on_forbidden if own and own.on_forbidden else self.on_forbidden
        return mode, strategy
