"""When a hybrid run may say `finished`: its answer says something, and something a step found.

A small planner ends runs with `{"action": "finish", "answer": "finish"}`, or with a sentence
no step result supports; reporting that as `finished` is a wrong result reported as a
success. `answer_problem` is the check; a run that fails it ends `unanswered`, with the reason.
"""

from __future__ import annotations

import re

from turnout.graphs._hybrid_state import StepResult

# Words a planner echoes from its own controls instead of answering.
CONTROL_WORDS = frozenset({
    "finish", "finished", "done", "answer", "replan", "stop", "continue", "none", "null", "n/a", "na", "ok",
    "yes", "no", "unknown", "plan", "task", "step", "steps", "result", "results", "complete", "completed",
})
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]{2,}")
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
    """Identifier-like words, lowercased, without the common ones (and each part of a dotted or
    slashed name too: `shop/pricing.py` is also `pricing`)."""
    words = set()
    for word in _WORD.findall(text):
        word = word.strip("./-").lower()
        for part in {word, *re.split(r"[./-]", word)}:
            if len(part) >= 3 and part not in _COMMON:
                words.add(part)
    return words
