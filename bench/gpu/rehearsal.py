"""`bench/gpu/rehearse`: the GPU check rehearsed on a CPU machine, so that the script itself
is never why a GPU run fails. CI runs it.

1. `prepare --for here`: the same resolution, split, download and slimming as for the GPU
   machine, for this interpreter.
2. A fresh virtual environment stands in for the GPU machine's image: the packages the
   resolution left to the image, at the versions it chose, plus torch's local CPU build
   (`torch==2.13.0+cpu`, which no registry serves, so no CUDA build can come instead).
   Nothing else of this machine's site-packages is visible to it.
3. `bench/gpu/run` in that environment, cut off from the network where `unshare -rn` works:
   the wheels install with pip --no-index into a fresh folder, everything the check uses
   imports, the GPU engines' CPU-side tests pass, and every GPU phase is skipped, saying
   "no CUDA".
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

from prepare_wheels import load_packages
from run_check import ENGINES, MODEL_SIZES, gpu_phase_names

TORCH_CPU = "torch==2.13.0+cpu"
MUST_PASS = ("device", "install", "imports", "cpu tests")


def stand_ins(image: dict[str, str], gpu_stack: list[str]) -> list[str]:
    """The image's packages that the resolution chose, pinned, less the GPU stack itself."""
    return [f"{name}=={version}" for name, version in sorted(image.items())
            if not any(fnmatch.fnmatch(name, pattern) for pattern in gpu_stack)]


def make_image(venv: Path, pins: list[str]) -> bool:
    """The stand-in image; True when torch's CPU build went in with it."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    base = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--only-binary=:all:"]
    if subprocess.run([*base, TORCH_CPU, *pins], check=False).returncode == 0:
        return True
    print(f"rehearsal: {TORCH_CPU} is not on this machine; the stand-in image has no torch", flush=True)
    subprocess.run([*base, *pins], check=True)
    return False


def offline_prefix() -> list[str]:
    """`unshare -rn` (a new user and network namespace: no network at all) where it works."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True, check=False).returncode == 0:
        return [unshare, "-rn"]
    print("rehearsal: unshare -rn is not permitted here; the run is offline only by pip --no-index", flush=True)
    return []


def verdict(summary: dict, engines: list[str], sizes: list[str]) -> list[str]:
    """What is wrong with a rehearsal's summary: empty when it did what a CPU run must."""
    phases = {p["name"]: p for p in summary["phases"]}
    problems = [f"exit code {summary['exit_code']}"] if summary["exit_code"] != 0 else []
    for name in MUST_PASS:
        phase = phases.get(name)
        if phase is None or phase["result"] != "ok":
            problems.append(f"{name}: {phase['result'] + ': ' + phase['detail'] if phase else 'missing'}")
    for name in gpu_phase_names(engines, sizes):
        phase = phases.get(name)
        if phase is None or phase["result"] != "skipped" or "no CUDA" not in phase["detail"]:
            problems.append(f"{name}: should be skipped for 'no CUDA', was {phase and phase['result']}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rehearse the GPU check on this CPU machine.")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one, removed after)")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="turnout-gpu-rehearsal-"))
    try:
        wheels, out = work / "wheels", work / "out"
        subprocess.run([sys.executable, str(HERE / "prepare"), "--for", "here", "--dest", str(wheels)], check=True)
        manifest = json.loads((wheels / "manifest.json").read_text())
        packages = load_packages()
        make_image(work / "image", stand_ins(manifest["image"], packages["image"]["gpu_stack"]))
        command = [*offline_prefix(), str(work / "image" / "bin" / "python"), str(HERE / "run"),
                   "--wheels", str(wheels), "--out", str(out), "--work", str(work / "check"), "--cache", str(work / "cache")]
        subprocess.run(command, cwd=REPO, check=False)
        summary = json.loads((out / "gpu_check.json").read_text())
        problems = verdict(summary, list(ENGINES), list(MODEL_SIZES))
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    if problems:
        print("rehearsal FAILED:\n  " + "\n  ".join(problems))
        return 1
    print(f"rehearsal passed: wheels installed offline, imports and CPU-side tests passed, "
          f"every GPU phase skipped for no CUDA ({summary['wall_s']:.0f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
