"""When a hybrid run may say `finished`: its answer is grounded in what the steps found.

A small planner ends runs with `{"action": "finish", "answer": "finish"}`, or with a sentence
no step result supports; reporting that as `finished` is a wrong result reported as a
success. `ground` decides:

- The evidence: every snippet an ok step found gets an id (`E1`, `E2`, …, the best fitting
  first), shown to the planner with its path, lines and symbol; the planner cites ids (a
  choice among them, under constrained decoding), and an answer that names a snippet's
  symbol or path cites it too. Tests are evidence only when the task is about tests.
- For a question, one snippet must fit it best, by a check that needs no model (`fit`): its
  symbol shares at least two words with the question (one, when the question has only one
  word that is not a common one; `saved` and `save_inventory` share `save`), or it is the
  name the question asks about, or — for "what calls X" — its code
  calls X and it is not X. Two snippets that fit equally well are no answer; the planner
  must have cited the one that fits. The answer is then that snippet, as `path:line symbol`,
  after the planner's sentence when the sentence names it.
- The sentence (`answer_problem`): not empty, not a control word, not the task repeated, and
  sharing a word with the steps' results. A task that is not a question needs the sentence
  or a citation.

A run that fails ends `unanswered`, with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from turnout.agents.schemas import Snippet
from turnout.engines import tag
from turnout.engines.tag import Tagged
from turnout.graphs._hybrid_state import Citation, StepResult

MAX_EVIDENCE = 12  # ids shown to the planner: the best fitting snippets of the ok steps
STRONG = 10.0  # fit of the very name asked about, or of a caller asked for
_QUESTION = re.compile(
    r"^\s*(where|what|which|who|whom|whose|why|how|when|is|are|does|do|did|can|could|should|will|"
    r"explain|describe|find|show|list|tell)\b",
    re.IGNORECASE,
)
_CALLERS = re.compile(r"\b(calls?|calling|callers?|uses|invokes?)\b", re.IGNORECASE)
_TESTS = re.compile(r"\btest", re.IGNORECASE)
_FUNCTIONS = re.compile(r"\b(function|functions|method|methods)\b", re.IGNORECASE)
_CLASSES = re.compile(r"\b(class|classes|type|types|error|exception)\b", re.IGNORECASE)
_IDENTIFIER = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*(?:_[A-Za-z0-9_]+|[a-z][A-Z][A-Za-z0-9_]*)\b|\b\w+(?=\()")
_SUFFIXES = ("ing", "ers", "er", "ed", "es", "s", "e")
_FILE = re.compile(r"[\w./-]+\.(?:py|pyi|md|txt|toml|cfg|json|yaml|yml|js|ts)(?::\d+(?:-\d+)?)?")


def is_question(task: str) -> bool:
    """A task that asks for facts rather than changes: it ends with `?` or opens with a question word."""
    return task.strip().endswith("?") or bool(_QUESTION.match(task))


def is_test_path(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")
    name = parts[-1]
    return (
        any(p in ("tests", "test", "testing") for p in parts[:-1])
        or name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"
    )


def fit(snippet: Snippet, task: str) -> float:
    """How well a snippet answers the question, without a model: the words its name (a
    method's own, not its class's) shares with the question (less a tenth for each it does
    not), or STRONG for the name asked about
    or a caller asked for; 0 when nothing fits, or when the question asks for a function and
    the symbol is a class (CamelCase), or for a class, error or type and it is a function."""
    names = set(_IDENTIFIER.findall(task))
    last = (snippet.symbol or "").rsplit(".", 1)[-1]
    if last[:1].isalpha() or last[:1] == "_":
        is_class = last.lstrip("_")[:1].isupper()
        if (is_class and _FUNCTIONS.search(task)) or (not is_class and _CLASSES.search(task) and not _FUNCTIONS.search(task)):
            return 0.0  # a class does not answer "which function", nor a function "which class"
    if _CALLERS.search(task) and names:
        calls = any(name != last and re.search(rf"\b{re.escape(name)}\s*\(", snippet.text) for name in names)
        return STRONG if calls else 0.0
    if last and last in names:
        return STRONG
    symbol, asked = _stems(last), _stems(task)  # a method fits by its own name, not its class's
    shared = symbol & asked
    return len(shared) - 0.1 * len(symbol - shared) if shared else 0.0


def evidence_items(results: list[StepResult], task: str = "") -> dict[str, Snippet]:
    """The snippets the ok steps found, each once, the best fitting first, under the id the
    planner cites them by; tests only when the task is about tests (a test of `round_money`
    does not round money)."""
    seen: dict[tuple[str, int], Snippet] = {}
    tests_wanted = bool(_TESTS.search(task))
    for result in results:
        if result.status == "ok" and result.evidence is not None:
            for snippet in result.evidence.snippets:
                if tests_wanted or not is_test_path(snippet.path):
                    seen.setdefault((snippet.path, snippet.start_line), snippet)
    ranked = sorted(seen.values(), key=lambda s: -fit(s, task))[:MAX_EVIDENCE]
    return {f"E{i}": snippet for i, snippet in enumerate(ranked, start=1)}


def describe_evidence(items: dict[str, Snippet]) -> Tagged:
    """`E1 path:start-end symbol` per snippet: paths and names, never the code."""
    if not items:
        return tag.as_tagged(tag.instructions("(no evidence found)"))
    return tag.join(
        tag.compose(f"{key} {{where}}", where=tag.path(f"{s.path}:{s.start_line}-{s.end_line} {s.symbol or ''}".strip()))
        for key, s in items.items()
    )


@dataclass
class Grounded:
    answer: str
    citations: list[Citation]
    problem: str | None  # why the run may not say finished; None when it may


def ground(answer: str, cites: list[str], task: str, results: list[StepResult]) -> Grounded:
    """The planner's final `answer` and `cites` (evidence ids) checked against what the steps found."""
    items = evidence_items(results, task)
    chosen = [key for key in dict.fromkeys(cites) if key in items]
    chosen += [key for key, s in items.items() if key not in chosen and _names(s, answer)]
    problem = answer_problem(answer, task, results)
    sentence = "" if problem else answer.strip()
    if not is_question(task):
        citations = [_citation(items[key]) for key in chosen if fit(items[key], task) > 0]
        text = _text(sentence, citations)
        return Grounded(text, citations, problem if not citations else None)
    if not items:
        return Grounded(sentence, [], "the steps found no evidence to answer the question from")
    best, why_not = _best_fit(items, task)
    if best is None:
        return Grounded(sentence, [], f"{why_not}{'; ' + problem if problem else ''}")
    citation = _citation(items[best])
    if best not in chosen:
        cited = ", ".join(_where(items[key]) for key in chosen) or "nothing"
        also = f"; {problem}" if problem else ""
        return Grounded(
            sentence, [], f"the answer cites {cited}, but the evidence that fits the question is {_where(items[best])}{also}"
        )
    about_it = sentence if _only_about(items[best], sentence) else ""  # a sentence about something else is dropped
    return Grounded(_text(about_it, [citation]), [citation], None)


def _best_fit(items: dict[str, Snippet], task: str) -> tuple[str | None, str]:
    """The one snippet that fits the question, or None and why there is none."""
    scores = {key: fit(snippet, task) for key, snippet in items.items()}
    top = max(scores.values())
    needed = min(2, len(_stems(task)))  # "Where is tax computed?" asks about one word
    if top < needed - 0.5:
        words = "two words" if needed == 2 else "a word"
        return None, f"no snippet found fits the question (of {len(items)}: none shares {words} with it)"
    leaders = [key for key, score in scores.items() if abs(score - top) < 1e-9]
    if len(leaders) > 1:
        return None, "several snippets fit the question equally: " + ", ".join(_where(items[k]) for k in leaders[:4])
    return leaders[0], ""


def _text(sentence: str, citations: list[Citation]) -> str:
    shown = "; ".join(c.text for c in citations)
    return f"{sentence} ({shown})" if sentence and shown else sentence or shown


def _where(snippet: Snippet) -> str:
    return f"{snippet.path}:{snippet.start_line} {snippet.symbol or ''}".strip()


def _citation(snippet: Snippet) -> Citation:
    return Citation(path=snippet.path, line=snippet.start_line, end_line=snippet.end_line, symbol=snippet.symbol)


def _names(snippet: Snippet, answer: str) -> bool:
    """Whether the answer names the snippet's symbol (its last part) or its file."""
    names = {snippet.path, snippet.path.rsplit("/", 1)[-1]}
    if snippet.symbol:
        names.add(snippet.symbol.rsplit(".", 1)[-1])
    return any(re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", answer) for name in names if len(name) >= 3)


def _only_about(snippet: Snippet, sentence: str) -> bool:
    """Whether the sentence names the snippet, and no file but the snippet's."""
    files = {m.split(":")[0] for m in _FILE.findall(sentence)}
    return _names(snippet, sentence) and files <= {snippet.path, snippet.path.rsplit("/", 1)[-1]}


def _stems(text: str) -> set[str]:
    """The words of `text` (see `_words`) without their common endings: `saved`, `save` and
    `saves` are all `sav`."""
    stems = set()
    for word in _words(text):
        for suffix in _SUFFIXES:
            if word.endswith(suffix) and len(word) - len(suffix) >= 3:
                word = word[: -len(suffix)]
                break
        stems.add(word)
    return stems


# Words a planner echoes from its own controls instead of answering.
CONTROL_WORDS = frozenset({
    "finish", "finished", "done", "answer", "replan", "stop", "continue", "none", "null", "n/a", "na", "ok",
    "yes", "no", "unknown", "plan", "task", "step", "steps", "result", "results", "complete", "completed",
})
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]{2,}")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_COMMON = frozenset({
    "the", "and", "for", "with", "that", "this", "from", "are", "was", "were", "which", "where", "what", "when",
    "there", "their", "have", "has", "into", "its", "not", "but", "you", "your", "can", "will", "function",
    "functions", "class", "method", "file", "code", "defined", "computed", "called", "calls", "returns", "return",
    "module", "found", "find", "here", "also", "all", "any", "one", "used", "uses", "using", *CONTROL_WORDS,
})


def answer_problem(answer: str, task: str, results: list[StepResult]) -> str | None:
    """Why `answer` does not count as one for `task`, given the steps' results; None if it does."""
    text = answer.strip()
    if not text:
        return "the planner finished with an empty answer"
    if text.strip(" .!\"'`").lower() in CONTROL_WORDS:
        return f"the planner's answer {text!r} is a control word, not an answer"
    if text.rstrip("?. ").lower() == task.strip().rstrip("?. ").lower():
        return "the planner's answer repeats the task"
    done = [r for r in results if r.status == "ok"]
    if not done:
        return "no step produced a result to answer from"
    found = set().union(*(_words(_what_it_found(r)) for r in done))
    if not _words(text) & found:
        return "the answer mentions nothing any step found (no symbol, path or word of the step results)"
    return None


def _what_it_found(result: StepResult) -> str:
    parts = [result.summary, result.answer or ""]
    if result.evidence is not None:
        parts += [f"{s.path} {s.symbol or ''} {s.text}" for s in result.evidence.snippets]
    if result.code is not None:
        parts += [f"{e.path} {e.symbol or ''}" for e in result.code.edits]
    return "\n".join(parts)


def _words(text: str) -> set[str]:
    """Identifier-like words, lowercased, without the common ones (and each part of a dotted,
    slashed, snake or camel case name too: `shop/pricing.py` is also `pricing`, `taxForRegion`
    and `tax_for_region` are also `tax` and `region`)."""
    words = set()
    for word in _WORD.findall(text):
        word = _CAMEL.sub("_", word.strip("./-")).lower()
        for part in {word, *re.split(r"[./_-]", word)}:
            if len(part) >= 3 and part not in _COMMON:
                words.add(part)
    return words
