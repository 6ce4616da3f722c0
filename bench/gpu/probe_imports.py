"""The GPU check's install proof: with the carried wheels on the path, import what the check
uses, make one call through turnout's door, and compare every carried package's requirements
with what this interpreter has. Writes JSON to argv[1].

    python probe_imports.py RESULT.json SITE_DIR MANIFEST.json

Run with SITE_DIR and the repository first on PYTHONPATH (bench/gpu/run does it). The
exllama packages are found, not imported: their import builds a CUDA extension, which is the
next phase's work.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

MODULES = [
    "turnout", "turnout.engines", "turnout.cli", "turnout.engines.exllamav2", "turnout.engines.exllamav3",
    "turnout.engines.gpu", "turnout.engines.gpu.schema_constraint", "turnout.engines.gpu.exllamav2_backend",
    "turnout.engines.gpu.exllamav3_backend",
    "llguidance", "litellm", "langgraph.graph", "pytest_asyncio",
]
FOUND_ONLY = ["exllamav2", "exllamav3"]


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def unmet_requirements(site: Path, left_out: set[str]) -> tuple[list[str], list[str]]:
    """(requirements of the carried packages that this interpreter does not meet, those that
    name a package deliberately left out)."""
    try:
        from packaging.requirements import Requirement
    except ImportError:
        return ["packaging is not importable: requirements not checked"], []
    unmet, expected = [], []
    for dist in metadata.distributions(path=[str(site)]):
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            try:
                found = metadata.version(requirement.name)
            except metadata.PackageNotFoundError:
                found = None
            if found is not None and requirement.specifier.contains(found, prereleases=True):
                continue
            message = f"{dist.metadata['Name']} needs {requirement.name}{requirement.specifier} (found {found or 'none'})"
            (expected if _canonical(requirement.name) in left_out else unmet).append(message)
    return sorted(set(unmet)), sorted(set(expected))


async def one_call() -> str:
    from turnout.engines import complete, scripted

    with scripted.scripted("gpu-check", ["the door works"]):
        result = await complete("scripted/gpu-check", "hello")
    return f"{result.model}: {result.text!r}"


def probe(site: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    report: dict[str, Any] = {"failed": {}}
    for module in MODULES:
        try:
            importlib.import_module(module)
        except Exception as exc:
            report["failed"][module] = f"{type(exc).__name__}: {exc}"
    for package in FOUND_ONLY:
        if importlib.util.find_spec(package) is None:
            report["failed"][package] = "not installed"
    try:
        report["door"] = asyncio.run(one_call())
    except Exception as exc:
        report["failed"]["complete()"] = f"{type(exc).__name__}: {exc}"
    import turnout

    report["versions"] = {"turnout": turnout.__version__}
    for name in ["litellm", "langgraph", "pydantic", "exllamav2", "exllamav3", "llguidance",
                 "torch", "numpy", "tokenizers", "safetensors", "jinja2", "transformers", "pytest"]:
        try:
            report["versions"][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            report["versions"][name] = None
    left_out = {_canonical(name) for name in manifest.get("left_out", {})}
    report["unmet"], report["unmet_left_out"] = unmet_requirements(site, left_out)
    from turnout.engines._gpu_engine import unavailable_reason

    report["engines"] = {package: unavailable_reason(package) for package in FOUND_ONLY}
    return report


if __name__ == "__main__":
    result, site, manifest = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    loaded = json.loads(manifest.read_text()) if manifest.exists() else {}
    result.write_text(json.dumps(probe(site, loaded), indent=2) + "\n")
