"""What one model call returns: text or a validated object, usage, locality and timings."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from turnout.engines.privacy._egress import EgressReport
from turnout.engines.privacy._locality import Locality
from turnout.engines.tool_calls import ToolCall

OutputT = TypeVar("OutputT", bound=BaseModel)


class Usage(BaseModel):
    """Token counts as the engine reported them (summed over schema re-asks)."""

    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
        )


class Timings(BaseModel):
    """Wall-clock timings of one call; `ttft_s` is None where the engine cannot tell."""

    model_config = ConfigDict(frozen=True)

    total_s: float
    ttft_s: float | None = None
    tokens_per_s: float | None = None

    @classmethod
    def measure(cls, total_s: float, ttft_s: float | None, output_tokens: int) -> Timings:
        decode_s = total_s - ttft_s if ttft_s is not None else total_s
        rate = output_tokens / decode_s if output_tokens and decode_s > 0 else None
        return cls(total_s=total_s, ttft_s=ttft_s, tokens_per_s=rate)


class Completion(BaseModel, Generic[OutputT]):
    """The answer of `turnout.engines.complete()`.

    `output` holds the validated schema object when a schema was asked for; `text` always
    holds the raw text the model produced.
    """

    text: str
    output: OutputT | None = None
    tool_calls: list[ToolCall] = Field(
        default_factory=list, description="The tools the model called (its arguments validated), in order."
    )
    model: str = Field(description="The litellm model string that answered (after fallbacks).")
    requested: str = Field(description="The role or model string the caller asked for.")
    role: str | None = None
    provider: str
    locality: Locality
    finish_reason: str | None = None
    usage: Usage = Field(default_factory=Usage)
    timings: Timings
    cost_usd: float | None = Field(None, description="litellm's cost; 0 for local engines.")
    attempts: int = Field(1, description="1 + schema re-asks.")
    engine_stats: dict[str, Any] = Field(
        default_factory=dict,
        description="What the engine reported beyond usage (GPU engines: batched, queue_wait_s, "
        "cached_tokens, …); empty for engines that report nothing more.",
    )
    egress: EgressReport | None = Field(
        None, description="The egress guard's decision and the bytes sent to remote models, by kind."
    )

    def message(self) -> dict[str, Any]:
        """The answer as the assistant message that continues the conversation: its text,
        tagged as the model's, and its tool calls."""
        from turnout.engines import tag

        message: dict[str, Any] = {"role": "assistant", "content": tag.summary(self.text, origin=self.model) if self.text else None}
        if self.tool_calls:
            message["tool_calls"] = [call.openai() for call in self.tool_calls]
        return message

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
