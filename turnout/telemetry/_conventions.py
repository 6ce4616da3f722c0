"""The attribute names turnout puts on spans, in one place.

GenAI names come from `opentelemetry-semantic-conventions` (its incubating GenAI module,
which the OpenTelemetry project is moving to a separate GenAI conventions package); names
the package lacks, and turnout's own `turnout.*` and `langgraph.*` names, are defined here.
"""

from __future__ import annotations

from opentelemetry.semconv._incubating.attributes.gen_ai_attributes import (
    GEN_AI_AGENT_NAME,
    GEN_AI_CONVERSATION_ID,
    GEN_AI_INPUT_MESSAGES,
    GEN_AI_OPERATION_NAME,
    GEN_AI_OUTPUT_MESSAGES,
    GEN_AI_PROVIDER_NAME,
    GEN_AI_REQUEST_MAX_TOKENS,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_REQUEST_STREAM,
    GEN_AI_REQUEST_TEMPERATURE,
    GEN_AI_RESPONSE_FINISH_REASONS,
    GEN_AI_RESPONSE_MODEL,
    GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
    GEN_AI_TOOL_CALL_ID,
    GEN_AI_TOOL_DESCRIPTION,
    GEN_AI_TOOL_NAME,
    GEN_AI_TOOL_TYPE,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_WORKFLOW_NAME,
    GenAiOperationNameValues,
    GenAiProviderNameValues,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE

CHAT = GenAiOperationNameValues.CHAT.value
INVOKE_AGENT = GenAiOperationNameValues.INVOKE_AGENT.value
INVOKE_WORKFLOW = GenAiOperationNameValues.INVOKE_WORKFLOW.value
EXECUTE_TOOL = GenAiOperationNameValues.EXECUTE_TOOL.value

# The GenAI event that carries message content when it is captured as events.
INFERENCE_DETAILS_EVENT = "gen_ai.client.inference.operation.details"

TURNOUT_ROLE = "turnout.role"
TURNOUT_MODEL = "turnout.model"
TURNOUT_LOCALITY = "turnout.locality"
TURNOUT_ENGINE = "turnout.engine"
TURNOUT_TTFT_S = "turnout.time_to_first_token_s"
TURNOUT_TOKENS_PER_S = "turnout.tokens_per_s"
TURNOUT_COST_USD = "turnout.cost_usd"
TURNOUT_ATTEMPTS = "turnout.attempts"
TURNOUT_ENGINE_STATS = "turnout.engine_stats"  # + ".batched", ".queue_wait_s", ".cached_tokens", …

# The egress guard's record of a model call (`.<kind>` suffixes: one attribute per content kind).
EGRESS_POLICY = "turnout.egress.policy"
EGRESS_DECISION = "turnout.egress.decision"  # local | sent | rewritten | refused
EGRESS_STRATEGY = "turnout.egress.strategy"
EGRESS_REMOTE_MODELS = "turnout.egress.remote_models"
EGRESS_DROPPED_FALLBACKS = "turnout.egress.dropped_fallbacks"
EGRESS_REFUSED_PART = "turnout.egress.refused_part"
EGRESS_SENT_BYTES = "turnout.egress.sent_bytes"  # total; + ".<kind>"
EGRESS_SOURCE_BYTES = "turnout.egress.source_bytes_sent"  # source text, diffs, test/tool output, untagged
EGRESS_PARTS = "turnout.egress.parts"  # + ".<kind>"
EGRESS_WITHHELD_BYTES = "turnout.egress.withheld_bytes"  # + ".<kind>"

TURNOUT_REPLAY_OF = "turnout.replay.of"  # on a replay's root span: the run it replays
TURNOUT_RUN_STATUS = "turnout.run.status"  # on the root span: the last "status" a node of the run returned
# Run statuses that mean the run did not do what it was asked: its root span's status is ERROR.
UNSUCCESSFUL_RUN_STATUSES = frozenset({"failed", "stuck", "budget_exceeded", "unanswered"})

LANGGRAPH_NODE = "langgraph.node"
LANGGRAPH_STEP = "langgraph.step"
LANGGRAPH_CHECKPOINT_ID = "langgraph.checkpoint.id"
LANGGRAPH_CHECKPOINT_NS = "langgraph.checkpoint.ns"

# litellm provider prefix → the conventions' well-known gen_ai.provider.name value.
_PROVIDERS = {
    "openai": GenAiProviderNameValues.OPENAI.value,
    "anthropic": GenAiProviderNameValues.ANTHROPIC.value,
    "azure": GenAiProviderNameValues.AZURE_AI_OPENAI.value,
    "azure_ai": GenAiProviderNameValues.AZURE_AI_INFERENCE.value,
    "bedrock": GenAiProviderNameValues.AWS_BEDROCK.value,
    "vertex_ai": GenAiProviderNameValues.GCP_VERTEX_AI.value,
    "gemini": GenAiProviderNameValues.GCP_GEMINI.value,
    "cohere": GenAiProviderNameValues.COHERE.value,
    "mistral": GenAiProviderNameValues.MISTRAL_AI.value,
    "groq": GenAiProviderNameValues.GROQ.value,
    "deepseek": GenAiProviderNameValues.DEEPSEEK.value,
    "xai": GenAiProviderNameValues.X_AI.value,
    "perplexity": GenAiProviderNameValues.PERPLEXITY.value,
    "watsonx": GenAiProviderNameValues.IBM_WATSONX_AI.value,
}


def provider_name(litellm_provider: str) -> str:
    """`gen_ai.provider.name` for a litellm provider prefix (turnout's engines keep their own)."""
    return _PROVIDERS.get(litellm_provider, litellm_provider)


__all__ = [
    "ERROR_TYPE",
    "GEN_AI_AGENT_NAME",
    "GEN_AI_CONVERSATION_ID",
    "GEN_AI_INPUT_MESSAGES",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_OUTPUT_MESSAGES",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_REQUEST_MAX_TOKENS",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_REQUEST_STREAM",
    "GEN_AI_REQUEST_TEMPERATURE",
    "GEN_AI_RESPONSE_FINISH_REASONS",
    "GEN_AI_RESPONSE_MODEL",
    "GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK",
    "GEN_AI_TOOL_CALL_ID",
    "GEN_AI_TOOL_DESCRIPTION",
    "GEN_AI_TOOL_NAME",
    "GEN_AI_TOOL_TYPE",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "GEN_AI_WORKFLOW_NAME",
]
