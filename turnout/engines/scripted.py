"""The `scripted/<name>` engine: deterministic answers from a list, a callable or a file.

It is how tests pin model behaviour and how recorded runs are replayed. It is a real engine
behind the same litellm door as every other, not a mock: schemas, streaming, usage, timeouts,
retries and fallbacks all behave as they do for llama.cpp or a cloud model.

    from turnout.engines import scripted
    scripted.register("router", ['{"route": "coder"}'])
    await complete("scripted/router", "where does this go?")

Usage is counted in whitespace-separated words, so token counts are deterministic too.
"""

from __future__ import annotations

import inspect
import json
import re
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

from pydantic import BaseModel

from turnout.engines._auto_answer import auto_answer
from turnout.engines._base import EngineChunk, EngineRequest, LocalEngine, message_text
from turnout.errors import ConfigError, ModelNotFound, ScriptExhausted

class Reply(BaseModel):
    """A scripted answer with the usage and finish reason to report (replay answers with the
    recorded numbers, so a replayed run's usage matches the original's)."""

    text: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    finish_reason: str | None = None


ScriptItem: TypeAlias = str | dict[str, Any] | list[Any] | BaseModel
# Called with the messages, or with the messages and the JSON schema the answer must follow
# (None for plain text), when it takes two arguments.
Responder: TypeAlias = (
    Callable[[list[dict[str, Any]]], ScriptItem | Awaitable[ScriptItem]]
    | Callable[[list[dict[str, Any]], dict[str, Any] | None], ScriptItem | Awaitable[ScriptItem]]
)

_WORDS = re.compile(r"\s*\S+\s*|\s+")


def _as_text(item: ScriptItem) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, BaseModel):
        return item.model_dump_json()
    return json.dumps(item)


def _as_reply(item: ScriptItem) -> Reply:
    return item if isinstance(item, Reply) else Reply(text=_as_text(item))


def _takes_two(responder: Callable[..., Any]) -> bool:
    """Whether a responder takes the schema too (a second positional parameter)."""
    try:
        parameters = list(inspect.signature(responder).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in parameters)


def count_words(text: str) -> int:
    return len(text.split())


class Script:
    """A source of responses: a sequence (used in order), a callable, or a recorded file;
    `Script.auto()` answers any schema with its smallest valid instance.

    Every request's messages are kept in `calls`, so tests can assert what the model saw. A
    Script is itself a model: pass it where a role or model string goes
    (`Agent(model=script)`, `build_hybrid_graph(models={"planner": script})`).
    """

    def __init__(self, responses: Sequence[ScriptItem] | Responder, *, name: str = "script") -> None:
        self.name = name
        self.calls: list[list[dict[str, Any]]] = []
        self._lock = threading.Lock()
        if callable(responses):
            self._responder: Responder | None = responses
            self._responses: list[ScriptItem] = []
            self._wants_schema = _takes_two(responses)
        elif isinstance(responses, (str, bytes)):
            raise ConfigError(
                f"script {name!r}: give a list of responses, a callable, or Script.from_file(path); "
                "a bare string is ambiguous"
            )
        else:
            self._responder = None
            self._wants_schema = False
            self._responses = list(responses)

    @classmethod
    def auto(cls, *, name: str = "auto") -> Script:
        """Answers every call with the smallest answer its schema accepts (see `_auto_answer`),
        plain text when there is none: a graph runs end to end with no JSON written by hand."""
        return cls(lambda messages, schema: auto_answer(schema), name=name)

    @property
    def model(self) -> str:
        """This script as a model string, `scripted/<name>`, for as long as the script is
        alive (under a name of its own if another script holds its name)."""
        with _scripts_lock:
            if _scripts.get(self.name) is not self and _passed_in.get(self.name) is not self:
                if self.name in _scripts or self.name in _passed_in:
                    self.name = f"{self.name}-{id(self):x}"
                _passed_in[self.name] = self
        return f"scripted/{self.name}"

    @classmethod
    def from_file(cls, path: Path | str, *, name: str | None = None) -> Script:
        """Load responses from `.json` (a list) or `.jsonl` (one JSON value per line).

        Strings are used as raw text; any other JSON value is sent as its JSON text.
        """
        path = Path(path)
        try:
            raw = path.read_text(encoding="utf-8")
            if path.suffix == ".jsonl":
                items = [json.loads(line) for line in raw.splitlines() if line.strip()]
            else:
                items = json.loads(raw)
        except FileNotFoundError:
            raise ModelNotFound(f"script file {path} does not exist") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"script file {path} is not valid JSON/JSONL: {exc}") from None
        if not isinstance(items, list):
            raise ConfigError(f"script file {path} must hold a JSON list of responses")
        return cls(items, name=name or path.stem)

    @property
    def remaining(self) -> int | None:
        """Responses left, or None for a callable script."""
        return None if self._responder else len(self._responses) - len(self.calls)

    async def respond(self, messages: list[dict[str, Any]], schema: dict[str, Any] | None = None) -> str:
        return (await self.reply(messages, schema)).text

    async def reply(self, messages: list[dict[str, Any]], schema: dict[str, Any] | None = None) -> Reply:
        """The next answer, as a Reply (plain items carry no usage of their own)."""
        with self._lock:
            index = len(self.calls)
            self.calls.append(messages)
            if self._responder is None:
                if index >= len(self._responses):
                    raise ScriptExhausted(
                        f"script {self.name!r} is exhausted: it holds {len(self._responses)} "
                        f"response(s) and call {index + 1} asked for another; add responses "
                        "or register a callable"
                    )
                return _as_reply(self._responses[index])
        answer = self._responder(messages, schema) if self._wants_schema else self._responder(messages)  # type: ignore[call-arg]
        if inspect.isawaitable(answer):
            answer = await answer
        return _as_reply(answer)


_scripts: dict[str, Script] = {}
# Scripts passed in as objects (`Script.model`): gone with the object, never left behind.
_passed_in: weakref.WeakValueDictionary[str, Script] = weakref.WeakValueDictionary()
_scripts_lock = threading.Lock()


def register(name: str, responses: Script | Sequence[ScriptItem] | Responder) -> Script:
    """Make `scripted/<name>` answer from `responses`; replaces any script of that name."""
    script = responses if isinstance(responses, Script) else Script(responses, name=name)
    with _scripts_lock:
        _scripts[name] = script
    return script


def unregister(name: str) -> None:
    with _scripts_lock:
        _scripts.pop(name, None)


@contextmanager
def scripted(name: str, responses: Script | Sequence[ScriptItem] | Responder) -> Iterator[Script]:
    """Register a script for the duration of a `with` block (handy in tests)."""
    script = register(name, responses)
    try:
        yield script
    finally:
        unregister(name)


def lookup(name: str) -> Script:
    """The script behind `scripted/<name>`: a registered one, or a `.json`/`.jsonl` file path."""
    with _scripts_lock:
        script = _scripts.get(name) or _passed_in.get(name)
    if script is not None:
        return script
    if name.endswith((".json", ".jsonl")):
        return register(name, Script.from_file(name))
    known = ", ".join(sorted(_scripts)) or "none"
    raise ModelNotFound(
        f"no script named {name!r} (registered: {known}); register one with "
        f"turnout.engines.scripted.register({name!r}, [...]) or give a .json/.jsonl path"
    )


class ScriptedEngine(LocalEngine):
    provider: ClassVar[str] = "scripted"

    def check(self, model: str) -> None:
        lookup(model)

    def describe(self, model: str) -> str:
        remaining = lookup(model).remaining
        return f"script {model!r}" + ("" if remaining is None else f", {remaining} response(s) left")

    async def stream(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        script = lookup(request.model)
        reply = await script.reply(request.messages, request.json_schema)
        text = reply.text
        if reply.finish_reason is None and request.max_tokens is not None and count_words(text) > request.max_tokens:
            text = "".join(_WORDS.findall(text)[: request.max_tokens]).rstrip()
            finish_reason = "length"
        else:
            finish_reason = reply.finish_reason or "stop"
        for piece in _WORDS.findall(text):
            if request.cancel.is_set():
                return
            yield EngineChunk(text=piece)
        input_tokens = sum(count_words(message_text(m)) for m in request.messages)
        yield EngineChunk(
            finish_reason=finish_reason,
            input_tokens=reply.input_tokens if reply.input_tokens is not None else input_tokens,
            output_tokens=reply.output_tokens if reply.output_tokens is not None else count_words(text),
        )
