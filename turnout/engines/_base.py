"""The contract every in-process engine implements: one required method, `stream`.

Engines know nothing of litellm; `_provider.py` adapts any of them into a litellm custom
provider, so retries, fallbacks and the Router apply to local and remote models alike.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class EngineRequest(BaseModel):
    """One chat request as an engine sees it: the model name has no provider prefix."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str
    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None
    json_schema: dict[str, Any] | None = None
    cancel: threading.Event = Field(default_factory=threading.Event, exclude=True)


class EngineChunk(BaseModel):
    """A piece of streamed output; the last one carries finish_reason, usage and `extras`:
    what an engine knows beyond usage (batched, queue wait, cached prompt tokens, …)."""

    text: str = ""
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    extras: dict[str, Any] = Field(default_factory=dict)


class LocalEngine(ABC):
    """An in-process engine registered under `provider` (e.g. `llamacpp`)."""

    provider: ClassVar[str]
    # The most bytes one character of a JSON string can take in this engine's decoding grammar
    # (6: a `\u00e9`-style escape); schema bounds are fitted to max_tokens with it (`schema_budget`).
    max_bytes_per_char: ClassVar[int] = 6
    # Whether a schema whose answers are a short list (`choices`) is decided by scoring them.
    scores_choices: ClassVar[bool] = False

    def check(self, model: str) -> None:
        """Raise ModelNotFound or EngineUnavailable if `model` cannot run here. Must be cheap."""

    def describe(self, model: str) -> str:
        """A short human description of what `model` resolves to (for `turnout engines`)."""
        return model

    @abstractmethod
    def stream(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        """Generate for `request`, yielding text chunks; the last chunk has finish_reason.

        Engines must stop promptly once `request.cancel` is set (timeouts, cancellation).
        """


def message_text(message: dict[str, Any]) -> str:
    """The text of a chat message whose content may be a string or a list of parts."""
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))


def plain_messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Messages reduced to role + text, which is all local chat templates understand."""
    return [{"role": m.get("role", "user"), "content": message_text(m)} for m in messages]
