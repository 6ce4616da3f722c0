"""Configuration: `turnout.toml` plus `TURNOUT_*` environment overrides, loaded with pydantic-settings.

With no file and no variables every role runs on the embedded default model, so a fresh
machine works with no key, no GPU and no download.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from turnout._config_mcp import MCPServerConfig, MCPSettings
from turnout._config_policy import OnForbidden, PolicyMode, PolicySettings, RolePolicy, stricter
from turnout._config_roles import (
    DEFAULT_MODEL,
    ROLE_NAMES,
    Endpoint,
    LocalityChoice,
    RoleConfig,
    RoleName,
    Roles,
    RoutingSettings,
)
from turnout.errors import ConfigError

__all__ = [
    "CONFIG_FILE_NAME", "DEFAULT_MODEL", "ROLE_NAMES", "Endpoint", "ExLlamaV2Settings", "ExLlamaV3Settings",
    "GpuEngineSettings", "HybridSettings", "LlamaCppSettings", "LocalityChoice", "MCPServerConfig", "MCPSettings",
    "OnForbidden", "PolicyMode",
    "PolicySettings", "RoleConfig", "RoleName", "RolePolicy", "Roles", "RoutingSettings", "ServeSettings",
    "Settings", "find_config_file", "get_settings", "load_settings", "use_settings",
]

CONFIG_FILE_NAME = "turnout.toml"


class LlamaCppSettings(BaseModel):
    """`[llamacpp]`: how GGUF models are loaded; `models` maps aliases to GGUF paths."""

    model_config = ConfigDict(extra="forbid")

    n_ctx: int = Field(8192, ge=256)
    n_threads: int | None = Field(
        None, ge=1, description="Threads for generating; None: llama-cpp-python's default, half the CPUs."
    )
    n_gpu_layers: int = 0
    seed: int = 0
    repeat_penalty: float = Field(
        1.1, ge=1.0, le=2.0, description="Penalty on tokens seen in the answer's last 64: stops a model looping on one token."
    )
    frequency_penalty: float = Field(0.0, ge=0.0, le=2.0)
    presence_penalty: float = Field(0.0, ge=0.0, le=2.0)
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
    repeat_penalty: float = Field(
        1.1, ge=1.0, le=2.0, description="Penalty on tokens seen in the answer's last 64: stops a model looping on one token."
    )
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
    max_task_chars: int = Field(4000, ge=1, description="Longest task accepted, checked before any model call.")
    max_tokens: int | None = Field(None, ge=1)
    max_cost_usd: float | None = Field(None, ge=0)
    max_wall_s: float | None = Field(None, gt=0)


class RefactorSettings(BaseModel):
    """`[refactor]`: how `turnout refactor` runs a repository's own tests."""

    model_config = ConfigDict(extra="forbid")

    python: str | None = Field(
        None, description="Interpreter for the repository's tests (default: its .venv, venv or env, the active "
                          "VIRTUAL_ENV, else the environment below).",
    )
    environment: Literal["isolated", "turnout"] = Field(
        "isolated", description="When the repository brings no environment: `isolated` makes one from its declared "
                                "test dependencies (cached by their hash); `turnout` uses turnout's own Python.",
    )
    sandbox: Literal["auto", "bubblewrap", "off"] = Field(
        "auto", description="What the repository's tests and checks run under: `bubblewrap` (required), `auto` "
                            "(bubblewrap where it runs, else unsandboxed with a warning) or `off`.",
    )
    pass_env: list[str] = Field(
        default_factory=list, description="Environment variables the repository's tests get besides the allowlist "
                                          "(none of your credentials reach them otherwise).",
    )


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
    request_timeout_s: float = Field(
        15.0, gt=0, le=3600, description="A client must send a request's headers, and each part of its body, within "
                                         "this; otherwise the connection is closed (headers) or answered 408 (body).",
    )


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
    refactor: RefactorSettings = Field(default_factory=RefactorSettings)
    mcp: MCPSettings = Field(default_factory=MCPSettings)
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

    def with_policy(self, mode: str, *, everywhere: bool = False, floor: bool = False) -> Settings:
        """These settings under policy `mode` (aliases accepted); `everywhere` also replaces
        every role's own mode (how `--offline` makes a whole run local-only); `floor` makes it
        the loosest mode any role may have (a policy a person typed for this run: config can
        make a role stricter, never looser)."""
        try:
            policy = PolicySettings.model_validate({**self.policy.model_dump(), "mode": mode})
        except ValidationError:
            raise ConfigError(f"{mode!r} is not a privacy policy: use open, no-code or local-only") from None
        if floor:
            policy.floor = stricter(policy.mode, self.policy.floor)
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
        settings = Settings(**overrides)
        # a policy set in the environment is a person's choice for this run: a floor, like --policy
        if typed := next((v for k, v in os.environ.items() if k.upper() == "TURNOUT_POLICY__MODE"), None):
            settings = settings.with_policy(typed, floor=True)
        return settings
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    except (OSError, ValueError) as exc:  # TOML syntax errors are ValueErrors
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    except RecursionError:
        raise ConfigError(f"cannot read config {path}: it nests arrays or tables too deeply to be a configuration") from None
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
            problems.append(f"{key}: {error['msg'].removeprefix('Value error, ')}")
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
