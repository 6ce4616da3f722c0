"""The GPU check's own logic (bench/gpu): time boxes, test reports, the wheel plan and slimming,
and the rehearsal's verdict. Offline and fast; the whole check is rehearsed by .ci/run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench" / "gpu"))

import prepare_wheels  # noqa: E402
import rehearsal  # noqa: E402
import run_check  # noqa: E402


@pytest.fixture
def check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> run_check.Check:
    monkeypatch.setattr(run_check, "MIN_BOX_S", 0.1)
    monkeypatch.setattr(run_check, "RESERVE_S", 0)
    return run_check.Check(tmp_path, budget_s=60)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("own_session", [False, True], ids=["grandchild-in-group", "grandchild-in-own-session"])
def test_a_phase_past_its_box_is_killed_with_everything_below_it_and_the_next_phase_runs(
    check: run_check.Check, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, own_session: bool
) -> None:
    """ninja starts each compiler in a process group of its own; a compiler that outlived
    its build would take cores from the other engine's build."""
    monkeypatch.setitem(run_check.BOXES, "build", 1.0)
    pid_file = tmp_path / "grandchild.pid"
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    spawn = ("import subprocess, sys, time; "
             f"p = subprocess.Popen([sys.executable, '-c', {stubborn!r}], start_new_session={own_session}); "
             f"open({str(pid_file)!r}, 'w').write(str(p.pid)); print('compiling', flush=True); time.sleep(60)")
    slow = check.run("build exllamav2", [sys.executable, "-c", spawn], "build")
    assert slow.result == "timed out" and slow.seconds < 15
    assert "stopped at its 1s box; compiling" in slow.detail
    grandchild = int(pid_file.read_text())
    for _ in range(100):  # killed; gone once init has reaped it
        if not _alive(grandchild):
            break
        time.sleep(0.05)
    assert not _alive(grandchild)
    after = check.run("build exllamav3", [sys.executable, "-c", "print('built')"], "build")
    assert after.result == "ok"


def test_a_phase_is_not_started_when_the_budget_is_spent(tmp_path: Path) -> None:
    check = run_check.Check(tmp_path, budget_s=5)  # less than RESERVE_S + MIN_BOX_S
    phase = check.run("bench 1b", [sys.executable, "-c", "raise SystemExit(3)"], "bench 1b")
    assert phase.result == "skipped" and "out of time" in phase.detail


def test_a_failing_command_reports_its_exit_code_and_last_line(check: run_check.Check) -> None:
    phase = check.run("install", [sys.executable, "-c", "import sys; print('ERROR: no wheel for x'); sys.exit(2)"],
                      "install")
    assert phase.result == "failed" and phase.detail == "exit code 2; ERROR: no wheel for x"


def test_pytest_results_are_read_from_junit_xml(check: run_check.Check, tmp_path: Path) -> None:
    tests = tmp_path / "test_sample.py"
    tests.write_text("import pytest\n"
                     "def test_passes(): pass\n"
                     "def test_fails(): assert 1 == 2, 'one is not two'\n"
                     "@pytest.mark.skip(reason='no CUDA')\ndef test_skipped(): pass\n")
    name = "gpu tests exllamav3"
    argv = run_check.pytest_argv(check, name, ["-p", "no:asyncio", "--rootdir", str(tmp_path), str(tests)])
    phase = run_check.pytest_result(check, check.run(name, argv, "gpu tests"))
    assert phase.result == "failed"
    assert phase.data["passed"] == 1 and phase.data["failed"] == 1 and phase.data["skipped"] == 1
    assert phase.detail.startswith("1 passed, 1 failed, 1 skipped; first: test_fails: AssertionError: one is not two")


def test_a_pytest_run_that_ran_no_tests_is_a_failure(check: run_check.Check, tmp_path: Path) -> None:
    empty = tmp_path / "test_empty.py"
    empty.write_text("")
    argv = run_check.pytest_argv(check, "cpu tests", ["-p", "no:asyncio", "--rootdir", str(tmp_path), str(empty)])
    phase = run_check.pytest_result(check, check.run("cpu tests", argv, "cpu tests"))
    assert phase.result == "failed" and phase.detail.startswith("no tests ran")


def test_a_pytest_run_where_every_test_skipped_is_a_failure(check: run_check.Check, tmp_path: Path) -> None:
    tests = tmp_path / "test_skips.py"
    tests.write_text("import pytest\n@pytest.mark.skip(reason='needs a CUDA GPU')\ndef test_gpu(): pass\n")
    argv = run_check.pytest_argv(check, "gpu tests exllamav2", ["-p", "no:asyncio", "--rootdir", str(tmp_path), str(tests)])
    phase = run_check.pytest_result(check, check.run("gpu tests exllamav2", argv, "gpu tests"))
    assert phase.result == "failed"
    assert phase.detail == "no test passed: 1 skipped (first: needs a CUDA GPU)"


def test_every_test_file_with_gpu_tests_is_run_by_the_check() -> None:
    gpu_mark = re.compile(r"^\s*@pytest\.mark\.gpu\b|marks=pytest\.mark\.gpu\b", re.MULTILINE)
    marked = {str(p.relative_to(REPO)) for p in (REPO / "tests").rglob("*.py") if gpu_mark.search(p.read_text())}
    marked = {path.replace("conftest.py", "test_conformance.py") for path in marked}  # its `engine` fixture
    assert marked <= set(run_check.GPU_TEST_FILES)
    assert all((REPO / path).exists() for path in run_check.CPU_TEST_PATHS)


def test_outputs_fit_what_the_device_hands_back(check: run_check.Check, tmp_path: Path) -> None:
    check.add(run_check.Phase("device", "ok", 1.0, "H200"))
    out = tmp_path / "out"
    run_check.write_outputs(check, out, time.monotonic(), 0)
    files = sorted(p.name for p in out.iterdir())
    assert files == ["gpu_check.json", "gpu_check.log", "gpu_check.txt"]
    assert json.loads((out / "gpu_check.json").read_text())["phases"][0]["name"] == "device"
    assert len(files) + len(run_check.MODEL_SIZES) <= 8  # the device returns at most 8 files


# prepare


PACKAGES = {
    "need": {"extras": ["exllamav3"], "also": ["pytest-asyncio>=0.24"]},
    "leave_out": {"ruff": "a binary"},
    "image": {"packages": ["torch", "NumPy", "typing_extensions"], "pins": []},
}


def test_the_resolution_splits_into_carried_image_and_left_out() -> None:
    pinned = {"torch": "2.11.0", "numpy": "2.5.2", "typing-extensions": "4.16.0", "ruff": "0.17.6",
              "litellm": "1.110.2"}
    plan = prepare_wheels.split(pinned, PACKAGES)
    assert plan.carry == {"litellm": "1.110.2"}
    assert plan.image == {"numpy": "2.5.2", "torch": "2.11.0", "typing-extensions": "4.16.0"}
    assert plan.left_out == {"ruff": "a binary"}


def test_requirements_are_turnouts_dependencies_with_the_extras_once(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\ndependencies = ["pydantic>=2"]\n'
                         '[project.optional-dependencies]\nexllamav3 = ["exllamav3==1.6.5", "pydantic >=2"]\n')
    assert prepare_wheels.requirements(PACKAGES, pyproject) == ["pydantic>=2", "exllamav3==1.6.5",
                                                                "pytest-asyncio>=0.24"]


def test_device_wheels_are_asked_for_every_glibc_up_to_the_devices() -> None:
    target = prepare_wheels.Target("device", "3.12", "x86_64-manylinux_2_31", [])
    args = target.pip_args()
    platforms = [args[i + 1] for i, arg in enumerate(args) if arg == "--platform"]
    assert platforms[0] == "manylinux_2_31_x86_64" and "manylinux_2_17_x86_64" in platforms
    assert "manylinux_2_32_x86_64" not in platforms and "manylinux2014_x86_64" in platforms
    assert args[:2] == ["--python-version", "3.12"]


def _wheel(path: Path, files: dict[str, bytes]) -> Path:
    record = "".join(f"{name},,\n" for name in files) + "demo-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, data in files.items():
            wheel.writestr(name, data)
        wheel.writestr("demo-1.0.dist-info/RECORD", record)
    return path


def test_slimming_drops_files_and_their_record_lines_and_pip_installs_the_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prepare_wheels, "LZMA_FROM_BYTES", 0)  # recompress this small wheel too
    wheel = _wheel(tmp_path / "demo-1.0-py3-none-any.whl", {
        "demo/__init__.py": b"VALUE = 1\n",
        "demo/ui/index.html": b"<html>" + b"x" * 4096,
        "demo-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n",
        "demo-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    })
    dropped, recompressed = prepare_wheels.slim(wheel, ["demo/ui/"])
    assert (dropped, recompressed) == (1, True)
    with zipfile.ZipFile(wheel) as slimmed:
        assert "demo/ui/index.html" not in slimmed.namelist()
        assert "demo/ui/" not in slimmed.read("demo-1.0.dist-info/RECORD").decode()
        assert {i.compress_type for i in slimmed.infolist()} == {zipfile.ZIP_LZMA}
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                    "--disable-pip-version-check", "--target", str(target), str(wheel)], check=True)
    assert (target / "demo" / "__init__.py").read_text() == "VALUE = 1\n"
    assert not (target / "demo" / "ui").exists()


def test_the_transfer_counts_tracked_and_untracked_files_but_not_ignored_ones(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text(".gpu-wheels/\n")
    (tmp_path / "kept.txt").write_bytes(b"x" * 100)
    (tmp_path / ".gpu-wheels").mkdir()
    (tmp_path / ".gpu-wheels" / "big.whl").write_bytes(b"x" * 10_000)
    assert prepare_wheels.working_tree_bytes(tmp_path) == 100 + len(".gpu-wheels/\n")


# rehearsal


def _summary(**results: tuple[str, str]) -> dict:
    names = [*rehearsal.MUST_PASS, *run_check.gpu_phase_names(["exllamav3"], ["tiny"])]
    phases = [{"name": n, "result": "ok", "detail": ""} if n in rehearsal.MUST_PASS
              else {"name": n, "result": "skipped", "detail": "no CUDA (torch sees none)"} for n in names]
    for phase in phases:
        if phase["name"] in results:
            phase["result"], phase["detail"] = results[phase["name"]]
    return {"exit_code": 0, "phases": phases}


def test_a_rehearsal_where_every_gpu_phase_skipped_for_no_cuda_passes() -> None:
    assert rehearsal.verdict(_summary(), ["exllamav3"], ["tiny"]) == []


def test_a_rehearsal_that_ran_a_gpu_phase_or_failed_an_import_fails() -> None:
    problems = rehearsal.verdict(_summary(**{"build exllamav3": ("failed", "nvcc missing"),
                                             "imports": ("failed", "litellm: ImportError")}),
                                 ["exllamav3"], ["tiny"])
    assert problems == ["imports: failed: litellm: ImportError",
                        "build exllamav3: should be skipped for 'no CUDA', was failed"]


def test_the_stand_in_image_leaves_out_the_gpu_stack() -> None:
    pins = rehearsal.stand_ins({"numpy": "2.5.2", "torch": "2.11.0", "nvidia-cublas": "13.1", "rich": "15.0.0"},
                               ["torch", "nvidia-*"])
    assert pins == ["numpy==2.5.2", "rich==15.0.0"]


def test_on_a_gpu_machine_a_build_that_times_out_skips_only_its_own_tests_and_benchmarks(
    check: run_check.Check, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The GPU branch's flow, with the builds and models stood in for by small commands: the
    engine whose build ran past its box gets no tests and no benchmark; the other gets both."""
    monkeypatch.setitem(run_check.BOXES, "build", 1.0)
    quick = [sys.executable, "-c", "print('done')"]
    stuck = [sys.executable, "-c", "import time; print('compiling q_gemm.cu', flush=True); time.sleep(60)"]

    def stand_in_jobs(check: run_check.Check, device: dict, engines: list[str], sizes: list[str]) -> dict:
        return {"build exllamav2": (stuck, "build", check.env), "build exllamav3": (quick, "build", check.env),
                "models": (quick, "models", check.env)}

    monkeypatch.setattr(run_check, "build_jobs", stand_in_jobs)
    monkeypatch.setattr(run_check, "CPU_TEST_PATHS", ("tests/engines/gpu/test_stops.py",))
    device = {"cuda": True, "arch": "9.0", "cuda_home": "/usr/local/cuda", "cpus": 2}
    run_check.check_phases(check, device, ["exllamav2", "exllamav3"], ["tiny"])
    phases = {p.name: p for p in check.phases}
    assert list(phases) == ["cpu tests", "build exllamav2", "build exllamav3", "models",
                            "gpu tests exllamav2", "gpu tests exllamav3", "bench tiny"]
    assert phases["cpu tests"].result == "ok"
    assert phases["build exllamav2"].result == "timed out" and "compiling q_gemm.cu" in phases["build exllamav2"].detail
    assert phases["gpu tests exllamav2"].result == "skipped"
    assert phases["gpu tests exllamav2"].detail == "its build did not finish (timed out)"
    # Here torch sees no GPU, so exllamav3's GPU tests all skip, and that is not a pass.
    assert phases["gpu tests exllamav3"].result == "failed"
    assert phases["gpu tests exllamav3"].detail.startswith("no test passed")
    bench = phases["bench tiny"]
    assert bench.result == "failed" and "--engines exllamav3 " in Path(bench.log).read_text().splitlines()[0] + " "
    assert bench.detail.startswith("exit code 1; ") and "GPU" in bench.detail  # its own "needs a GPU" line


def test_builds_tests_and_benchmarks_share_the_devices_build_settings(check: run_check.Check) -> None:
    """The extensions compile on first import: a test importing them under another arch list
    would rebuild them from scratch inside its own time box."""
    device = {"cuda": True, "arch": "9.0", "cuda_home": "/usr/local/cuda", "cpus": 16}
    check.use_device(device)
    jobs = run_check.build_jobs(check, device, ["exllamav3"], ["tiny"])
    build_env = jobs["build exllamav3"][2]
    for name in ("TORCH_CUDA_ARCH_LIST", "CUDA_HOME", "TORCH_EXTENSIONS_DIR", "PYTHONPATH"):
        assert build_env[name] == check.env[name]
    assert check.env["TORCH_CUDA_ARCH_LIST"] == "9.0" and build_env["MAX_JOBS"] == "12"
    assert check.env["PATH"].startswith("/usr/local/cuda/bin")


def test_without_cuda_no_build_settings_are_made_up(tmp_path: Path) -> None:
    check = run_check.Check(tmp_path, budget_s=60)
    check.use_device({"cuda": False, "why_no_cuda": "torch sees no CUDA device"})
    assert "TORCH_CUDA_ARCH_LIST" not in check.env or check.env["TORCH_CUDA_ARCH_LIST"] == os.environ.get(
        "TORCH_CUDA_ARCH_LIST")


def test_a_benchmark_that_measured_no_engine_is_not_a_pass() -> None:
    report = {"turnout": {"exllamav3": {"batch1_decode_tps": 812.4}},
              "settings": {"engines": {"exllamav2": {"available": False, "reason": "import failed: OSError"},
                                       "exllamav3": {"available": True}}}, "bound_tps": 2180.0}
    assert run_check.bench_detail(report, ["exllamav3"]) == ("exllamav3 812 tok/s at batch 1 (bound 2180)", True)
    detail, measured_all = run_check.bench_detail(report, ["exllamav2", "exllamav3"])
    assert not measured_all
    assert detail.startswith("exllamav2 failed: import failed: OSError, exllamav3 812 tok/s")
    empty = {"turnout": {}, "settings": {"engines": {}}}
    assert run_check.bench_detail(empty, ["exllamav3"]) == ("exllamav3 failed: not measured", False)


def test_without_prepared_wheels_the_install_says_to_run_prepare(check: run_check.Check, tmp_path: Path) -> None:
    (tmp_path / "no-wheels").mkdir()
    phase = run_check.install_phase(check, tmp_path / "no-wheels")
    assert phase.result == "failed" and "run bench/gpu/prepare first" in phase.detail


def test_an_unknown_engine_or_size_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        run_check.main(["--engines", "exllamav4"])
    assert stopped.value.code == 2 and "--engines takes exllamav2, exllamav3" in capsys.readouterr().err
