"""What every benchmark shares: percentiles, run summaries, switchable tracing, results files.

Benchmarks run as scripts (`python bench/NAME.py`), so this module is imported as `_common`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


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
