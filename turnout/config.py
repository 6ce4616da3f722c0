"""Configuration: `turnout.toml` plus `TURNOUT_*` environment overrides, loaded with pydantic-settings.

With no file and no variables every role runs on the embedded default model, so a fresh
machine works with no key, no GPU and no download.
"""

from __future__ import annotations

import ipaddress
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from turnout.errors import ConfigError

RoleName = Literal["planner", "router", "retriever", "coder", "verifier"]
ROLE_NAMES: tuple[RoleName, ...] = ("planner", "router", "retriever", "coder", "verifier")
DEFAULT_MODEL = "llamacpp/smollm2"
CONFIG_FILE_NAME = "turnout.toml"


LocalityChoice = Literal["auto", "local", "remote"]
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
    """`[roles]`: each role is a model string or a table `{model, api_base, fallbacks}`."""

    model_config = ConfigDict(extra="forbid")

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

    def get(self, role: RoleName) -> RoleConfig:
        config = getattr(self, role)
        assert isinstance(config, RoleConfig)
        return config


class LlamaCppSettings(BaseModel):
    """`[llamacpp]`: how GGUF models are loaded; `models` maps aliases to GGUF paths."""

    model_config = ConfigDict(extra="forbid")

    n_ctx: int = Field(4096, ge=256)
    n_threads: int | None = Field(None, ge=1)
    n_gpu_layers: int = 0
    seed: int = 0
    models: dict[str, Path] = Field(default_factory=dict)


class GpuEngineSettings(BaseModel):
    """A GPU engine's cache, batching and placement; `models` maps aliases to model directories."""

    model_config = ConfigDict(extra="forbid")

    cache_tokens: int = Field(16384, ge=256, description="Paged KV cache size shared by all jobs.")
    cache_quant: Literal["FP16", "Q4", "Q6", "Q8"] = "FP16"
    max_batch_size: int = Field(16, ge=1)
    max_seq_len: int = Field(4096, ge=256, description="Longest prompt + answer per job.")
    gpu_split: list[float] | None = Field(None, description="GB per GPU; None: autosplit.")
    max_tokens: int = Field(1024, ge=1, description="Answer length when the call sets none.")
    models: dict[str, Path] = Field(default_factory=dict)

    @field_validator("cache_tokens", "max_seq_len")
    @classmethod
    def _multiple_of_256(cls, value: int) -> int:
        if value % 256:
            raise ValueError(f"must be a multiple of 256 (the paged cache's page size), e.g. {value // 256 * 256 or 256}")
        return value


class ExLlamaV2Settings(GpuEngineSettings):
    """`[exllamav2]`: model directories hold EXL2, GPTQ or fp16 safetensors with a tokenizer.json."""


class ExLlamaV3Settings(GpuEngineSettings):
    """`[exllamav3]`: model directories hold EXL3 or fp16 safetensors with a tokenizer.json."""


class HybridSettings(BaseModel):
    """`[hybrid]`: how the planner/sub-agent graph escalates, asks, and stops."""

    model_config = ConfigDict(extra="forbid")

    escalate_to: str | None = Field(
        None,
        description="Role or model string of the remote tier (e.g. 'planner'); None: never escalate.",
    )
    min_confidence: float = Field(0.5, ge=0, le=1, description="Router confidence below this escalates.")
    approve_remote: bool = Field(False, description="Interrupt for human approval before remote calls.")
    verify_with_model: bool = Field(False, description="Also ask the verifier about each sub-agent result.")
    max_steps: int = Field(24, ge=1, description="Sub-agent steps per run.")
    max_rounds: int = Field(4, ge=1, description="Plan/replan rounds per run.")
    max_tokens: int | None = Field(None, ge=1)
    max_cost_usd: float | None = Field(None, ge=0)
    max_wall_s: float | None = Field(None, gt=0)


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


class ServeSettings(BaseModel):
    """`[serve]`: `turnout serve`, the OpenAI-compatible HTTP API over this machine's engines."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Address to bind; anything but loopback needs api_key.")
    port: int = Field(8000, ge=0, le=65535)
    api_key: SecretStr | None = Field(
        None, description="Bearer key clients must send (TURNOUT_SERVE__API_KEY); required off loopback."
    )
    models: list[str] = Field(
        default_factory=list,
        description="Model strings to serve (in-process engines only); empty: every local role's model.",
    )
    max_concurrency: int = Field(4, ge=1, description="Requests generating at once.")
    max_queue: int = Field(32, ge=0, description="Requests waiting for a slot; beyond this, 429.")
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body; beyond this, 413.")
    max_tokens: int = Field(2048, ge=1, description="Cap on max_tokens a client may ask for.")


PolicyMode = Literal["open", "no-code", "local-only"]
OnForbidden = Literal["refuse", "redact", "outline", "summarize"]
_MODE_ALIASES = {"all": "open", "none": "local-only", "offline": "local-only", "no_code": "no-code"}


def _mode(value: Any) -> Any:
    return _MODE_ALIASES.get(value, value) if isinstance(value, str) else value


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
    roles: dict[RoleName, RolePolicy] = Field(default_factory=dict)

    @field_validator("mode", mode="before")
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
        """The mode and strategy that apply to calls made through `role` (None: a model string)."""
        own = self.roles.get(role) if role else None  # type: ignore[call-overload]
        mode = own.mode if own and own.mode else self.mode
        strategy = own.on_forbidden if own and own.on_forbidden else self.on_forbidden
        return mode, strategy


class Settings(BaseSettings):
    """Everything turnout reads from `turnout.toml` and `TURNOUT_*` variables."""

    model_config = SettingsConfigDict(
        env_prefix="TURNOUT_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    roles: Roles = Field(default_factory=Roles)
    timeout_s: float = Field(120.0, gt=0, description="Per-call timeout, local and remote.")
    remote_retries: int = Field(2, ge=0, description="Router retries for remote models.")
    local_retries: int = Field(0, ge=0, description="Router retries for in-process engines.")
    schema_retries: int = Field(1, ge=0, description="Re-asks after an output fails its schema.")
    llamacpp: LlamaCppSettings = Field(default_factory=LlamaCppSettings)
    exllamav2: ExLlamaV2Settings = Field(default_factory=ExLlamaV2Settings)
    exllamav3: ExLlamaV3Settings = Field(default_factory=ExLlamaV3Settings)
    hybrid: HybridSettings = Field(default_factory=HybridSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    checkpoints: str = Field(
        ".turnout/checkpoints.sqlite",
        description="Graph checkpoints of CLI runs: a SQLite file, or a postgres://user:password@host/db URL.",
    )
    traces_dir: str = Field(
        ".turnout/traces", description="Where trace files go; 'off' or '' turns them off."
    )
    trace_console: bool = Field(False, description="Also print spans to the console.")
    record_calls: bool = Field(
        True, description="Record every model call beside its trace (traces_dir/calls) for replay and diff."
    )
    capture_content: Literal["NO_CONTENT", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT"] | None = Field(
        None,
        description="Record prompts/completions on spans; None defers to "
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT.",
    )

    def with_policy(self, mode: str, *, everywhere: bool = False) -> Settings:
        """These settings under policy `mode` (aliases accepted); `everywhere` also replaces
        every role's own mode (how `--offline` makes a whole run local-only)."""
        try:
            policy = PolicySettings.model_validate({**self.policy.model_dump(), "mode": mode})
        except ValidationError:
            raise ConfigError(f"{mode!r} is not a privacy policy: use open, no-code or local-only") from None
        if everywhere:
            policy.roles = {role: own.model_copy(update={"mode": None}) for role, own in policy.roles.items()}
        return self.model_copy(update={"policy": policy})

    @property
    def policy_configured(self) -> bool:
        """Whether config (file or TURNOUT_POLICY__MODE) chose the policy mode itself."""
        return "mode" in self.policy.model_fields_set

    @property
    def traces_path(self) -> Path | None:
        """The trace directory, or None when trace files are turned off."""
        if self.traces_dir.strip().lower() in ("", "off", "none", "false"):
            return None
        return Path(self.traces_dir).expanduser()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_path.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


_config_path: ContextVar[Path | None] = ContextVar("turnout_config_path", default=None)
_current: Settings | None = None


def find_config_file(start: Path | None = None) -> Path | None:
    """`turnout.toml` in the working directory, if there is one."""
    candidate = (start or Path.cwd()) / CONFIG_FILE_NAME
    return candidate if candidate.is_file() else None


def load_settings(path: Path | str | None = None, **overrides: Any) -> Settings:
    """Read settings from `path` (or `./turnout.toml`) and the environment.

    Raises ConfigError naming the offending key when anything is malformed.
    """
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist; pass an existing --config file")
    else:
        path = find_config_file()
    token = _config_path.set(path)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    except (OSError, ValueError) as exc:  # TOML syntax errors are ValueErrors
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    finally:
        _config_path.reset(token)


def _describe(exc: ValidationError, path: Path | None) -> str:
    where = f"in {path}" if path else "in TURNOUT_* variables"
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            problems.append(f"{key}: unknown key{_role_hint(error['loc'])}")
        else:
            problems.append(f"{key}: {error['msg']}")
    return f"invalid configuration {where}: " + "; ".join(problems)


def _role_hint(loc: tuple[Any, ...]) -> str:
    if len(loc) == 2 and loc[0] == "roles":
        return f" (roles are {', '.join(ROLE_NAMES)})"
    return ""


def get_settings() -> Settings:
    """The process-wide settings, loaded on first use."""
    global _current
    if _current is None:
        _current = load_settings()
    return _current


def use_settings(settings: Settings | None) -> None:
    """Install `settings` as the process-wide settings (None: reload on next use)."""
    global _current
    _current = settings
