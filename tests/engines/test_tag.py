"""Tagged prompt content: templates, flattening, and outlines of code."""

from __future__ import annotations

import pytest

from turnout.engines import tag
from turnout.engines.privacy._rewrite import outline


def test_compose_tags_the_template_as_instructions_and_keeps_value_tags() -> None:
    prompt = tag.compose("Task: {t}\nCode: {c} {u}", t=tag.request("fix it"), c=tag.code("x = 1"), u="raw")
    assert [(p.kind, p.text) for p in prompt.parts] == [
        ("instructions", "Task: "),
        ("request", "fix it"),
        ("instructions", "\nCode: "),
        ("code", "x = 1"),
        ("instructions", " "),
        ("untagged", "raw"),
    ]
    assert str(prompt) == "Task: fix it\nCode: x = 1 raw"


def test_compose_names_a_missing_value_and_refuses_format_specs() -> None:
    with pytest.raises(KeyError, match="no value for {c}"):
        tag.compose("{c}")
    with pytest.raises(ValueError, match="format the value first"):
        tag.compose("{c:>10}", c=tag.code("x"))


def test_messages_are_flattened_to_text_for_the_model() -> None:
    messages = [{"role": "user", "content": tag.compose("A {b}", b=tag.path("p.py"))}, {"role": "assistant", "content": "ok"}]
    assert tag.plain_messages(messages) == [{"role": "user", "content": "A p.py"}, {"role": "assistant", "content": "ok"}]


def test_a_tool_result_written_by_hand_is_tool_output_to_the_guard() -> None:
    messages = [{"role": "user", "content": "go"}, {"role": "tool", "tool_call_id": "1", "content": "def f(): ..."},
                {"role": "tool", "tool_call_id": "2", "content": tag.code("x = 1")}]
    kinds = [[p.kind for p in tagged.parts] for _, tagged in tag.tagged_messages(messages)]
    assert kinds == [["untagged"], ["tool_output"], ["code"]]  # a tag given stays


def test_bytes_are_counted_per_kind_in_utf8() -> None:
    prompt = tag.compose("{a}{b}", a=tag.request("é"), b=tag.code("xy"))
    assert prompt.bytes_by_kind() == {"request": 2, "code": 2}


def test_outline_keeps_signatures_and_drops_bodies() -> None:
    code = (
        "class Invoice(Base, metaclass=Meta):\n"
        "    def total(self, tax: float = 0.2) -> float:\n        return SECRET * tax\n"
        "    async def send(self, *, to: str) -> None:\n        await post(to)\n"
    )
    assert outline(code) == [
        "class Invoice(Base, metaclass=Meta)",
        "    def total(self, tax: float=...) -> float",
        "    async def send(self, *, to: str) -> None",
    ]


def test_outline_drops_every_literal_value_but_keeps_names() -> None:
    code = (
        'class Store(Base, dsn="postgresql://app:s3cret-pw@db/prod", retries=3):\n'
        '    def connect(self, password: str = "hunter2", port: int = 5432, *, token=f"tok-{N}",\n'
        '                model: "pkg.Model" = None, mode: Literal["fast", "safe"] = "fast", on=True) -> "Store":\n'
        "        return self\n"
    )
    lines = outline(code)
    assert lines == [
        "class Store(Base, dsn=..., retries=...)",
        "    def connect(self, password: str=..., port: int=..., *, token=..., model: 'pkg.Model'=None, "
        "mode: Literal['fast', 'safe']=..., on=True) -> 'Store'",
    ]
    assert not any(secret in "".join(lines) for secret in ("s3cret", "hunter2", "5432", "tok-"))
    broken = outline('def g(a, password="s3cret", n=42) -> int:\n    return (a +\n')
    assert broken == ["def g(a, password=..., n=...) -> int"]


def test_outline_reads_an_indented_method_and_a_fragment_that_does_not_parse() -> None:
    assert outline("    def f(a):\n        return a\n") == ["def f(a)"]
    assert outline("def g(a, b) -> int:\n    return (a +\n") == ["def g(a, b) -> int"]
