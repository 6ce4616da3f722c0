"""A model directory's chat template, rendered exactly as transformers' `apply_chat_template`.

The exllama libraries take a prompt string and know nothing of chat templates, so the GPU
engines render messages themselves. Fidelity matters: a model sees the prompt it was
trained on only if the template runs in the same Jinja environment as in transformers —
sandboxed, `trim_blocks` and `lstrip_blocks`, `loopcontrols`, the `{% generation %}` tag,
the `raise_exception` and `strftime_now` globals, a `tojson` that neither escapes HTML nor
ASCII-fies, and the tokenizer's special tokens (`bos_token`, `eos_token`, …) as variables.

Where the template comes from, in transformers' order: `chat_template.jinja` in the model
directory, else `chat_template` in `tokenizer_config.json` (a string, or a list of named
templates of which `default` is used). Only when neither exists does `ChatTemplate` fall
back to ChatML (`<|im_start|>role\\ncontent<|im_end|>\\n` per message, then
`<|im_start|>assistant\\n`) and say so in `is_fallback`; a model without a template was
usually not chat-tuned, and ChatML is the most common format among those that were.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from turnout.engines._base import message_text
from turnout.errors import ConfigError, ModelNotFound, UserError

CHATML_FALLBACK = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# The special tokens transformers passes to a template (its `special_tokens_map`).
SPECIAL_TOKEN_KEYS = (
    "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token",
)
TEMPLATE_FILE = "chat_template.jinja"
CONFIG_FILE = "tokenizer_config.json"


@dataclass(frozen=True)
class ChatTemplate:
    """A Jinja chat template plus the special tokens it is rendered with."""

    source: str
    special_tokens: dict[str, str] = field(default_factory=dict)
    is_fallback: bool = False
    origin: str = "<string>"

    @classmethod
    def from_model_dir(cls, path: Path, *, name: str | None = None) -> ChatTemplate:
        """The template of the model in `path`; `name` picks one of several named templates."""
        path = Path(path)
        if not path.is_dir():
            raise ModelNotFound(f"model directory {path} does not exist")
        config = read_json(path / CONFIG_FILE)
        special = _special_tokens(config)
        template_file = path / TEMPLATE_FILE
        if template_file.is_file():
            source, origin = template_file.read_text(encoding="utf-8"), str(template_file)
        elif config.get("chat_template") is not None:
            source = _pick(config["chat_template"], name, path / CONFIG_FILE)
            origin = str(path / CONFIG_FILE)
        else:
            return cls(CHATML_FALLBACK, special, is_fallback=True, origin="ChatML fallback")
        template = cls(source, special, origin=origin)
        template.compile()
        return template

    @property
    def bos_token(self) -> str | None:
        return self.special_tokens.get("bos_token")

    @property
    def eos_token(self) -> str | None:
        return self.special_tokens.get("eos_token")

    def compile(self) -> Any:
        """The compiled Jinja template (cached per source); ConfigError if it does not parse."""
        import jinja2

        try:
            return _compile(self.source)
        except jinja2.TemplateSyntaxError as error:
            raise ConfigError(
                f"the chat template in {self.origin} is not valid Jinja "
                f"(line {error.lineno}: {error.message}); fix or remove it"
            ) from error

    def render(
        self,
        messages: list[dict[str, Any]],
        *,
        add_generation_prompt: bool = True,
        tools: list[dict[str, Any]] | None = None,
        **variables: Any,
    ) -> str:
        """The prompt for `messages`, ending with the assistant's header by default.

        Content given as a list of parts is reduced to its text. UserError if the template
        refuses the conversation (`raise_exception`, e.g. roles that do not alternate).
        """
        import jinja2

        compiled = self.compile()
        try:
            return compiled.render(
                messages=[_plain(message) for message in messages],
                tools=tools,
                documents=None,
                add_generation_prompt=add_generation_prompt,
                **{**self.special_tokens, **variables},
            )
        except jinja2.TemplateError as error:
            raise UserError(
                f"the chat template in {self.origin} refused these messages: {error}"
            ) from error


def cached_chat_template(path: Path) -> ChatTemplate:
    """`ChatTemplate.from_model_dir(path)`, read again only when its files change: engines
    render a prompt per call and should not re-read and re-parse JSON each time."""
    path = Path(path)
    return _cached_template(path, tuple(_stamp(p) for p in (path, path / TEMPLATE_FILE, path / CONFIG_FILE)))


@lru_cache(maxsize=32)
def _cached_template(path: Path, stamp: tuple[tuple[int, int] | None, ...]) -> ChatTemplate:
    return ChatTemplate.from_model_dir(path)


def _stamp(path: Path) -> tuple[int, int] | None:
    """When and how big `path` was last written; None when it does not exist."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def _plain(message: dict[str, Any]) -> dict[str, Any]:
    if isinstance(message.get("content"), list):
        return {**message, "content": message_text(message)}
    return message


def read_json(path: Path) -> dict[str, Any]:
    """A model directory's JSON file as a dict; {} when the file is absent."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON ({error}); the model directory is broken")
    return data if isinstance(data, dict) else {}


def _special_tokens(config: dict[str, Any]) -> dict[str, str]:
    """Special tokens as strings; tokenizer configs give them as strings or AddedToken dicts."""
    tokens = {}
    for key in SPECIAL_TOKEN_KEYS:
        value = config.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if isinstance(value, str):
            tokens[key] = value
    return tokens


def _pick(template: str | list[dict[str, str]], name: str | None, origin: Path) -> str:
    if isinstance(template, str):
        return template
    named = {entry["name"]: entry["template"] for entry in template}
    wanted = name or "default"
    if wanted not in named:
        raise ConfigError(
            f"{origin} has no chat template named {wanted!r} (it has {', '.join(sorted(named))})"
        )
    return named[wanted]


@lru_cache(maxsize=32)
def _compile(source: str) -> Any:
    """The environment transformers builds in `_compile_jinja_template`, minus its tracker."""
    import jinja2
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationBlock(Extension):
        """`{% generation %}…{% endgeneration %}` marks assistant text for training masks;
        rendering a prompt needs only its body."""

        tags: ClassVar[set[str]] = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return jinja2.nodes.Scope(body).set_lineno(lineno)

    def raise_exception(message: str) -> None:
        raise jinja2.TemplateError(message)

    def tojson(
        value: Any,
        ensure_ascii: bool = False,
        indent: int | None = None,
        separators: tuple[str, str] | None = None,
        sort_keys: bool = False,
    ) -> str:
        return json.dumps(
            value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
            sort_keys=sort_keys,
        )

    def strftime_now(format: str) -> str:
        return datetime.now().strftime(format)

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlock, jinja2.ext.loopcontrols]
    )
    environment.filters["tojson"] = tojson
    environment.globals["raise_exception"] = raise_exception
    environment.globals["strftime_now"] = strftime_now
    return environment.from_string(source)
