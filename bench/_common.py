"""What every benchmark shares: percentiles, run summaries, overhead ratios and their table,
switchable tracing and its trace-file check, results files.

Benchmarks run as scripts (`python bench/NAME.py`), so this module is imported as `_common`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"  # where every benchmark writes its JSON by default


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 1]."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def environment(*packages: str) -> dict[str, Any]:
    """Versions of `packages`, Python, CPU count and a UTC timestamp, for the JSON results."""
    return {
        **{name.replace("-", "_"): package_version(name) for name in packages},
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "timestamp": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_results(path: Path, report: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


def summarise_runs(records: list[dict[str, Any]], steps: int) -> dict[str, float]:
    """Median/p90 of `run_s`, per-step µs, and the same with `flush_s` added."""
    runs = [r["run_s"] for r in records]
    total = [r["run_s"] + r["flush_s"] for r in records]
    return {"median_run_s": statistics.median(runs), "p90_run_s": percentile(runs, 0.9),
            "median_step_us": statistics.median(runs) / steps * 1e6,
            "median_flush_s": statistics.median(r["flush_s"] for r in records),
            "median_run_plus_flush_s": statistics.median(total), "runs": len(records)}


def paired_ratio(records: list[dict[str, Any]], key: str, numerator: str, denominator: str) -> float:
    """Median of numerator/denominator within each iteration (adjacent runs): drift cancels."""
    runs = {(r["index"], r[key]): r["run_s"] for r in records}
    return statistics.median(runs[i, numerator] / runs[i, denominator] for i in {r["index"] for r in records})


def overhead_ratios(summary: dict[str, dict[str, float]], records: list[dict[str, Any]], key: str,
                    treated: str, baseline: str, steps: int) -> dict[str, float]:
    """`treated` against `baseline` (entries of `summary`, values of `key` in `records`): median
    run ratio without and with flush, overhead per step in µs, median of the paired ratios."""
    new, base = summary[treated], summary[baseline]
    return {"steps": steps, "median_run": new["median_run_s"] / base["median_run_s"],
            "median_run_incl_flush": new["median_run_plus_flush_s"] / base["median_run_s"],
            "overhead_per_step_us": (new["median_run_s"] - base["median_run_s"]) / steps * 1e6,
            "median_paired": paired_ratio(records, key, treated, baseline)}


def print_overhead_table(column: str, rows: Iterable[tuple[str, str]], summary: dict[str, dict[str, float]],
                         ratios: dict[str, float], check: dict[str, Any], labels: dict[str, str]) -> None:
    """One line per (label, summary key) in `rows` under a `column` heading, then the trace-file
    check and the four `ratios`, each printed as "labels[key] = value"."""
    header = f"{column:<28} {'median ms':>10} {'p90 ms':>9} {'per-step µs':>12} {'flush ms':>9}"
    print(header)
    print("-" * len(header))
    for label, key in rows:
        s = summary[key]
        print(f"{label:<28} {s['median_run_s'] * 1e3:>10.2f} {s['p90_run_s'] * 1e3:>9.2f} "
              f"{s['median_step_us']:>12.1f} {s['median_flush_s'] * 1e3:>9.2f}")
    steps = ratios["steps"]
    print(f"\ntrace files: {check['files_as_expected']}/{check['expected_files']} with 1 + {steps} + {steps} "
          f"spans (found {check['files']} files; spans/file {check['spans_per_file']})")
    print(f"{labels['overhead_per_step_us']} = {ratios['overhead_per_step_us']:.1f} µs")
    print(f"{labels['median_run']} = {ratios['median_run']:.3f} (goal <= 1.05)")
    print(f"{labels['median_run_incl_flush']} = {ratios['median_run_incl_flush']:.3f}")
    print(f"{labels['median_paired']} = {ratios['median_paired']:.3f}")


def check_traces(traces_dir: Path, expected_runs: int, steps: int, is_node_span: Callable[[str], bool]) -> dict[str, Any]:
    """Read the trace files back: each run's should hold 1 workflow span, `steps` chat spans and
    `steps` node spans, a node span being one whose name `is_node_span` accepts."""
    from turnout.telemetry import read_trace, trace_files

    traces = [read_trace(p) for p in trace_files(traces_dir)]
    names = [Counter("workflow" if s.name.startswith("invoke_workflow") else "chat" if s.name.startswith("chat ")
                     else "node" if is_node_span(s.name) else s.name for s in t.spans) for t in traces]
    good = sum(n == Counter(workflow=1, node=steps, chat=steps) for n in names)
    return {"files": len(traces), "expected_files": expected_runs, "files_as_expected": good,
            "spans_per_file": sorted({sum(n.values()) for n in names}), "expected_spans_per_file": 1 + 2 * steps,
            "ok": len(traces) == expected_runs == good}


class TracingSwitch:
    """One SDK provider for the whole process whose sampler records spans only while `on`:
    "off" is then the OpenTelemetry no-op path a user without `configure()` gets, measured
    in the same process as "on" (a global provider can be installed only once)."""

    def __init__(self) -> None:
        self.on = False

    def install(self, traces_dir: Path) -> None:
        """Install the provider and add turnout's trace-file exporter to it."""
        from opentelemetry import trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult

        from turnout import telemetry

        switch = self

        class SwitchSampler(Sampler):
            def should_sample(self, parent_context: Any, trace_id: int, name: str, kind: Any = None,
                              attributes: Any = None, links: Any = None, trace_state: Any = None) -> SamplingResult:
                if not switch.on:
                    return SamplingResult(Decision.DROP)
                state = trace.get_current_span(parent_context).get_span_context().trace_state
                return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, state)

            def get_description(self) -> str:
                return "SwitchSampler"

        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "turnout-bench"}), sampler=SwitchSampler())
        trace.set_tracer_provider(provider)
        assert telemetry.configure(traces_dir=traces_dir, console=False, otlp=False) is provider
