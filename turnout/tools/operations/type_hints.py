"""add_type_hints: annotate the functions of some files, modules or symbols with the types mypy
infers for them, and prove the result with mypy at the strictness the plan states.

The types come from mypy's own signature inference (`dmypy suggest`), which reads how each
function is called across the repository, tests included, and what it returns. libcst
writes them into the source and adds the imports they need. A suggestion mypy cannot make
without `Any` is still written (with `Any`) and counted in the notes; one it cannot make at
all leaves the function as it was, and the postcondition names it.

Postcondition, in the repository's environment: every targeted function has a type for each
parameter and its return, and mypy reports no error in the targets at the plan's strictness
(`basic`: mypy's defaults; `typed-defs`: --disallow-untyped-defs --disallow-incomplete-defs;
`strict`: --strict), with the repository's own mypy configuration. The repository's own mypy
runs the check when its environment has one; otherwise turnout's, pointed at that
environment's packages.
"""

from __future__ import annotations

import ast
import builtins
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import (
    AddImportsVisitor,
    ApplyTypeAnnotationsVisitor,
    RemoveImportsVisitor,
)
from pydantic import Field

from turnout.tools._codemod_run import relative, transaction
from turnout.tools._codemod_targets import SourceTree, bound_names, module_level
from turnout.tools.codemods import CodemodError, CodemodResult
from turnout.tools.operations._base import NotFound, Operation, read_tree
from turnout.tools.test_env import TestEnvironment

Strictness = Literal["basic", "typed-defs", "strict"]
STRICTNESS_FLAGS: dict[str, list[str]] = {
    "basic": [],
    "typed-defs": ["--disallow-untyped-defs", "--disallow-incomplete-defs"],
    "strict": ["--strict"],
}
MYPY_TIMEOUT_S = 600
MAX_FUNCTIONS = 300
FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


class AddTypeHints(Operation):
    op: Literal["add_type_hints"] = "add_type_hints"
    targets: list[str] = Field(min_length=1, max_length=50, description=(
        "What to annotate: files or folders (`pkg/calc.py`, `src/pkg/`), dotted modules (`pkg.calc`), "
        "or functions and classes (`scale`, `Cart`, `pkg/calc.py:Cart.total`)."))
    strictness: Strictness = Field("typed-defs", description=(
        "What mypy must accept afterwards: basic (its defaults), typed-defs (every function fully typed) or strict."))

    def describe(self) -> str:
        return f"add type hints to {', '.join(self.targets)} (mypy {self.strictness})"

    def names(self) -> set[str]:
        return {part for target in self.targets for part in re.split(r"[:/]", target) if part}

    def checked(self, tree: SourceTree) -> AddTypeHints:
        return self.model_copy(update={"targets": [_resolve(tree, target) for target in self.targets]})

    def apply(self, root: Path, env: TestEnvironment | None = None) -> CodemodResult:
        return transaction(root, "add_type_hints", lambda _snapshot: ([], _annotate(root, self.targets, self.strictness, env)))

    def postcondition(self, root: Path, env: TestEnvironment | None) -> list[str]:
        tree = read_tree(root)
        functions = _functions(tree, self.targets)
        missing = []
        if untyped := [f.label for f in functions if not f.fully_typed]:
            missing.append(f"{len(untyped)} function(s) still without full type hints: " + ", ".join(untyped[:8])
                           + (" …" if len(untyped) > 8 else ""))
        files = sorted({rel for t in self.targets for rel in _files(tree, t.partition(":")[0])})
        errors, failure = run_mypy(root, env, files, self.strictness)
        if failure:
            return [*missing, f"mypy could not check the targets: {failure}"]
        spans = {(f.path, line) for f in functions if ":" in f.target for line in range(f.first_line, f.last_line + 1)}
        whole = {t for t in self.targets if ":" not in t}
        errors = [e for e in errors if _in_targets(e, whole, spans)]
        if errors:
            missing.append(f"mypy ({self.strictness}) reports {len(errors)} error(s) in the targets: "
                           + "; ".join(errors[:5]) + (" …" if len(errors) > 5 else ""))
        return missing


def _annotate(root: Path, targets: list[str], strictness: str, env: TestEnvironment | None) -> list[str]:
    """Annotate the targets' functions that lack hints; the notes say how, function by function.

    1. mypy suggests a signature for each (one that keeps the code error-free, else its best).
    2. Methods are asked again once the first types are in (`self.items: list[int]` makes a
       method's return inferable).
    3. A function mypy suggested nothing writable for, or whose new types make mypy report an
       error in it, is typed with Any where it had no hint: its body is checked no further than before.
    """
    tree = read_tree(root)
    todo = [f for f in _functions(tree, targets) if not f.fully_typed][:MAX_FUNCTIONS]
    if not todo:
        return ["every targeted function already has type hints"]
    originals = {rel: (root / rel).read_text(encoding="utf-8") for rel in {f.path for f in todo}}
    bare = {f.label for f in todo if f.bare}
    flags, python = _interpreter_facts(env)
    suggestions = _suggest(root, tree, todo, flags)
    inferred, with_any = _write(root, tree, suggestions, python)
    if retry := {f.label for f in todo if f.is_method} & bare & set(with_any):
        tree = read_tree(root)
        again = _suggest(root, tree, [f for f in _functions(tree, targets) if f.label in retry], flags)
        better = {label: s for label, s in again.items() if _anys(s) < _anys(suggestions[label])}
        _write(root, tree, better, python, overwrite=True)
        with_any = [label for label in with_any if label not in better]
    tree = read_tree(root)
    current = [f for f in _functions(tree, targets) if f.label in {t.label for t in todo}]
    errors, _failure = run_mypy(root, env, sorted(originals), strictness)
    flagged = {(m[1], int(m[2])) for e in errors if (m := re.match(r"(.+?):(\d+):", e))}
    erring = [f for f in current if f.label in inferred
              and any((f.path, line) in flagged for line in range(f.first_line, f.last_line + 1))]
    unsuggested = [f for f in current if f.label not in inferred]
    loosen = {f.label: _all_any(f) for f in [*erring, *unsuggested]}
    _write(root, tree, {k: v for k, v in loosen.items() if k in bare}, python, overwrite=True)
    _write(root, tree, {k: v for k, v in loosen.items() if k not in bare}, python)
    for rel, text in originals.items():
        _drop_unused_new_imports(root / rel, text)
    notes = [f"annotated {len(todo)} function(s): {len(inferred) - len(erring)} with the types mypy infers from "
             "their callers and bodies"]
    if anys := sorted({*with_any} - {*loosen}):
        notes.append(f"{len(anys)} of those use Any somewhere (mypy saw no typed caller): {_listed(anys)}")
    if erring:
        notes.append(f"{len(erring)} typed with Any, because mypy's inferred types made it report errors in them: "
                     + _listed([f.label for f in erring]))
    if unsuggested:
        notes.append(f"{len(unsuggested)} typed with Any, because mypy inferred nothing writable for them: "
                     + _listed([f.label for f in unsuggested]))
    return notes


def _listed(labels: list[str], most: int = 8) -> str:
    return ", ".join(labels[:most]) + (" …" if len(labels) > most else "")


def _drop_unused_new_imports(path: Path, original: str) -> None:
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


@dataclass(frozen=True)
class _Function:
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
        return _parameters(self.node)[1 if self.is_method and not _is_static(self.node) else 0:]

    @property
    def fully_typed(self) -> bool:
        return self.node.returns is not None and all(p.annotation is not None for p in self.typed_parameters)

    @property
    def bare(self) -> bool:
        return self.node.returns is None and all(p.annotation is None for p in self.typed_parameters)


def _parameters(node: FunctionNode) -> list[ast.arg]:
    a = node.args
    return [*a.posonlyargs, *a.args, *([a.vararg] if a.vararg else []), *a.kwonlyargs, *([a.kwarg] if a.kwarg else [])]


def _is_static(node: FunctionNode) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)


def _resolve(tree: SourceTree, target: str) -> str:
    """A target as `path` (a file or a folder ending in /) or `path:Qualname`; NotFound if it names nothing."""
    path, _, qualname = target.partition(":")
    root = tree.root.resolve()
    if path.endswith(".py") or "/" in path or (root / path).is_dir():
        rel = relative(root, path, what="path")
        if rel.endswith(".py"):
            if rel not in tree.trees:
                raise NotFound(f"{rel} is not a Python file that parses here")
        elif not any(p.startswith(rel.rstrip("/") + "/") for p in tree.trees):
            raise NotFound(f"no Python files under {rel}/")
        else:
            rel = rel.rstrip("/") + "/"
        if qualname and not any(q == qualname or q.startswith(qualname + ".") for q, _n, _m in _defined(tree.trees.get(rel))):
            raise NotFound(f"{rel} defines no function or class {qualname!r}")
        return f"{rel}:{qualname}" if qualname else rel
    if module_path := tree.path_of(target):
        return module_path
    found = [f"{rel}:{q}" for rel, parsed in sorted(tree.trees.items()) for q, _n, _m in _defined(parsed)
             if target in (q, f"{tree.modules[rel]}.{q}") or "." not in target and q.rpartition(".")[2] == target]
    if not found:
        raise NotFound(f"{target!r} is not a file, module, function or class here")
    if len(found) > 1:
        raise CodemodError(f"{target!r} names several things ({', '.join(found[:5])}); give it as path:Name")
    return found[0]


def _defined(parsed: ast.Module | None) -> Iterator[tuple[str, ast.AST, bool]]:
    """(qualname, node, is_method) for module-level functions and classes and the methods of those classes."""
    if parsed is None:
        return
    for stmt in module_level(parsed.body):
        if isinstance(stmt, FunctionNode):
            yield stmt.name, stmt, False
        elif isinstance(stmt, ast.ClassDef):
            yield stmt.name, stmt, False
            for item in stmt.body:
                if isinstance(item, FunctionNode):
                    yield f"{stmt.name}.{item.name}", item, True


def _files(tree: SourceTree, path: str) -> list[str]:
    return [path] if path.endswith(".py") else sorted(r for r in tree.trees if r.startswith(path))


def _functions(tree: SourceTree, targets: list[str]) -> list[_Function]:
    found: dict[str, _Function] = {}
    for target in targets:
        path, _, qualname = target.partition(":")
        for rel in _files(tree, path):
            defined = list(_defined(tree.trees.get(rel)))
            repeated = {q for q, _n, _m in defined if [d[0] for d in defined].count(q) > 1}  # overloads, property setters
            for q, node, is_method in defined:
                if isinstance(node, FunctionNode) and q not in repeated and (not qualname or q == qualname or q.startswith(qualname + ".")):
                    found.setdefault(f"{rel}:{q}", _Function(target, rel, tree.modules[rel], q, node, is_method))
    return list(found.values())


def _in_targets(error: str, whole: set[str], spans: set[tuple[str, int]]) -> bool:
    found = re.match(r"(.+?):(\d+):", error)
    if not found:
        return False
    path, line = found[1], int(found[2])
    return any(path == t or t.endswith("/") and path.startswith(t) for t in whole) or (path, line) in spans


# -- inference ---------------------------------------------------------------------------------


def _interpreter_facts(env: TestEnvironment | None) -> tuple[list[str], tuple[int, int]]:
    """mypy flags that point it at the repository's environment, and that environment's Python version."""
    if env is None:
        return [], sys.version_info[:2]
    done = subprocess.run([env.python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise CodemodError(f"the repository's interpreter {env.python} does not start: {done.stderr.strip()[-200:]}")
    major, minor = (int(p) for p in done.stdout.strip().split("."))
    return ["--python-executable", env.python, "--python-version", f"{major}.{minor}"], (major, minor)


def _mypy_sources(tree: SourceTree) -> list[str]:
    """Every parsed file, one per module name (mypy refuses two files that claim one module)."""
    seen: dict[str, str] = {}
    for rel in sorted(tree.trees):
        seen.setdefault(tree.modules[rel], rel)
    return sorted(seen.values())


def _suggest(root: Path, tree: SourceTree, functions: list[_Function], flags: list[str]) -> dict[str, dict[str, object]]:
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
             "--follow-imports", "skip", *flags, *_mypy_sources(tree)],
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


def type_source(suggested: str, module: str, local_names: set[str], python: tuple[int, int]) -> str | None:
    """mypy's spelling of a type as source for this module, or None when it is not writable here.

    `pkg.calc.Decimal` in module pkg.calc becomes `Decimal`; `Any` and `Callable` become
    `typing.Any` and `typing.Callable` (libcst imports them); `Tuple[...]` becomes `tuple[...]`; `A | B` becomes `typing.Union[A, B]` before
    Python 3.10. A bare name that is not a builtin cannot be imported by anyone: None."""
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
            if any(part.startswith("_") for part in dotted.split(".")):
                self.unknown = True  # a private name of another module (`os._Environ`): not for importing
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


def _stub_for(function: _Function, signature: dict[str, object], local_names: set[str],
              python: tuple[int, int]) -> tuple[str, dict[str, str]] | None:
    """A stub `def` carrying the suggested types, in the function's own parameter layout, and
    the types of its `*args` and `**kwargs` ({"*": …, "**": …}), which libcst's visitor leaves."""
    arg_types = signature.get("arg_types")
    return_type = signature.get("return_type")
    if not isinstance(arg_types, list) or not isinstance(return_type, str):
        return None
    a = function.node.args
    skip_first = function.is_method and not _is_static(function.node)
    positional = [*a.posonlyargs, *a.args]
    typed_params = [*positional[1 if skip_first else 0:], *([a.vararg] if a.vararg else []), *a.kwonlyargs,
                    *([a.kwarg] if a.kwarg else [])]
    if len(arg_types) != len(typed_params):
        return None
    spelled = {}
    for param, suggested in zip(typed_params, arg_types, strict=True):
        source = type_source(str(suggested).lstrip("*"), function.module, local_names, python)
        if source is None:
            return None
        spelled[param.arg] = source
    returns = type_source(return_type, function.module, local_names, python)
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


def _all_any(function: _Function) -> dict[str, object]:
    return {"arg_types": ["Any"] * len(function.typed_parameters), "return_type": "Any"}


def _anys(signature: dict[str, object]) -> int:
    return len(re.findall(r"\bAny\b", json.dumps(signature)))


def _write(root: Path, tree: SourceTree, suggestions: dict[str, dict[str, object]], python: tuple[int, int], *,
           overwrite: bool = False) -> tuple[list[str], list[str]]:
    """Write the suggestions into their files (replacing hints already there only when
    `overwrite`); (labels annotated, labels whose types use Any)."""
    written: list[str] = []
    with_any: list[str] = []
    by_file: dict[str, list[_Function]] = {}
    for function in _functions(tree, sorted({label.rpartition(":")[0] for label in suggestions})):
        if function.label in suggestions:
            by_file.setdefault(function.path, []).append(function)
    for rel, functions in sorted(by_file.items()):
        local_names = bound_names(list(module_level(tree.trees[rel].body)))
        module_stub: list[str] = ["import typing"]
        classes: dict[str, list[str]] = {}
        stars: dict[str, dict[str, str]] = {}
        for function in functions:
            made = _stub_for(function, suggestions[function.label], local_names, python)
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


# -- the check -----------------------------------------------------------------------------------


def run_mypy(root: Path, env: TestEnvironment | None, files: list[str], strictness: str) -> tuple[list[str], str | None]:
    """mypy's error lines for `files` at `strictness`, with the repository's own configuration
    (and its own mypy when its environment has one), or (…, why it could not run)."""
    python = env.python if env else sys.executable
    has_own = subprocess.run([python, "-m", "mypy", "--version"], capture_output=True, timeout=60, check=False).returncode == 0
    command = [python, "-m", "mypy"] if has_own else [sys.executable, "-m", "mypy", *_interpreter_facts(env)[0]]
    with tempfile.TemporaryDirectory(prefix="turnout-mypy-") as scratch:
        try:
            done = subprocess.run(
                [*command, *STRICTNESS_FLAGS[strictness], "--follow-imports", "silent", "--cache-dir", scratch,
                 "--show-error-codes", "--no-error-summary", "--no-color-output", "--no-pretty", *files],
                cwd=root, capture_output=True, text=True, timeout=MYPY_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return [], f"mypy did not finish in {MYPY_TIMEOUT_S} s"
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    if done.returncode not in (0, 1) or (done.returncode == 1 and not errors):
        return [], (done.stderr.strip() or done.stdout.strip() or f"exit code {done.returncode}")[-300:]
    return errors, None
