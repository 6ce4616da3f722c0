"""turnout: hybrid agent graphs — a planner that may use a frontier cloud model, paired with
fast local sub-agents on the team's own hardware, all behind litellm and traced with
OpenTelemetry.

Importing turnout is light: litellm, llama_cpp and torch load only when a model is called.
"""

from turnout.config import Settings, get_settings, load_settings
from turnout.engines import Completion, complete, complete_sync, stream
from turnout.errors import (
    BudgetExceeded,
    ConfigError,
    EgressRefused,
    EngineUnavailable,
    MissingCredentials,
    ModelBehaviorError,
    ModelNotFound,
    PromptTooLong,
    ReplayDiverged,
    SchemaError,
    SchemaImportError,
    SchemaRefused,
    ScriptExhausted,
    ToolDefinitionError,
    TurnoutError,
    TurnoutSignal,
    UnknownProvider,
    UnknownRole,
    UnknownRun,
    UserError,
)

__version__ = "0.1.0"

__all__ = [
    "BudgetExceeded",
    "Completion",
    "ConfigError",
    "EgressRefused",
    "EngineUnavailable",
    "MissingCredentials",
    "ModelBehaviorError",
    "ModelNotFound",
    "PromptTooLong",
    "ReplayDiverged",
    "SchemaError",
    "SchemaImportError",
    "SchemaRefused",
    "ScriptExhausted",
    "Settings",
    "ToolDefinitionError",
    "TurnoutError",
    "TurnoutSignal",
    "UnknownProvider",
    "UnknownRole",
    "UnknownRun",
    "UserError",
    "__version__",
    "complete",
    "complete_sync",
    "get_settings",
    "load_settings",
    "stream",
]
