"""The GPU check's first phase: what machine this is, written as JSON to the path in argv[1].

Standard library, plus torch when it imports. Says whether CUDA is usable and, if not, why;
finds nvcc and the compute capability the engines' extensions are built for.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


def _first_line(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    return lines[-1] if done.returncode == 0 and lines else None


def cuda_home() -> str | None:
    """CUDA_HOME if set, else /usr/local/cuda, else the folder above the nvcc on PATH."""
    candidates = [os.environ.get("CUDA_HOME"), "/usr/local/cuda"]
    if nvcc := shutil.which("nvcc"):
        candidates.append(str(Path(nvcc).resolve().parent.parent))
    return next((c for c in candidates if c and (Path(c) / "bin" / "nvcc").exists()), None)


def probe() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(), "executable": sys.executable, "machine": platform.machine(),
        "glibc": platform.libc_ver()[1] or None, "cpus": os.cpu_count(), "cuda": False,
        "flash_attn": importlib.util.find_spec("flash_attn") is not None,
    }
    home = cuda_home()
    info["cuda_home"] = home
    info["nvcc"] = _first_line([f"{home}/bin/nvcc", "--version"]) if home else None
    info["nvidia_smi"] = _first_line(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                                      "--format=csv,noheader"])
    try:
        import torch
    except Exception as exc:  # torch missing or broken: no CUDA, and say which
        info["torch"] = None
        info["why_no_cuda"] = f"torch does not import ({type(exc).__name__}: {exc})"
        return info
    info["torch"] = torch.__version__
    info["torch_cuda"] = torch.version.cuda
    if not torch.cuda.is_available():
        info["why_no_cuda"] = f"torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)"
        return info
    major, minor = torch.cuda.get_device_capability(0)
    properties = torch.cuda.get_device_properties(0)
    info.update(cuda=True, device=torch.cuda.get_device_name(0), devices=torch.cuda.device_count(),
                arch=f"{major}.{minor}", memory_gib=round(properties.total_memory / 2**30, 1),
                multiprocessors=properties.multi_processor_count)
    if home is None:
        info["cuda"] = False
        info["why_no_cuda"] = "no nvcc (CUDA_HOME, /usr/local/cuda or PATH): the extensions cannot be built"
    return info


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(probe(), indent=2) + "\n")
