"""Differential check for refactorings that must not change behaviour (extract, inline): a pure
function is called before and after the change on the same generated inputs, in the
repository's own interpreter, and any input on which the results differ is reported.

    outcome = compare_before_after(root, env, "pkg/calc.py", "pkg.calc", ["total"], old_text)
    outcome.note      # "compared total before and after on 60 generated inputs: same results"
    outcome.changed   # None, or "total(-1, 'a') returned 3 before and 4 after"

"Pure" is decided from the code, conservatively: no global/nonlocal, no yield/await, no
assignment to an attribute or into anything but a local, no decorators, and calls only to
side-effect-free builtins, read-only methods, methods of locals, and pure functions of the
same module. Inputs come from the parameters' annotations (or their literal defaults) through
Hypothesis, derandomized, so every run compares on the same values, with the numbers and
strings the function's own code compares against (and their neighbours) mixed in, since that
is where an off-by-one hides; only values that survive `repr` -> `ast.literal_eval` are used,
since they travel to the other interpreter as text.
When a function is not pure, or its inputs cannot be generated, nothing is compared and the
note says why: the check never turns "not compared" into "same".
"""

from __future__ import annotations

import ast
import builtins
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from turnout.tools._codemod_targets import parameters
from turnout.tools.operations._base import run_probe
from turnout.tools.test_env import TestEnvironment

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
EXAMPLES = 60
PURE_BUILTINS = frozenset(
    "abs all any ascii bin bool bytes callable chr complex dict divmod enumerate filter float format frozenset hash "
    "hex int isinstance issubclass iter len list map max min next oct ord pow range repr reversed round set slice "
    "sorted str sum tuple zip ValueError TypeError KeyError IndexError ZeroDivisionError ArithmeticError".split())
READ_ONLY_METHODS = frozenset(
    "upper lower strip lstrip rstrip split rsplit join replace startswith endswith format get keys values items count "
    "index find rfind partition rpartition title capitalize casefold isdigit isalpha isalnum isspace isupper islower "
    "zfill ljust rjust center splitlines encode decode copy removeprefix removesuffix expandtabs is_integer "
    "bit_length hex".split())
_PROBE = r"""
import ast, copy, importlib, json, signal, sys
payload = json.loads(sys.argv[1])
module = importlib.import_module(payload["module"])
old_space = dict(vars(module))
exec(compile("from __future__ import annotations\n" + payload["old_source"], "<before the change>", "exec"), old_space)

def expire(signum, frame):
    raise TimeoutError("took over 2 s")

signal.signal(signal.SIGALRM, expire)

def outcome(function, args):
    signal.alarm(2)
    try:
        return ("returned", function(*copy.deepcopy(args)))
    except Exception as exc:
        return ("raised", type(exc).__name__)
    finally:
        signal.alarm(0)

def said(result):
    kind, value = result
    return f"returned {repr(value)[:80]}" if kind == "returned" else f"raised {value}"

changed, compared = [], 0
for name in payload["functions"]:
    for text in payload["inputs"][name]:
        args = ast.literal_eval(text)
        before, after = outcome(old_space[name], args), outcome(getattr(module, name), args)
        compared += 1
        if before != after and repr(before) != repr(after):
            shown = ", ".join(repr(a)[:60] for a in args)
            changed.append(f"{name}({shown}) {said(before)} before and {said(after)} after")
            break
print(json.dumps({"compared": compared, "changed": changed}))
"""


@dataclass(frozen=True)
class Comparison:
    note: str  # what was compared, or why nothing was
    changed: str | None = None  # the first input whose result differs


def compare_before_after(root: Path, env: TestEnvironment | None, rel: str, module: str, functions: list[str],
                         old_text: str, *, also_old: tuple[str, ...] = ()) -> Comparison:
    """Call each of `functions` (module-level, in `rel` as imported from `module`) as
    `old_text` defined them and as the tree defines them now, on the same generated inputs;
    those that are not pure or have no inputs are named and left out, the others compared.
    `also_old`: more definitions of `old_text` the old functions need (an inlined helper)."""
    old_tree = ast.parse(old_text)
    defined = {s.name: s for s in old_tree.body if isinstance(s, FunctionNode)}
    helpers: list[str] = []
    for name in also_old:
        statement = next((s for s in old_tree.body if name in _binds(s)), None)
        if statement is None:
            return Comparison(f"not compared: {name} is not defined at module level in {rel} before the change")
        if isinstance(statement, FunctionNode) and (problem := impurity(statement, defined)):
            return Comparison(f"not compared: {name} {problem}")
        helpers.append(ast.get_source_segment(old_text, statement) or "")
    sources: list[str] = []
    inputs: dict[str, list[str]] = {}
    skipped: list[str] = []
    for name in functions:
        node = defined.get(name)
        if node is None:
            skipped.append(f"{name} is not a module-level function of {rel}")
        elif problem := impurity(node, defined):
            skipped.append(f"{name} {problem}")
        elif isinstance(made := generated_inputs(node, old_text, defined), str):
            skipped.append(f"{name} {made}")
        else:
            inputs[name] = made
            sources.append(ast.get_source_segment(old_text, node) or "")
    not_compared = f"not compared: {'; '.join(skipped)}" if skipped else ""
    if not inputs:
        return Comparison(not_compared)
    compared = list(inputs)
    answer = run_probe(root, env, _PROBE, {"module": module, "functions": compared, "inputs": inputs,
                                           "old_source": "\n\n".join([*helpers, *sources])})
    if "error" in answer:
        return Comparison(f"not compared: the comparison did not run ({answer['error']})")
    changed = answer.get("changed") or []
    assert isinstance(changed, list)
    named = ", ".join(compared)
    if changed:
        return Comparison(f"compared {named} before and after: the behaviour changed", changed=str(changed[0]))
    return Comparison(f"compared {named} before and after on {answer.get('compared')} generated inputs: same results"
                      + (f" ({not_compared})" if skipped else ""))


def _binds(statement: ast.stmt) -> set[str]:
    if isinstance(statement, FunctionNode | ast.ClassDef):
        return {statement.name}
    if isinstance(statement, ast.Assign | ast.AnnAssign):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        return {t.id for t in targets if isinstance(t, ast.Name)}
    return set()


def impurity(function: FunctionNode, module_functions: dict[str, FunctionNode], seen: frozenset[str] = frozenset()) -> str | None:
    """Why `function` may have a side effect or depend on one (None: it is pure by these rules)."""
    if isinstance(function, ast.AsyncFunctionDef) or function.decorator_list:
        return "is async or decorated"
    arguments = {a.arg for a in parameters(function)}
    local = {n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)} - arguments
    for node in ast.walk(function):
        if isinstance(node, ast.Global | ast.Nonlocal | ast.Yield | ast.YieldFrom | ast.Await):
            return f"uses {type(node).__name__.lower()}"
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store | ast.Del):
            return f"assigns an attribute (line {node.lineno})"
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del) and not (
                isinstance(node.value, ast.Name) and node.value.id in local):
            return f"assigns into something that is not its own (line {node.lineno})"
        if isinstance(node, ast.Call):
            if problem := _call_impurity(node, local, module_functions, seen | {function.name}):
                return problem
    return None


def _call_impurity(call: ast.Call, local: set[str], module_functions: dict[str, FunctionNode],
                   seen: frozenset[str]) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        if func.id in PURE_BUILTINS or func.id in seen:
            return None
        if func.id in module_functions:
            return impurity(module_functions[func.id], module_functions, seen)
        return f"calls {func.id} (line {call.lineno}), which may have side effects"
    if isinstance(func, ast.Attribute):
        if func.attr in READ_ONLY_METHODS or isinstance(func.value, ast.Name) and func.value.id in local:
            return None
        return f"calls .{func.attr}() (line {call.lineno}), which may have side effects"
    return f"makes a call turnout cannot follow (line {call.lineno})"


_TYPE_NAMES: dict[str, object] = {name: getattr(builtins, name) for name in
                                  ("int", "float", "str", "bool", "bytes", "list", "tuple", "dict", "set", "frozenset")}
_TYPE_NAMES.update({name: getattr(typing, name) for name in ("Optional", "Union", "Any", "List", "Tuple", "Dict", "Set")})
_TYPE_NAMES["None"] = None


def generated_inputs(function: FunctionNode, source: str, module_functions: dict[str, FunctionNode] | None = None) -> list[str] | str:
    """`repr`s of argument tuples for `function`, or why they cannot be made."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    a = function.args
    if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs:
        return "takes *args, **kwargs or keyword-only parameters"
    constants = _constants([function, *(module_functions or {}).values()])
    defaults: list[ast.expr | None] = [None] * (len(a.args) - len(a.defaults)) + list(a.defaults)
    strategies = []
    for arg, default in zip(a.args, defaults, strict=True):
        if arg.annotation is not None:
            text = ast.get_source_segment(source, arg.annotation) or ""
            try:
                annotation = eval(compile(ast.parse(text, mode="eval"), "<annotation>", "eval"), {"__builtins__": {}}, _TYPE_NAMES)
                strategies.append(_strategy(annotation, constants))
            except Exception:
                return f"has a parameter typed {text!r}, which turnout cannot generate values of"
        elif isinstance(default, ast.Constant):
            strategies.append(_strategy(type(default.value) if default.value is not None else None, constants))
        else:
            return f"has an untyped parameter {arg.arg!r} without a literal default"
    found: list[str] = []

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, phases=[Phase.generate], deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(st.tuples(*strategies))
    def collect(args: tuple[object, ...]) -> None:
        text = repr(args)
        try:
            if ast.literal_eval(text) == args and text not in found:
                found.append(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass

    try:
        collect()
    except Exception as exc:
        return f"has parameters turnout cannot generate values for ({type(exc).__name__})"
    return found or "has parameters whose generated values cannot be written as literals"


def _constants(functions: list[FunctionNode]) -> dict[type, list[object]]:
    """The int, float and str literals these functions use, with each number's neighbours."""
    found: dict[type, set[object]] = {int: {0, 1, -1}, float: {0.0}, str: {""}}
    for function in functions:
        for node in ast.walk(function):
            if isinstance(node, ast.Constant) and type(node.value) in found and not isinstance(node.value, bool):
                value = node.value
                found[type(value)].add(value)
                if isinstance(value, int | float):
                    found[type(value)] |= {value - 1, value + 1}
    return {kind: sorted(values, key=repr)[:40] for kind, values in found.items()}


def _strategy(annotation: object, constants: dict[type, list[object]]) -> Any:
    """Values of `annotation` (builtins, their unions, lists, tuples, dicts, Optional), the
    function's own constants among them; a type it does not know goes to Hypothesis as is."""
    from hypothesis import strategies as st

    if annotation is None or annotation is type(None):
        return st.none()
    if annotation in (int, float, str):
        drawn = {int: st.integers(), float: st.floats(allow_nan=False, allow_infinity=False), str: st.text(max_size=20)}
        return st.one_of(st.sampled_from(constants[annotation]), drawn[annotation])  # type: ignore[index]
    if annotation is bool:
        return st.booleans()
    if isinstance(annotation, str):
        raise TypeError(f"a forward reference {annotation!r}")
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(_strategy(a, constants) for a in args))
    if origin is list and args:
        return st.lists(_strategy(args[0], constants), max_size=6)
    if origin is tuple and args and args[-1] is not Ellipsis:
        return st.tuples(*(_strategy(a, constants) for a in args))
    if origin is dict and len(args) == 2:
        return st.dictionaries(_strategy(args[0], constants), _strategy(args[1], constants), max_size=5)
    return st.from_type(annotation)  # type: ignore[arg-type]
