"""The OpenAI chat-completions wire format, as pydantic models: what clients send and get.

Requests are checked as strictly as OpenAI checks them (an unknown argument is a 400, not
silently ignored), so a client learns at once what this server does not do.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from turnout.engines.schema_bounds import check_schema
from turnout.errors import SchemaRefused

# Arguments OpenAI accepts that change nothing here: bookkeeping, caching, routing hints.
IGNORED_ARGUMENTS = (
    "user", "metadata", "store", "service_tier", "safety_identifier", "prompt_cache_key",
    "prompt_cache_retention", "parallel_tool_calls",
)
# Arguments that would change the answer in ways the local engines cannot: rejected unless
# they carry their neutral value (clients often send `presence_penalty: 0`, `tools: []`).
_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "tools": (None, []), "tool_choice": (None, "none"), "functions": (None, []), "function_call": (None, "none"),
    "logprobs": (None, False), "top_logprobs": (None, 0), "logit_bias": (None, {}),
    "presence_penalty": (None, 0, 0.0), "frequency_penalty": (None, 0, 0.0), "audio": (None,),
    "modalities": (None, ["text"]), "prediction": (None,), "web_search_options": (None,),
}
# Message keys a client may echo back from an earlier response (`message.model_dump()`).
_ECHOED_MESSAGE_KEYS = ("refusal", "annotations", "audio", "function_call", "tool_calls")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    """One message of the conversation: text only (a string or text parts), no tool calls."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    name: str | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts_only(cls, content: Any) -> Any:
        if isinstance(content, list):
            for index, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                if kind != "text":
                    raise ValueError(f"part {index} is {kind!r}: only text content parts are supported")
        return content

    @model_validator(mode="after")
    def _no_tool_calls(self) -> ChatMessage:
        for key, value in (self.model_extra or {}).items():
            if key not in _ECHOED_MESSAGE_KEYS:
                raise ValueError(f"unknown message field {key!r}")
            if value not in (None, [], ""):
                raise ValueError(f"{key} is not supported: turnout serve answers with text, without tool calls")
        return self

    def as_door_message(self) -> dict[str, str]:
        """Role and text, as local chat templates take them (`developer` is a system prompt)."""
        text = self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": text}


class JsonSchemaSpec(_Strict):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    schema_: dict[str, Any] = Field(default_factory=lambda: {"type": "object"}, alias="schema")
    strict: bool | None = None

    @field_validator("schema_")
    @classmethod
    def _is_a_json_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        from jsonschema import (  # a dependency of litellm, so always here
            SchemaError,
            validators,
        )

        try:  # the limits first: a schema nested thousands deep would overflow the meta-check
            check_schema(schema)
        except SchemaRefused as exc:
            raise ValueError(str(exc)) from None
        try:
            validators.validator_for(schema).check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON schema: {exc.message}") from None
        return schema


class ResponseFormat(_Strict):
    """`text`, `json_object` (any JSON object) or `json_schema` (an object following a schema)."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None

    @model_validator(mode="after")
    def _schema_with_its_type(self) -> ResponseFormat:
        if (self.type == "json_schema") != (self.json_schema is not None):
            raise ValueError("json_schema is given with, and only with, type 'json_schema'")
        return self


class StreamOptions(_Strict):
    include_usage: bool = False
    include_obfuscation: bool | None = None


class ChatCompletionRequest(_Strict):
    """`POST /v1/chat/completions`: the arguments turnout's local engines can honour."""

    model: str
    messages: list[ChatMessage]
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = None
    response_format: ResponseFormat | None = None
    # Accepted, with no effect (see IGNORED_ARGUMENTS) or only in their neutral value (_NEUTRAL).
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    parallel_tool_calls: bool | None = None
    tools: Any = None
    tool_choice: Any = None
    functions: Any = None
    function_call: Any = None
    logprobs: Any = None
    top_logprobs: Any = None
    logit_bias: Any = None
    presence_penalty: Any = None
    frequency_penalty: Any = None
    audio: Any = None
    modalities: Any = None
    prediction: Any = None
    web_search_options: Any = None

    @field_validator("messages")
    @classmethod
    def _some_messages(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        if not messages:
            raise ValueError("at least one message is required")
        return messages

    @field_validator("n")
    @classmethod
    def _one_choice(cls, n: int | None) -> int | None:
        if n is not None and n != 1:
            raise ValueError(f"n = {n}: turnout serve returns one choice per request; send {n} requests instead")
        return n

    @field_validator("stop")
    @classmethod
    def _at_most_four_stops(cls, stop: str | list[str] | None) -> str | list[str] | None:
        if isinstance(stop, list) and len(stop) > 4:
            raise ValueError(f"at most 4 stop sequences, got {len(stop)}")
        return stop

    @field_validator(*_NEUTRAL)
    @classmethod
    def _only_neutral(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and value not in _NEUTRAL[info.field_name or ""]:
            raise ValueError(f"{info.field_name} is not supported by turnout serve (local engines answer with text or JSON)")
        return value

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    @property
    def json_schema(self) -> dict[str, Any] | None:
        """The JSON schema the answer must follow, if the client asked for JSON."""
        response_format = self.response_format
        if response_format is None or response_format.type == "text":
            return None
        if response_format.json_schema is not None:
            return response_format.json_schema.schema_
        return {"type": "object"}


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, input_tokens: int, output_tokens: int) -> Usage:
        return cls(prompt_tokens=input_tokens, completion_tokens=output_tokens, total_tokens=input_tokens + output_tokens)


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    logprobs: None = None
    finish_reason: str


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class ChatCompletion(BaseModel):
    id: str = Field(default_factory=completion_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: None = None


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    logprobs: None = None
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    system_fingerprint: None = None

    def sse(self) -> str:
        """This chunk as one server-sent event (`usage` only on the chunk that carries it)."""
        body = self.model_dump_json(exclude={"usage"} if self.usage is None else None)
        return f"data: {body}\n\n"


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "turnout"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def finish_reason(engine_reason: str | None) -> str:
    """OpenAI's finish reasons are `stop` and `length` here; engines may say more
    (`cancelled`, `eos`, …), which clients read as a normal stop."""
    return "length" if engine_reason == "length" else "stop"
