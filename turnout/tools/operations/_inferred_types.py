"""Signatures mypy infers for untyped functions, written into their source.

    facts, python = interpreter_facts(env)             # point mypy at the repository's environment
    signatures = suggest(root, tree, functions, facts)  # label -> {"arg_types": [...], "return_type": ...}
    written, with_any = write(root, tree, functions, signatures, python,
                              importable=importable_names(root, env, signatures))

`suggest` asks a mypy daemon (`dmypy suggest`) that has read the whole tree, with the bodies
of untyped functions (tests included) checked so that their calls count as evidence. `write`
spells mypy's types as source for the module (`type_source`), hands them to libcst's
`ApplyTypeAnnotationsVisitor` as a stub (it adds the imports), and annotates `*args` and
`**kwargs` itself, which that visitor leaves.
"""

from __future__ import annotations

import ast
import builtins
import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import (
    AddImportsVisitor,
    ApplyTypeAnnotationsVisitor,
    RemoveImportsVisitor,
)

from turnout.tools._codemod_targets import SourceTree, bound_names, module_level, parameters
from turnout.tools.codemods import CodemodError
from turnout.tools.test_env import TestEnvironment

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
MYPY_TIMEOUT_S = 600


@dataclass(frozen=True)
class TargetFunction:
    """A function an add_type_hints target covers, as parsed from the tree it was read from."""

    target: str  # the resolved target it belongs to: "path" or "path:Qualname"
    path: str
    module: str
    qualname: str
    node: FunctionNode
    is_method: bool

    @property
    def label(self) -> str:
        return f"{self.path}:{self.qualname}"

    @property
    def first_line(self) -> int:
        return min([self.node.lineno, *(d.lineno for d in self.node.decorator_list)])

    @property
    def last_line(self) -> int:
        return self.node.end_lineno or self.node.lineno

    @property
    def typed_parameters(self) -> list[ast.arg]:
        return parameters(self.node)[1 if self.is_method and not is_static(self.node) else 0:]

    @property
    def fully_typed(self) -> bool:
        return self.node.returns is not None and all(p.annotation is not None for p in self.typed_parameters)

    @property
    def bare(self) -> bool:
        return self.node.returns is None and all(p.annotation is None for p in self.typed_parameters)


def is_static(node: FunctionNode) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)


def drop_unused_new_imports(path: Path, original: str) -> None:
    """Remove the `from m import n` lines annotation added that nothing uses any more."""
    def imported(text: str) -> set[tuple[str, str]]:
        return {(node.module or "", alias.name) for node in ast.walk(ast.parse(text))
                if isinstance(node, ast.ImportFrom) for alias in node.names}

    text = path.read_text(encoding="utf-8")
    added = imported(text) - imported(original)
    if not added:
        return
    context = CodemodContext()
    for module, name in added:
        RemoveImportsVisitor.remove_unused_import(context, module, name)
    path.write_text(RemoveImportsVisitor(context).transform_module(cst.parse_module(text)).code, encoding="utf-8")


def interpreter_facts(env: TestEnvironment | None) -> tuple[list[str], tuple[int, int]]:
    """mypy flags that point it at the repository's environment, and that environment's Python version."""
    if env is None:
        return [], sys.version_info[:2]
    done = subprocess.run([env.python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise CodemodError(f"the repository's interpreter {env.python} does not start: {done.stderr.strip()[-200:]}")
    major, minor = (int(p) for p in done.stdout.strip().split("."))
    return ["--python-executable", env.python, "--python-version", f"{major}.{minor}"], (major, minor)


def mypy_sources(tree: SourceTree) -> list[str]:
    """Every parsed file, one per module name (mypy refuses two files that claim one module)."""
    seen: dict[str, str] = {}
    for rel in sorted(tree.trees):
        seen.setdefault(tree.modules[rel], rel)
    return sorted(seen.values())


def suggest(root: Path, tree: SourceTree, functions: list[TargetFunction], flags: list[str]) -> dict[str, dict[str, object]]:
    """label -> mypy's suggested signature ({"arg_types": [...], "return_type": ...}) for each
    function it could infer one for, from a mypy daemon that has read the whole tree with the
    bodies of untyped functions (tests included) checked, so their calls count as evidence."""
    suggestions: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="turnout-mypy-") as scratch:
        config = Path(scratch, "mypy.ini")
        config.write_text("[mypy]\n", encoding="utf-8")  # the repository's plugins need not exist in turnout's environment
        daemon = [sys.executable, "-m", "mypy.dmypy", "--status-file", str(Path(scratch, "status.json"))]
        started = subprocess.run(
            [*daemon, "run", "--timeout", str(MYPY_TIMEOUT_S), "--", "--config-file", str(config),
             "--cache-dir", str(Path(scratch, "cache")), "--check-untyped-defs", "--ignore-missing-imports",
             "--follow-imports", "skip", *flags, *mypy_sources(tree)],
            cwd=root, capture_output=True, text=True, timeout=MYPY_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
        try:
            if started.returncode not in (0, 1):
                raise CodemodError("mypy could not read the repository: "
                                   + (started.stderr.strip() or started.stdout.strip())[-300:])
            for function in functions:
                for strict in (["--no-errors"], []):  # a signature that keeps every caller and the body error-free, else its best
                    asked = subprocess.run([*daemon, "suggest", "--json", "--max-guesses", "24", *strict, f"{function.module}.{function.qualname}"],
                                           cwd=root, capture_output=True, text=True, timeout=120, check=False)
                    try:
                        answer = json.loads(asked.stdout)
                    except json.JSONDecodeError:
                        continue  # "No guesses", "Function does not typecheck", or a function mypy cannot address
                    if isinstance(answer, list) and answer and isinstance(answer[0].get("signature"), dict):
                        suggestions[function.label] = answer[0]["signature"]
                        break
        finally:
            subprocess.run([*daemon, "kill"], capture_output=True, timeout=60, check=False)
    return suggestions


_TYPING_ALIASES = {"Tuple": "tuple", "List": "list", "Dict": "dict", "Set": "set", "FrozenSet": "frozenset", "Type": "type"}
_TYPING_NAMES = frozenset({"Any", "Callable", "Optional", "Union", "Literal", "Iterator", "Iterable", "Generator",
                           "Sequence", "Mapping", "Awaitable", "Coroutine", "TypeGuard", "NoReturn", "Never"})


def type_source(suggested: str, module: str, local_names: set[str], python: tuple[int, int],
                importable: set[str] | None = None) -> str | None:
    """mypy's spelling of a type as source for this module, or None when it is not writable here.

    `pkg.calc.Decimal` in module pkg.calc becomes `Decimal`; `Any` and `Callable` become
    `typing.Any` and `typing.Callable` (libcst imports them); `Tuple[...]` becomes `tuple[...]`;
    `A | B` becomes `typing.Union[A, B]` before Python 3.10. None for a bare name that is not a
    builtin, another module's private name, or (with `importable`) a dotted name not in it:
    typeshed knows names the running code cannot import (`typing_extensions.Buffer`)."""
    try:
        parsed = ast.parse(suggested, mode="eval")
    except SyntaxError:
        return None

    class Spell(ast.NodeTransformer):
        unknown = False

        def visit_Name(self, node: ast.Name) -> ast.AST:
            if node.id in _TYPING_NAMES:  # mypy spells these bare
                return ast.parse(f"typing.{node.id}", mode="eval").body
            if node.id in _TYPING_ALIASES:
                return ast.Name(_TYPING_ALIASES[node.id])
            if not hasattr(builtins, node.id):
                self.unknown = True
            return node

        def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
            dotted = ast.unparse(node)
            owner, _, name = dotted.rpartition(".")
            if owner == module and name in local_names:
                return ast.Name(name)
            if owner == "builtins":
                return ast.Name(name)
            if any(part.startswith("_") for part in dotted.split(".")) or (
                    importable is not None and dotted not in importable and owner != "typing"):
                self.unknown = True
            return node

        def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
            self.generic_visit(node)
            if python >= (3, 10) or not isinstance(node.op, ast.BitOr):
                return node
            members = [node.left, node.right]
            return ast.Subscript(ast.parse("typing.Union", mode="eval").body, ast.Tuple(members))

    spell = Spell()
    written = spell.visit(parsed)
    return None if spell.unknown else ast.unparse(written)


def importable_names(root: Path, env: TestEnvironment | None, suggestions: dict[str, dict[str, object]]) -> set[str]:
    """The dotted names the suggestions use (`decimal.Decimal`) that the repository's own
    interpreter can import, from the workspace."""
    from turnout.tools.operations._base import run_probe

    dotted = sorted({m[0] for s in suggestions.values() for m in re.finditer(r"\b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+", json.dumps(s))})
    if not dotted:
        return set()
    found = run_probe(root, env, _IMPORTABLE_PROBE, dotted)
    names = found.get("importable", [])
    return set(names) if isinstance(names, list) else set()


_IMPORTABLE_PROBE = """
import importlib, json, sys
found = []
for dotted in json.loads(sys.argv[1]):
    owner, _, name = dotted.rpartition(".")
    try:
        if hasattr(importlib.import_module(owner), name):
            found.append(dotted)
    except Exception:
        pass
print(json.dumps({"importable": found}))
"""


def stub_for(function: TargetFunction, signature: dict[str, object], local_names: set[str],
             python: tuple[int, int], importable: set[str] | None = None) -> tuple[str, dict[str, str]] | None:
    """A stub `def` carrying the suggested types, in the function's own parameter layout, and
    the types of its `*args` and `**kwargs` ({"*": …, "**": …}), which libcst's visitor leaves."""
    arg_types = signature.get("arg_types")
    return_type = signature.get("return_type")
    if not isinstance(arg_types, list) or not isinstance(return_type, str):
        return None
    a = function.node.args
    skip_first = function.is_method and not is_static(function.node)
    positional = [*a.posonlyargs, *a.args]
    typed_params = [*positional[1 if skip_first else 0:], *([a.vararg] if a.vararg else []), *a.kwonlyargs,
                    *([a.kwarg] if a.kwarg else [])]
    if len(arg_types) != len(typed_params):
        return None
    spelled = {}
    for param, suggested in zip(typed_params, arg_types, strict=True):
        source = type_source(str(suggested).lstrip("*"), function.module, local_names, python, importable)
        if source is None:
            return None
        spelled[param.arg] = source
    returns = type_source(return_type, function.module, local_names, python, importable)
    if returns is None:
        return None

    stars = {kind: spelled[arg.arg] for kind, arg in (("*", a.vararg), ("**", a.kwarg)) if arg is not None}

    def param(arg: ast.arg, default: bool) -> str:
        annotation = f": {spelled[arg.arg]}" if arg.arg in spelled else ""
        return f"{arg.arg}{annotation}{' = ...' if default else ''}"

    defaults_from = len(positional) - len(a.defaults)
    parts = [param(p, i >= defaults_from) for i, p in enumerate(positional)]
    if a.posonlyargs:
        parts.insert(len(a.posonlyargs), "/")
    if a.vararg:
        parts.append("*" + param(a.vararg, False))
    elif a.kwonlyargs:
        parts.append("*")
    parts += [param(p, d is not None) for p, d in zip(a.kwonlyargs, a.kw_defaults, strict=True)]
    if a.kwarg:
        parts.append("**" + param(a.kwarg, False))
    prefix = "async def" if isinstance(function.node, ast.AsyncFunctionDef) else "def"
    decorators = "".join(f"@{d.id}\n" for d in function.node.decorator_list
                         if isinstance(d, ast.Name) and d.id in ("staticmethod", "classmethod"))
    return f"{decorators}{prefix} {function.node.name}({', '.join(parts)}) -> {returns}: ...", stars


def all_any(function: TargetFunction) -> dict[str, object]:
    return {"arg_types": ["Any"] * len(function.typed_parameters), "return_type": "Any"}


def anys(signature: dict[str, object]) -> int:
    return len(re.findall(r"\bAny\b", json.dumps(signature)))


def write(root: Path, tree: SourceTree, functions: list[TargetFunction], suggestions: dict[str, dict[str, object]],
          python: tuple[int, int], *, importable: set[str] | None = None,
          overwrite: bool = False) -> tuple[list[str], list[str]]:
    """Write the suggestions for `functions` (parsed from `tree`) into their files, replacing
    hints already there only when `overwrite`, and only those whose dotted names are all in
    `importable` when it is given; (labels annotated, labels whose types use Any)."""
    written: list[str] = []
    with_any: list[str] = []
    by_file: dict[str, list[TargetFunction]] = {}
    for function in functions:
        if function.label in suggestions:
            by_file.setdefault(function.path, []).append(function)
    for rel, functions in sorted(by_file.items()):
        local_names = bound_names(list(module_level(tree.trees[rel].body)))
        module_stub: list[str] = ["import typing"]
        classes: dict[str, list[str]] = {}
        stars: dict[str, dict[str, str]] = {}
        for function in functions:
            made = stub_for(function, suggestions[function.label], local_names, python, importable)
            if made is None:
                continue
            stub, stars[function.qualname] = made
            owner = function.qualname.rpartition(".")[0]
            (classes.setdefault(owner, []) if owner else module_stub).append(stub)
            written.append(function.label)
            if "typing.Any" in stub:
                with_any.append(function.label)
        for owner, methods in classes.items():
            module_stub.append(f"class {owner}:\n" + "\n".join("    " + line for stub in methods for line in stub.splitlines()))
        imports = sorted({m.group(1) for m in re.finditer(r"\b([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*)\.[A-Za-z_]\w*\b",
                                                           "\n".join(module_stub[1:]))} - {"typing"})
        stub_text = "\n".join([*(f"import {name}" for name in imports), *module_stub]) + "\n"
        path = root / rel
        context = CodemodContext(filename=rel, full_module_name=tree.modules[rel])
        ApplyTypeAnnotationsVisitor.store_stub_in_context(context, cst.parse_module(stub_text))
        source = cst.parse_module(path.read_text(encoding="utf-8"))
        annotated = ApplyTypeAnnotationsVisitor(context, overwrite_existing_annotations=overwrite).transform_module(source)
        finished = annotated.visit(_StarsAndSpacing(stars, context, overwrite))
        path.write_text(AddImportsVisitor(context).transform_module(finished).code, encoding="utf-8")
    return written, with_any


class _StarsAndSpacing(cst.CSTTransformer):
    """Types on `*args`/`**kwargs` (their dotted names imported), and `x: int=0` -> `x: int = 0`
    (PEP 8 for an annotated parameter with a default)."""

    def __init__(self, stars: dict[str, dict[str, str]], context: CodemodContext, overwrite: bool) -> None:
        super().__init__()
        self.stars, self.context, self.overwrite = stars, context, overwrite
        self.scope: list[str] = []

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        self.scope.append(node.name.value)

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        self.scope.pop()
        return updated

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        self.scope.append(node.name.value)

    def leave_FunctionDef(self, original: cst.FunctionDef, updated: cst.FunctionDef) -> cst.FunctionDef:
        stars = self.stars.get(".".join(self.scope), {})
        self.scope.pop()
        params = updated.params
        for field, kind in (("star_arg", "*"), ("star_kwarg", "**")):
            param = getattr(params, field)
            if kind in stars and isinstance(param, cst.Param) and (self.overwrite or param.annotation is None):
                params = params.with_changes(**{field: param.with_changes(annotation=cst.Annotation(self._imported(stars[kind])))})
        return updated.with_changes(params=params)

    def _imported(self, type_text: str) -> cst.BaseExpression:
        """The type with each dotted name `a.b.C` written `C` and `from a.b import C` added."""
        def short(match: re.Match[str]) -> str:
            AddImportsVisitor.add_needed_import(self.context, match[1], match[2])
            return match[2]

        return cst.parse_expression(re.sub(r"\b([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\.([A-Za-z_]\w*)\b", short, type_text))

    def leave_Param(self, original: cst.Param, updated: cst.Param) -> cst.Param:
        if updated.annotation is not None and updated.default is not None and isinstance(updated.equal, cst.AssignEqual):
            return updated.with_changes(equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(" "),
                                                              whitespace_after=cst.SimpleWhitespace(" ")))
        return updated
