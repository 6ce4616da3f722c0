"""`bench/gpu/run`: the GPU check in one command, on a bare CUDA machine with no network.

Phases, each a child process in its own process group, killed with all its children when its
time box runs out, so one engine's slow or broken build still leaves time for the other:

    device      what machine this is; CUDA usable or why not (probe_device.py)
    install     the wheels from bench/gpu/prepare, pip --no-index --no-deps, into a fresh folder
    imports     what the check uses imports, one call goes through turnout's door, and every
                carried package's requirements are compared with what is here (probe_imports.py)
    then at once:
      cpu tests   the GPU engines' CPU-side tests, against the packages found here
      models      the tiny and ~1B random-weight models
      build E     each engine's CUDA extension (TORCH_CUDA_ARCH_LIST from the device)
    gpu tests E pytest -m gpu for each engine that built
    bench S     bench/gpu_engines.py on the tiny model, then the ~1B one

Without CUDA every GPU phase is skipped, saying why: that is the CPU rehearsal. The table and a
JSON summary go to $OUT when it is set (where the GPU machine hands files back), else
bench/results/gpu/, with one log of every phase and the benchmarks' JSON. Exit 0 when the
wheels installed and imported and the check ran through: an engine that fails to build, a
failing test or benchmark is a row of the table, not an exit code. Exit 1 when the wheels did
not install or import (after an import failure the builds still run: they need only torch).
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
ENGINES = ("exllamav2", "exllamav3")
MODEL_SIZES = ("tiny", "1b")
# Where the GPU tests live: pytest -m gpu selects them, -k ENGINE one engine's.
GPU_TEST_FILES = ("tests/engines/test_gpu_engines.py", "tests/engines/test_conformance.py",
                  "tests/engines/gpu/test_exllamav3_backend.py")
CPU_TEST_PATHS = ("tests/engines/gpu", *GPU_TEST_FILES[:2])
# Seconds each phase may take at most; the budget clips them all.
BOXES = {"device": 90, "install": 120, "imports": 120, "cpu tests": 120, "build": 330, "models": 240,
         "gpu tests": 100, "bench tiny": 90, "bench 1b": 200}
RESERVE_S = 10  # kept for the summary
MIN_BOX_S = 15  # a phase with less time than this left is skipped, not started
LOG_TAIL_BYTES = 2 << 20  # per phase, in the one log that comes back


@dataclass
class Phase:
    name: str
    result: str = "skipped"  # ok | failed | timed out | skipped
    seconds: float = 0.0
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    log: str | None = None


class Check:
    """The phases run so far, the time left, and the environment every child runs in."""

    def __init__(self, work: Path, budget_s: float, cache: Path | None = None) -> None:
        self.work = work
        # Kept across runs on one machine: a second try reuses (or resumes) the extension builds
        # and the models instead of starting over.
        self.cache = cache or work / "cache"
        self.deadline = time.monotonic() + budget_s
        self.phases: list[Phase] = []
        self.site = work / "site"
        self.env = dict(os.environ, PYTHONUNBUFFERED="1", LITELLM_LOCAL_MODEL_COST_MAP="True",
                        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                        TORCH_EXTENSIONS_DIR=str(self.cache / "torch_extensions"))
        # ninja and the interpreter's other tools, wherever python3 was found from
        self.env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        self.env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(self.site), str(REPO), os.environ.get("PYTHONPATH")]))

    def use_device(self, device: dict[str, Any]) -> None:
        """Build for this device from here on. Every later phase gets the same settings: the
        extensions are compiled on first import, and a test or benchmark that imported them
        under another TORCH_CUDA_ARCH_LIST would start the whole build again."""
        if device.get("cuda"):
            self.env.update(TORCH_CUDA_ARCH_LIST=device["arch"], CUDA_HOME=device["cuda_home"],
                            PATH=os.pathsep.join([f"{device['cuda_home']}/bin", self.env["PATH"]]))

    def left(self) -> float:
        return self.deadline - time.monotonic() - RESERVE_S

    def add(self, phase: Phase) -> Phase:
        self.phases.append(phase)
        print(f"[{phase.name}] {phase.result} in {phase.seconds:.1f}s {phase.detail}", flush=True)
        return phase

    def skip(self, name: str, why: str) -> Phase:
        return self.add(Phase(name, "skipped", detail=why))

    def run(self, name: str, argv: list[str], box: str, env: dict[str, str] | None = None) -> Phase:
        """Run `argv` in its own process group under the time box `box` (clipped to the budget)."""
        seconds = min(BOXES[box], self.left())
        if seconds < MIN_BOX_S:
            return Phase(name, "skipped", detail=f"out of time ({max(self.left(), 0):.0f}s of the budget left)")
        log = self.work / f"{name.replace(' ', '-')}.log"
        started = time.monotonic()
        with log.open("wb") as out:
            out.write(f"$ {' '.join(argv)}\n".encode())
            out.flush()
            child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                     env=env or self.env, start_new_session=True)
            try:
                code = child.wait(timeout=seconds)
            except subprocess.TimeoutExpired:
                _kill_group(child)
                code = None
        phase = Phase(name, seconds=time.monotonic() - started, log=str(log))
        if code is None:
            phase.result, phase.detail = "timed out", f"stopped at its {seconds:.0f}s box; {last_line(log)}"
        elif code != 0:
            phase.result, phase.detail = "failed", f"exit code {code}; {last_line(log)}"
        else:
            phase.result = "ok"
        return phase


def _kill_group(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM the child, its process group and every process below it (ninja starts each
    compiler in a process group of its own), then SIGKILL whatever is left 5 s later."""
    below = _descendants(child.pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for kill, target in [(os.killpg, child.pid), *((os.kill, pid) for pid in below)]:
            try:
                kill(target, sig)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    child.wait()


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc (empty where there is no /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        for below in children.get(queue.pop(), []):
            found.append(below)
            queue.append(below)
    return found


def last_line(log: Path, width: int = 160) -> str:
    """The last line of a log worth showing (the error, usually)."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return (lines[-1] if lines else "no output")[:width]


def junit_counts(path: Path) -> dict[str, Any]:
    """pytest's --junit-xml read back: counts, the failures' names and first lines, and the
    first reason a test was skipped."""
    counts: dict[str, Any] = {"tests": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0,
                              "failures": [], "first_skip": None}
    if not path.exists():
        return counts
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        counts["tests"] += 1
        outcome = next((child for child in case if child.tag in ("failure", "error", "skipped")), None)
        if outcome is None:
            counts["passed"] += 1
            continue
        counts[{"failure": "failed", "error": "errors", "skipped": "skipped"}[outcome.tag]] += 1
        message = (outcome.get("message") or outcome.text or "").strip().splitlines()
        first = message[0][:200] if message else ""
        if outcome.tag == "skipped":
            counts["first_skip"] = counts["first_skip"] or first
        else:
            counts["failures"].append(f"{case.get('name')}: {first}")
    return counts


def pytest_argv(check: Check, name: str, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--junit-xml={_junit(check, name)}", *args]


def _junit(check: Check, name: str) -> Path:
    return check.work / f"{name.replace(' ', '-')}.xml"


def pytest_result(check: Check, phase: Phase) -> Phase:
    """A pytest phase judged by its junit XML: ok only when tests passed and none failed; the
    counts, and the first failure (or, when nothing passed, the first skip reason)."""
    if phase.result == "skipped":
        return phase
    counts = junit_counts(_junit(check, phase.name))
    phase.data = counts
    summary = f"{counts['passed']} passed, {counts['failed'] + counts['errors']} failed, {counts['skipped']} skipped"
    if counts["failures"]:
        summary += f"; first: {counts['failures'][0]}"
    elif counts["passed"] == 0:
        summary = ("no tests ran" if counts["tests"] == 0 else
                   f"no test passed: {counts['skipped']} skipped (first: {counts['first_skip']})")
        if phase.result == "ok":
            phase.result = "failed"
    if phase.detail and not counts["failures"]:  # how the run itself ended: exit code, time box
        summary += f"; {phase.detail}"
    phase.detail = summary
    return phase


def concurrently(check: Check, jobs: dict[str, tuple[list[str], str, dict[str, str]]]) -> dict[str, Phase]:
    """Run each job (argv, box, env) at once, each under its own box; their phases by name."""
    done: dict[str, Phase] = {}
    threads = [threading.Thread(target=lambda n=n, j=j: done.__setitem__(n, check.run(n, *j)))
               for n, j in jobs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return done


def json_phase(check: Check, name: str, box: str, script: str, *args: str) -> tuple[Phase, dict[str, Any]]:
    result = check.work / f"{name}.json"
    phase = check.run(name, [sys.executable, str(HERE / script), str(result), *args], box)
    data = json.loads(result.read_text()) if phase.result == "ok" and result.exists() else {}
    return phase, data


def device_phase(check: Check) -> dict[str, Any]:
    phase, info = json_phase(check, "device", "device", "probe_device.py")
    phase.data = info
    if info:
        found = (f"{info['device']}, sm {info['arch']}, {info['memory_gib']} GiB" if info.get("cuda")
                 else f"no CUDA: {info.get('why_no_cuda')}")
        phase.detail = (f"{found}; torch {info.get('torch')}, Python {info['python']}, "
                        f"{info['cpus']} cores, glibc {info['glibc']}")
    check.add(phase)
    return info


def install_phase(check: Check, wheels: Path) -> Phase:
    files = sorted(str(path) for path in wheels.glob("*.whl"))
    if not files:
        return check.add(Phase("install", "failed", detail=f"no wheels in {wheels}: run bench/gpu/prepare first"))
    phase = check.run("install", [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps",
                                  "--no-compile", "--no-cache-dir", "--disable-pip-version-check", "-q",
                                  "--target", str(check.site), *files], "install")
    if phase.result == "ok":
        phase.detail = f"{len(files)} wheels into {check.site}"
    return check.add(phase)


def imports_phase(check: Check, wheels: Path) -> Phase:
    phase, report = json_phase(check, "imports", "imports", "probe_imports.py", str(check.site),
                               str(wheels / "manifest.json"))
    phase.data = report
    if report:
        failed = report["failed"]
        if failed:
            phase.result = "failed"
            phase.detail = "; ".join(f"{module}: {why}" for module, why in failed.items())[:300]
        else:
            versions = report["versions"]
            phase.detail = ", ".join(f"{name} {versions[name]}" for name in ("turnout", "litellm", "exllamav2",
                                                                             "exllamav3", "llguidance", "torch"))
        if report["unmet"]:
            phase.detail += f"; {len(report['unmet'])} requirements not met here (first: {report['unmet'][0]})"
    return check.add(phase)


def gpu_phase_names(engines: list[str], sizes: list[str]) -> list[str]:
    return ["models", *(f"build {e}" for e in engines), *(f"gpu tests {e}" for e in engines),
            *(f"bench {s}" for s in sizes)]


def build_jobs(check: Check, device: dict[str, Any], engines: list[str], sizes: list[str]) -> dict[str, Any]:
    """The extension builds (both at once, sharing the cores) and the models, as jobs."""
    for stale in (check.cache / "torch_extensions").glob("**/lock"):
        stale.unlink()  # left by a build killed at its box; torch would wait on it for ever
    cores = device.get("cpus") or os.cpu_count() or 1
    env = dict(check.env, MAX_JOBS=str(max(1, cores * 3 // 4)))  # two builds at once: most cores each
    jobs: dict[str, Any] = {}
    for engine in engines:
        code = (f"import time; t = time.time(); from {engine}.ext import {engine}_ext as ext; "
                f"print('built', ext.__file__, f'in {{time.time() - t:.0f}}s')")
        jobs[f"build {engine}"] = ([sys.executable, "-c", code], "build", env)
    if sizes:
        makes = "; ".join(f"subprocess.run([sys.executable, 'bench/gpu_engines.py', '--size', '{size}', "
                          f"'--model-dir', '{check.cache / 'models' / size}', '--make-only'], check=True)"
                          for size in sizes)
        jobs["models"] = ([sys.executable, "-c", f"import subprocess, sys; {makes}"], "models", check.env)
    return jobs


def check_phases(check: Check, device: dict[str, Any], engines: list[str], sizes: list[str]) -> None:
    """The CPU-side tests, models and builds at once; then each built engine's GPU tests, then
    the benchmarks. Without CUDA only the CPU-side tests run."""
    jobs: dict[str, Any] = {"cpu tests": (pytest_argv(check, "cpu tests", ["-m", "not gpu and not slow",
                                                                          *CPU_TEST_PATHS]), "cpu tests", check.env)}
    if device.get("cuda"):
        jobs.update(build_jobs(check, device, engines, sizes))
    done = concurrently(check, jobs)
    check.add(pytest_result(check, done["cpu tests"]))
    if not device.get("cuda"):
        why = f"no CUDA ({device.get('why_no_cuda', 'the device probe failed')})"
        for name in gpu_phase_names(engines, sizes):
            check.skip(name, why)
        return
    for name in jobs:
        if name != "cpu tests":
            if done[name].result == "ok" and done[name].log:
                done[name].detail = last_line(Path(done[name].log))  # "built …/exllamav3_ext.so in 212s"
            check.add(done[name])
    built = [e for e in engines if done[f"build {e}"].result == "ok"]
    for engine in engines:
        if engine not in built:
            check.skip(f"gpu tests {engine}", f"its build did not finish ({done[f'build {engine}'].result})")
            continue
        name = f"gpu tests {engine}"
        argv = pytest_argv(check, name, ["-m", "gpu", "-k", engine, *GPU_TEST_FILES])
        check.add(pytest_result(check, check.run(name, argv, "gpu tests")))
    for size in sizes:
        if not built:
            check.skip(f"bench {size}", "no engine built")
        elif done["models"].result != "ok":
            check.skip(f"bench {size}", f"the models were not written ({done['models'].result})")
        else:
            bench_phase(check, size, check.cache / "models" / size, built)


def bench_phase(check: Check, size: str, model_dir: Path, engines: list[str]) -> Phase:
    out = check.work / f"gpu_engines-{size}.json"
    phase = check.run(f"bench {size}", [sys.executable, "bench/gpu_engines.py", "--size", size, "--model-dir",
                                        str(model_dir), "--engines", ",".join(engines), "--out", str(out)],
                      f"bench {size}")
    if out.exists():
        phase.data = {"out": str(out)}
        phase.detail, measured_all = bench_detail(json.loads(out.read_text()), engines)
        if not measured_all and phase.result == "ok":
            phase.result = "failed"
    return check.add(phase)


def bench_detail(report: dict[str, Any], engines: list[str]) -> tuple[str, bool]:
    """One line per engine asked for, and whether every one of them was measured: an engine
    the benchmark could not load, or that failed mid-run, is named with its reason."""
    parts, measured_all = [], True
    for name in engines:
        run = report["turnout"].get(name, {})
        if run.get("batch1_decode_tps"):
            parts.append(f"{name} {run['batch1_decode_tps']:.0f} tok/s at batch 1")
            continue
        measured_all = False
        why = run.get("error") or report["settings"].get("engines", {}).get(name, {}).get("reason") or "not measured"
        parts.append(f"{name} failed: {why}")
    bound = f" (bound {report['bound_tps']:.0f})" if report.get("bound_tps") else ""
    return ", ".join(parts) + bound, measured_all


def table(phases: list[Phase]) -> str:
    lines = [f"{'phase':<20} {'result':<10} {'seconds':>8}  detail", "-" * 100]
    lines += [f"{p.name:<20} {p.result:<10} {p.seconds:>8.1f}  {p.detail}" for p in phases]
    return "\n".join(lines) + "\n"


def write_outputs(check: Check, out: Path, started: float, exit_code: int) -> None:
    """The table, the JSON summary, one log of every phase and the benchmarks' JSON, in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    text = table(check.phases)
    (out / "gpu_check.txt").write_text(text)
    summary = {"exit_code": exit_code, "wall_s": time.monotonic() - started,
               "phases": [asdict(p) for p in check.phases]}
    (out / "gpu_check.json").write_text(json.dumps(summary, indent=2) + "\n")
    with (out / "gpu_check.log").open("wb") as log:
        for phase in check.phases:
            if phase.log and Path(phase.log).exists():
                data = Path(phase.log).read_bytes()
                cut = f" (first {len(data) - LOG_TAIL_BYTES} bytes cut)" if len(data) > LOG_TAIL_BYTES else ""
                log.write(f"\n===== {phase.name}: {phase.result}{cut} =====\n".encode())
                log.write(data[-LOG_TAIL_BYTES:])
    for size in MODEL_SIZES:
        produced = check.work / f"gpu_engines-{size}.json"
        if produced.exists():
            (out / produced.name).write_bytes(produced.read_bytes())
    print("\n" + text + f"written to {out}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The GPU check in one command (see bench/gpu/run_check.py).")
    parser.add_argument("--wheels", type=Path, default=REPO / ".gpu-wheels", help="what bench/gpu/prepare wrote")
    parser.add_argument("--out", type=Path, help="where results go (default: $OUT, else bench/results/gpu)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/turnout-gpu-check"),
                        help="scratch: installed wheels, logs, results (emptied first)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/turnout-gpu-cache"),
                        help="extension builds and models, kept for a second run on the same machine")
    parser.add_argument("--budget-s", type=float, default=540, help="the whole run's wall-clock limit")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated: exllamav2,exllamav3")
    parser.add_argument("--sizes", default=",".join(MODEL_SIZES), help="benchmark models: tiny,1b (or none)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    out = args.out or (Path(os.environ["OUT"]) if os.environ.get("OUT") else REPO / "bench/results/gpu")
    engines = [e for e in args.engines.split(",") if e]
    unknown = sorted(set(engines) - set(ENGINES))
    sizes = [s for s in args.sizes.split(",") if s and s != "none"]
    if unknown or set(sizes) - set(MODEL_SIZES):
        parser.error(f"--engines takes {', '.join(ENGINES)}; --sizes takes {', '.join(MODEL_SIZES)} or none")
    subprocess.run(["rm", "-rf", str(args.work)], check=True)
    args.work.mkdir(parents=True)
    check = Check(args.work, args.budget_s, args.cache)
    device = device_phase(check)
    check.use_device(device)
    if install_phase(check, args.wheels.resolve()).result != "ok":
        for name in ["imports", "cpu tests", *gpu_phase_names(engines, sizes)]:
            check.skip(name, "the wheels did not install")
        exit_code = 1
    else:
        # An import that fails here is reported, and the builds still run: they need only torch.
        imported = imports_phase(check, args.wheels.resolve()).result == "ok"
        check_phases(check, device, engines, sizes)
        exit_code = 0 if imported else 1
    write_outputs(check, out, started, exit_code)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
