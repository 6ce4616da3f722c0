"""What each step of the refactor graph does to the isolated workspace.

Deterministic tools do the work wherever they can (rope renames and moves, ruff's f-string
fixes, the repository's own tests); models only choose, or write whole definitions when
no codemod fits. Nothing here touches the user's repository.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from turnout.agents import Coder, Evidence, Snippet
from turnout.agents.refactor_planner import RefactorPlan
from turnout.agents.schemas import Verdict
from turnout.engines import tag
from turnout.graphs._refactor_state import Attempt
from turnout.tools.code_index import CodeIndex
from turnout.tools.operations import Plan, parse_plan
from turnout.tools.test_runner import TestReport

IDENTIFIERS = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


def index_for(workspace: Path) -> CodeIndex:
    """A code index of the workspace whose cache lives beside it, never inside it."""
    index = CodeIndex(workspace, cache_dir=workspace.parent / f"{workspace.name}.index")
    index.refresh()
    return index


def modules_of(index: CodeIndex) -> list[str]:
    """Dotted module names of the workspace's Python files (a leading `src.` dropped)."""
    names = set()
    for path in index.files:
        if path.endswith(".py") and not path.startswith(("tests/", "test/")):
            dotted = path[:-3].replace("/", ".").removesuffix(".__init__")
            names.add(dotted.removeprefix("src."))
    return sorted(names)


def candidate_symbols(index: CodeIndex, request: str, limit: int = 12) -> list[str]:
    """The symbols a request is about: those it names, else the best search hits.

    A small model picks well among a few names and badly among hundreds."""
    symbols = index.symbols()
    words = set(IDENTIFIERS.findall(request))
    named = [s for s in symbols if s in words or s.rsplit(".", 1)[-1] in words]
    if named:
        return named[:limit]
    hits = [hit.chunk.symbol for hit in index.search(request, k=limit) if hit.chunk.symbol]
    return list(dict.fromkeys(hits))[:limit]


# Words a request is written in, never the name it asks for.
_PROSE = frozenset(
    "a an and as be called class clearer everywhere f format from function give helper i i'd "
    "import in into it keeping like make method module move name named new old please rename "
    "renamed should so the to use with working".split()
)
FORMATTING_WORDS = ("f-string", "fstring", "format", "%-format", "string formatting")
RENAME_WORDS = re.compile(r"\brenam\w*|\bcall(?:ed)?\b|\bnamed?\b|\bknown\s+as\b|\bcalled\b", re.IGNORECASE)
MOVE_WORDS = re.compile(r"\bmov\w*|\bbelongs?\b|\brelocat\w*|\bput\b|\binto\b", re.IGNORECASE)
TYPE_HINT_WORDS = re.compile(r"\btype[ -]?(?:hints?|annotations?)|\bannotat|\btyped\b|\btypes\b", re.IGNORECASE)


def candidate_new_names(index: CodeIndex, request: str) -> list[str]:
    """Identifiers the request writes that the repository does not define yet: where a new
    name can come from. Empty when the request writes none (then any identifier goes)."""
    existing = {s.rsplit(".", 1)[-1] for s in index.symbols()}
    words = dict.fromkeys(w for w in re.findall(r"[A-Za-z_][A-Za-z0-9_]*", request))
    return [w for w in words if w not in existing and w.lower() not in _PROSE]


def evidence_for(index: CodeIndex, plan: Plan, request: str) -> Evidence:
    """The definitions of the names the plan is about (or search hits), for a model-written edit."""
    snippets: list[Snippet] = []
    names = sorted({n for op in plan.operations for n in op.names() if "/" not in n})
    for name in names:
        for chunk in index.definitions(name):
            snippets.append(Snippet(path=chunk.path, start_line=chunk.start_line, end_line=chunk.end_line,
                                    score=1.0, symbol=chunk.symbol, text=chunk.text))
    if not snippets:
        for hit in index.search(request, k=5):
            snippets.append(Snippet(path=hit.chunk.path, start_line=hit.chunk.start_line,
                                    end_line=hit.chunk.end_line, score=hit.score, symbol=hit.chunk.symbol,
                                    text=hit.chunk.text))
    return Evidence(query=request, keywords=names[:6], snippets=snippets[:12])


def request_mismatch(plan: RefactorPlan, request: str) -> str | None:
    """Why the plan is not what the request asked for (a small planner misreads requests;
    tests alone would pass a wrong but harmless rename)."""
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", request))
    lowered = request.lower()
    if plan.operation == "fstrings" and not any(w in lowered for w in FORMATTING_WORDS):
        return "the plan converts string formatting, but the request does not ask for that"
    # A new name written like code ("read_inventory") asks for a rename by itself ("make f go by
    # read_inventory"); a plain word ("docstring") does only beside a word that says rename.
    if plan.operation == "rename" and not RENAME_WORDS.search(request) and not _code_like(plan.new_name or ""):
        return "the plan renames, but the request does not ask for a new name"
    if plan.operation == "move" and not MOVE_WORDS.search(request) and (plan.target_module or "") not in words:
        return "the plan moves code, but the request does not ask for that"
    if plan.operation == "type_hints" and not TYPE_HINT_WORDS.search(request):
        return "the plan adds type hints, but the request does not ask for that"
    if plan.operation in ("rename", "move", "type_hints", "edit") and plan.symbol:
        named = plan.symbol in words or plan.symbol.rsplit(".", 1)[-1] in words
        if not named and any(w in words for w in IDENTIFIERS.findall(request) if "_" in w or w[:1].isupper()):
            return f"the plan is about {plan.symbol!r}, which the request does not name"
    if plan.operation == "rename" and plan.new_name and plan.new_name not in words:
        return f"the plan's new name {plan.new_name!r} is not in the request"
    return None


def _code_like(name: str) -> bool:
    return "_" in name.strip("_") or any(c.isupper() for c in name[1:]) or any(c.isdigit() for c in name)


def plan_problem(plan: RefactorPlan, index: CodeIndex) -> str | None:
    """Why the plan cannot be carried out as a change (None when it can)."""
    if plan.operation == "nothing":
        return "the request names nothing in this repository"
    if plan.operation in ("rename", "move", "type_hints", "edit") and (not plan.symbol or not index.definitions(plan.symbol)):
        return f"no definition of {plan.symbol!r} in this repository" if plan.symbol else "the request names no symbol"
    if plan.operation == "rename" and (not plan.new_name or plan.new_name == plan.symbol.rsplit(".", 1)[-1]):  # type: ignore[union-attr]
        return "the request gives no new name"
    if plan.operation == "move" and not plan.target_module:
        return "the request names no module to move into"
    return None


def plan_from_answer(answer: RefactorPlan, request: str) -> Plan:
    """The planner model's one operation as a plan (its answer was checked by `plan_problem`)."""
    if answer.operation == "rename":
        operation: dict[str, object] = {"op": "rename", "old": answer.symbol, "new": answer.new_name}
    elif answer.operation == "move":
        operation = {"op": "move", "symbols": [(answer.symbol or "").rsplit(".", 1)[-1]], "to_module": answer.target_module}
    elif answer.operation == "fstrings":
        operation = {"op": "convert_formatting"}
    elif answer.operation == "type_hints":
        operation = {"op": "add_type_hints", "targets": [answer.symbol]}
    else:
        operation = {"op": "edit", "symbol": answer.symbol, "instruction": request[:400]}
    return parse_plan({"operations": [operation]}, "the planner's answer")


def known_names(index: CodeIndex) -> set[str]:
    """The names the repository defines (last parts) and its modules: words of a request that
    name code."""
    return {s.rsplit(".", 1)[-1] for s in index.symbols()} | set(modules_of(index))


async def run_model_edit(
    workspace: Path, request: str, evidence: Evidence, coder: Coder, previous: list[Attempt], model: str | None
) -> list[str]:
    """Ask the coder for whole-definition replacements and apply them (each must parse)."""
    from turnout.tools.edits import replace_definition

    prompt = tag.as_tagged(tag.request(request))
    if previous and previous[-1].problem:
        # The problem quotes tool messages (a syntax error names the line): tool output.
        prompt = prompt + tag.compose(
            "\nThe previous attempt failed: {problem}", problem=tag.tool_output(previous[-1].problem, origin="previous attempt")
        )
        if previous[-1].tests is not None:
            prompt = prompt + tag.compose(
                "\nTest output:\n{tests}", tests=tag.test_output(previous[-1].tests.output_tail[-1500:], origin="tests")
            )
    result = await coder.run(prompt, evidence=evidence, model=model)
    changed: list[str] = []
    for edit in result.edits:
        symbol = edit.symbol or next((s.symbol for s in evidence.snippets if s.path == edit.path and s.symbol), None)
        if symbol is None:
            raise ValueError(f"the coder's edit to {edit.path} names no function or class to replace")
        report = await asyncio.to_thread(replace_definition, workspace, edit.path, symbol, edit.code)
        changed.extend(report.changed)
    return sorted(set(changed))


def new_failures(baseline: TestReport, after: TestReport) -> list[str]:
    return sorted(set(after.failures) - set(baseline.failures))


def tests_problem(baseline: TestReport, after: TestReport, allow_failing_baseline: bool) -> str | None:
    """Why the tests after the edit do not count as a pass (None when they do)."""
    if after.timed_out:
        return f"the tests timed out ({after.summary()})"
    if after.no_tests_ran:
        return f"no tests ran after the edit ({after.summary()})"
    if after.ok:
        return None
    if allow_failing_baseline and not baseline.ok:
        added = new_failures(baseline, after)
        if not added and after.failed <= baseline.failed and after.errors <= baseline.errors:
            return None
        return f"new test failures: {', '.join(added) or after.summary()}"
    return f"tests fail after the edit: {after.summary()}"


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")


def usable_reasons(review: Verdict, diff: str) -> list[str]:
    """The reasons of a model's review that say something about this diff: a sentence (three
    words or more) naming an identifier or file that the diff touches. "1.0.1", "test_a.py" or
    "test_test_test" alone say nothing, however often repeated."""
    changed = "\n".join(line for line in diff.splitlines() if line.startswith(("+", "-")))
    touched = set(_WORD.findall(changed))
    usable = []
    for reason in dict.fromkeys(r.strip() for r in review.reasons):
        if len(reason.split()) >= 3 and touched & set(_WORD.findall(reason)):
            usable.append(reason)
    return usable


def keep_attempt(folder: Path, attempt: Attempt, diff: str, tests: TestReport | None) -> None:
    """What one attempt did, kept after the workspace is gone: `attempt-N.diff` (its change)
    and `attempt-N.txt` (method, why it was not accepted, leftovers, the tests' output)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"attempt-{attempt.number}"
    stem.with_suffix(".diff").write_text(diff)
    lines = [f"method: {attempt.method} ({attempt.tier})", f"problem: {attempt.problem or 'none: accepted'}"]
    lines += [f"left for a person: {item}" for item in attempt.remaining]
    lines += [f"not proven: {item}" for item in attempt.missing]
    if tests is not None:
        lines += [f"tests: {tests.command}", f"result: {tests.summary()}", "", tests.output_tail]
    stem.with_suffix(".txt").write_text("\n".join(lines) + "\n")
