"""The model layer: everything below litellm, and the one door above it.

`complete()` / `complete_sync()` / `stream()` call any role or litellm model string.
In-process engines (`llamacpp/…`, `scripted/…`) are registered as litellm custom
providers, so a role moves between local and cloud by changing one string in config.
"""

from turnout.engines._base import EngineChunk, EngineRequest, LocalEngine
from turnout.engines._registry import register_engine
from turnout.engines._checks import availability, check_model
from turnout.engines._table import EngineRow, engine_table
from turnout.engines._door import CompletionStream, complete, complete_sync, stream
from turnout.engines._request import Target, resolve
from turnout.engines import tag
from turnout.engines.privacy import EgressReport, check_policy, locality_of, model_locality
from turnout.engines._meter import UsageMeter, UsageTotals, usage_meter
from turnout.engines._result import Completion, Locality, Timings, Usage
from turnout.engines.tool_calls import ToolCall, ToolCallDelta, ToolSpec

__all__ = [
    "Completion",
    "CompletionStream",
    "EgressReport",
    "EngineChunk",
    "EngineRow",
    "EngineRequest",
    "LocalEngine",
    "Locality",
    "Target",
    "Timings",
    "ToolCall",
    "ToolCallDelta",
    "ToolSpec",
    "Usage",
    "UsageMeter",
    "UsageTotals",
    "availability",
    "check_model",
    "check_policy",
    "complete",
    "complete_sync",
    "engine_table",
    "locality_of",
    "model_locality",
    "register_engine",
    "resolve",
    "stream",
    "tag",
    "usage_meter",
]
