"""`[roles]` and `[routing]`: which model each role calls, on which servers, and how
litellm's Router spreads a role's calls over them."""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

RoleName = Literal["planner", "router", "retriever", "coder", "verifier"]
ROLE_NAMES: tuple[RoleName, ...] = ("planner", "router", "retriever", "coder", "verifier")
DEFAULT_MODEL = "llamacpp/smollm2"


LocalityChoice = Literal["auto", "local", "remote"]
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ROLE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


def check_role_name(name: str, known: tuple[str, ...] = ROLE_NAMES) -> None:
    """Raise ValueError for a name that cannot be a role, or that looks like a misspelling of
    a `known` one (a role of your own must not be one letter away from `planner`)."""
    if name in known:
        return
    if not _ROLE_NAME.match(name):
        raise ValueError(
            f"unknown role {name!r}: roles are {', '.join(known)}; a role of your own is named with lowercase "
            "letters, digits, '-' and '_', starting with a letter"
        )
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
    if close:
        raise ValueError(
            f"unknown role {name!r}: roles are {', '.join(known)}; did you mean {close[0]!r}? (a role of your "
            "own needs a name that is not a near-miss of one of them)"
        )


def _has_provider(value: str) -> str:
    if "/" not in value:
        raise ValueError(
            f"model string {value!r} has no provider: write provider/name, "
            f"e.g. llamacpp/smollm2 or anthropic/claude-sonnet-4-5"
        )
    return value


class Endpoint(BaseModel):
    """One server of a role's fleet (`turnout serve`, vLLM, TabbyAPI, llama.cpp server, …):
    litellm's Router balances a role's calls over its endpoints."""

    model_config = ConfigDict(extra="forbid")

    api_base: str = Field(description="The server's OpenAI-compatible base URL, e.g. http://gpu-a:8000/v1.")
    model: str | None = Field(None, description="litellm model string at this server; default: the role's model.")
    api_key_env: str | None = Field(None, description="Environment variable holding this server's API key.")
    weight: int = Field(1, ge=1, description="Share of traffic relative to the role's other endpoints.")
    rpm: int | None = Field(None, ge=1, description="Requests per minute this server takes.")
    tpm: int | None = Field(None, ge=1, description="Tokens per minute this server takes.")
    locality: LocalityChoice | None = Field(None, description="Default: the role's locality.")

    @field_validator("model")
    @classmethod
    def _model_has_provider(cls, value: str | None) -> str | None:
        return None if value is None else _has_provider(value)

    @field_validator("api_base")
    @classmethod
    def _is_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not a server URL: write e.g. http://gpu-a:8000/v1")
        return value

    @field_validator("api_key_env")
    @classmethod
    def _is_env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not an environment variable name (the key itself never goes in config)")
        return value


class RoleConfig(BaseModel):
    """Which model a role calls, where, and what litellm's Router falls back to."""

    model_config = ConfigDict(extra="forbid")

    model: str = DEFAULT_MODEL
    api_base: str | None = None
    endpoints: list[Endpoint] = Field(
        default_factory=list,
        description="Several servers for this role, load-balanced by litellm's Router (replaces api_base).",
    )
    fallbacks: list[str] = Field(default_factory=list)
    locality: LocalityChoice = Field(
        "auto",
        description="auto: in-process engines and loopback servers are local, the rest remote. "
        "Declare 'remote' for a loopback proxy that forwards to a cloud model.",
    )

    @field_validator("model")
    @classmethod
    def _model_has_provider(cls, value: str) -> str:
        return _has_provider(value)

    @model_validator(mode="after")
    def _one_way_to_name_servers(self) -> RoleConfig:
        if self.api_base and self.endpoints:
            raise ValueError("give either api_base or endpoints, not both: put each server's api_base in endpoints")
        return self


def _role(value: Any) -> Any:
    return {"model": value} if isinstance(value, str) else value


class Roles(BaseModel):
    """`[roles]`: each role is a model string or a table `{model, api_base, fallbacks}`. The
    five built-in roles always exist; any other name is a role of your own (`triage = …`),
    with fallbacks, endpoints and `[policy.roles.NAME]` like the built-ins."""

    model_config = ConfigDict(extra="allow")

    # `str | RoleConfig` lets TURNOUT_ROLES__PLANNER=provider/name arrive as a plain string;
    # the validator turns every value into a RoleConfig.
    planner: str | RoleConfig = Field(default_factory=RoleConfig)
    router: str | RoleConfig = Field(default_factory=RoleConfig)
    retriever: str | RoleConfig = Field(default_factory=RoleConfig)
    coder: str | RoleConfig = Field(default_factory=RoleConfig)
    verifier: str | RoleConfig = Field(default_factory=RoleConfig)

    @field_validator(*ROLE_NAMES, mode="before")
    @classmethod
    def _as_role_config(cls, value: Any) -> RoleConfig:
        return RoleConfig.model_validate(_role(value))

    @model_validator(mode="before")
    @classmethod
    def _own_role_names(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in data:
                check_role_name(str(name))
        return data

    @model_validator(mode="after")
    def _own_roles_as_config(self) -> Roles:
        own = self.__pydantic_extra__ or {}
        for name, value in own.items():
            own[name] = RoleConfig.model_validate(_role(value))
        return self

    def get(self, role: str) -> RoleConfig:
        """The role's config; a role nobody configured calls the default model."""
        config = getattr(self, role) if role in ROLE_NAMES else (self.__pydantic_extra__ or {}).get(role, RoleConfig())
        assert isinstance(config, RoleConfig)
        return config

    def names(self) -> tuple[str, ...]:
        """The built-in roles, then the configured ones of your own."""
        return (*ROLE_NAMES, *(self.__pydantic_extra__ or {}))

    def configured(self, role: str) -> bool:
        return role in ROLE_NAMES or role in (self.__pydantic_extra__ or {})


class RoutingSettings(BaseModel):
    """`[routing]`: how litellm's Router spreads a role's calls over its endpoints."""

    model_config = ConfigDict(extra="forbid")

    strategy: Literal["simple-shuffle", "least-busy", "latency-based-routing", "usage-based-routing-v2"] = Field(
        "simple-shuffle", description="litellm routing strategy (simple-shuffle honours endpoint weights)."
    )
    allowed_fails: int = Field(
        0, ge=0, description="Failures in a minute a fleet's endpoint may have before it is set aside (cooled down)."
    )
    cooldown_s: float = Field(30.0, ge=0, description="How long a failing fleet endpoint is set aside.")
