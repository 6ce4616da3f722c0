"""Tagged prompt content: every piece of a prompt says what it is, so the egress guard knows
what a payload holds without guessing.

    from turnout.engines import tag

    prompt = tag.compose(
        "Request: {request}\\n\\nCode:\\n{code}",
        request=tag.request(user_request),
        code=tag.code(snippet, origin="shop/pricing.py:4-9"),
    )
    await complete("coder", [{"role": "user", "content": prompt}])

The literal text of a template is `instructions` (the developer wrote it); a plain string
passed as content or as a template value is `untagged`, which `no-code` treats like source
text: tag what you send, or it does not leave the machine under that policy.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypeAlias, get_args

from pydantic import BaseModel, ConfigDict

ContentKind = Literal[
    "instructions",  # prompt text written by turnout or the developer (templates, schemas)
    "request",  # free text from the user: the task, the refactoring request
    "path",  # file paths and module names
    "signature",  # symbol names and signatures
    "summary",  # text a model agent wrote: plans, summaries, explanations, verdicts
    "code",  # source text from a repository
    "diff",  # diffs of a repository
    "test_output",  # output of the repository's tests
    "tool_output",  # anything else a tool produced from the repository or the machine
    "untagged",  # plain strings nobody tagged
]
CONTENT_KINDS: tuple[ContentKind, ...] = get_args(ContentKind)
SOURCE_KINDS: frozenset[ContentKind] = frozenset({"code", "diff", "test_output", "tool_output", "untagged"})


class Part(BaseModel):
    """One tagged piece of a prompt. `origin` names where it came from (a file and lines,
    a tool), so a refusal can say which part was refused."""

    model_config = ConfigDict(frozen=True)

    kind: ContentKind
    text: str
    origin: str | None = None

    @property
    def size(self) -> int:
        return len(self.text.encode("utf-8"))

    def describe(self) -> str:
        where = f" from {self.origin}" if self.origin else ""
        return f"{self.kind.replace('_', ' ')}{where} ({self.size:,} bytes)"


class Tagged(BaseModel):
    """Message content made of tagged parts; `str(tagged)` is the text a model receives."""

    model_config = ConfigDict(frozen=True)

    parts: tuple[Part, ...] = ()

    def __str__(self) -> str:
        return "".join(part.text for part in self.parts)

    def __add__(self, other: Tagged | Part | str) -> Tagged:
        return Tagged(parts=(*self.parts, *as_tagged(other).parts))

    def __radd__(self, other: Tagged | Part | str) -> Tagged:
        return Tagged(parts=(*as_tagged(other).parts, *self.parts))

    def bytes_by_kind(self) -> Counter[str]:
        sizes: Counter[str] = Counter()
        for part in self.parts:
            sizes[part.kind] += part.size
        return sizes


Content: TypeAlias = "str | Part | Tagged"


def as_tagged(content: Content | Sequence[Part | str]) -> Tagged:
    """Any message content as Tagged (a plain string is `untagged`)."""
    if isinstance(content, Tagged):
        return content
    if isinstance(content, Part):
        return Tagged(parts=(content,))
    if isinstance(content, str):
        return Tagged(parts=(Part(kind="untagged", text=content),) if content else ())
    parts: list[Part] = []
    for item in content:
        parts.extend(as_tagged(item).parts)
    return Tagged(parts=tuple(parts))


def compose(template: str, /, **values: Content) -> Tagged:
    """A prompt from a `str.format`-style template: the literal text is `instructions`, each
    `{name}` is the tagged value given for it (plain strings are `untagged`)."""
    parts: list[Part] = []
    for literal, field, spec, conversion in string.Formatter().parse(template):
        if literal:
            parts.append(Part(kind="instructions", text=literal))
        if field is None:
            continue
        if field not in values:
            raise KeyError(f"compose(): no value for {{{field}}} in {template[:60]!r}")
        if spec or conversion:
            raise ValueError(f"compose(): {{{field}}} takes no format spec or conversion; format the value first")
        parts.extend(as_tagged(values[field]).parts)
    return Tagged(parts=tuple(p for p in parts if p.text))


def join(items: Iterable[Content], separator: str = "\n") -> Tagged:
    """Tagged items joined by an `instructions` separator."""
    parts: list[Part] = []
    for i, item in enumerate(items):
        if i and separator:
            parts.append(Part(kind="instructions", text=separator))
        parts.extend(as_tagged(item).parts)
    return Tagged(parts=tuple(parts))


def instructions(text: str) -> Part:
    return Part(kind="instructions", text=text)


def request(text: str) -> Part:
    return Part(kind="request", text=text)


def path(text: str) -> Part:
    return Part(kind="path", text=text)


def signature(text: str, *, origin: str | None = None) -> Part:
    return Part(kind="signature", text=text, origin=origin)


def summary(text: str, *, origin: str | None = None) -> Part:
    return Part(kind="summary", text=text, origin=origin)


def code(text: str, *, origin: str | None = None) -> Part:
    return Part(kind="code", text=text, origin=origin)


def diff(text: str, *, origin: str | None = None) -> Part:
    return Part(kind="diff", text=text, origin=origin)


def test_output(text: str, *, origin: str | None = None) -> Part:
    return Part(kind="test_output", text=text, origin=origin)


test_output.__test__ = False  # type: ignore[attr-defined]  # pytest: not a test


def tool_output(text: str, *, origin: str | None = None) -> Part:
    return Part(kind="tool_output", text=text, origin=origin)


def plain_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Messages with tagged content flattened to the text a model receives."""
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, (Tagged, Part)):
            message = {**message, "content": str(as_tagged(content))}
        out.append(dict(message))
    return out


def tagged_messages(messages: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Tagged]]:
    """Each message with its content as Tagged (a tool result given as a plain string is
    `tool_output`; non-text content, such as images, is `untagged` by its repr size: the
    guard treats what it cannot read as source)."""
    out = []
    for message in messages:
        content = message.get("content")
        if content is None:
            tagged = Tagged()
        elif isinstance(content, str) and message.get("role") == "tool":
            tagged = as_tagged(tool_output(content))
        elif isinstance(content, (str, Part, Tagged)):
            tagged = as_tagged(content)
        else:
            tagged = Tagged(parts=(Part(kind="untagged", text=repr(content)),))
        out.append((message, tagged))
    return out
