"""turnout's exceptions: one small hierarchy, each message saying what happened and what to do.

Three families, as in pydantic-ai: caller mistakes (`UserError` and its children), run
failures (`ModelBehaviorError`, `EngineUnavailable`), and control-flow signals (none yet).
"""

from __future__ import annotations


class TurnoutError(Exception):
    """Base of every error turnout raises on purpose."""


class UserError(TurnoutError):
    """The caller asked for something that cannot work as given; the message says the fix."""


class ConfigError(UserError):
    """Configuration (turnout.toml, TURNOUT_* variables, arguments) is invalid."""


class UnknownRole(ConfigError):
    """A role name that is not one of turnout's roles."""


class UnknownProvider(ConfigError):
    """A model string whose provider neither turnout nor litellm knows."""


class ModelNotFound(ConfigError):
    """A local model (GGUF file, model directory, alias) that does not exist."""


class MissingCredentials(ConfigError):
    """A remote model whose API key is not in the environment."""


class SchemaImportError(UserError):
    """An output schema given as `module:Class` that cannot be imported or is no pydantic model."""


class SchemaRefused(UserError):
    """An output schema past the limits turnout keeps before building a grammar from it
    (`turnout.engines.schema_bounds`); the message names the limit."""


class PromptTooLong(UserError):
    """A prompt (with its max_tokens) longer than the model's context window; nothing was generated."""


class EngineUnavailable(TurnoutError):
    """The engine cannot run on this machine (package missing, no CUDA, ...)."""


class ModelBehaviorError(TurnoutError):
    """A model answered, but not with something usable."""


class SchemaError(ModelBehaviorError):
    """A model's output did not validate against the requested schema, even after one retry."""

    def __init__(
        self,
        message: str,
        *,
        raw_text: str,
        model: str,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        finish_reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.raw_text = raw_text
        self.model = model
        self.input_tokens = input_tokens  # summed over the attempts
        self.output_tokens = output_tokens
        self.finish_reason = finish_reason  # of the last attempt: "length" means it was cut off


class BudgetExceeded(TurnoutError):
    """A run reached one of its limits (turns, tokens, cost, wall time) before it had an
    answer; `transcript` holds the conversation so far."""

    def __init__(self, message: str, *, limit: str, transcript: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.transcript = transcript or []


class ToolDefinitionError(UserError):
    """A Python function cannot be made a tool as written (the message names the parameter)."""


class ScriptExhausted(ModelBehaviorError):
    """A scripted engine was asked for more responses than its script holds."""


class UnknownRun(UserError):
    """A run id (or prefix) that matches no stored trace, or more than one."""


class EgressRefused(TurnoutError):
    """The privacy policy forbids sending this payload to this model; nothing was sent."""

    def __init__(
        self, message: str, *, role: str | None, model: str, policy: str, part: str | None, report: object = None
    ) -> None:
        super().__init__(message)
        self.role = role
        self.model = model
        self.policy = policy
        self.part = part
        self.report = report


class TurnoutSignal(Exception):
    """Control flow, not failure: graphs and agents let these through instead of catching them."""


class ReplayDiverged(TurnoutSignal):
    """A replayed run asked for a model call the recording does not hold."""

    def __init__(self, message: str, *, node: str | None, step: int | None, requested: str) -> None:
        super().__init__(message)
        self.node = node
        self.step = step
        self.requested = requested
