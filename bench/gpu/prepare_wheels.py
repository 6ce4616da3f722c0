"""`bench/gpu/prepare`: the wheels the GPU check needs that the GPU machine lacks, slimmed to
fit the device transfer limit together with the working tree.

Runs where the package registry is reachable. One resolution (uv, for the target's Python and
platform, held to the image's known versions) gives every package the check needs; the
image's own packages and the ones `packages.toml` leaves out are dropped; the rest are
downloaded as wheels (pip), slimmed (files the check never reads dropped, large wheels
recompressed with LZMA, which pip installs like any wheel), and measured against the limit.
A manifest beside the wheels records every decision, for `bench/gpu/run` and the rehearsal.

Standard library only, plus `uv` (a dev dependency) and pip.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PACKAGES_FILE = HERE / "packages.toml"
MIB = 1 << 20
TRANSFER_LIMIT_MIB = 64  # the device tool's limit on what travels with one call
MARGIN_MIB = 4  # kept free under the limit: the tree grows between prepare and the call
LZMA_FROM_BYTES = 1 * MIB  # smaller wheels gain too little to be worth the time
DEFAULT_DEST = REPO / ".gpu-wheels"
MANIFEST = "manifest.json"


def canonical(name: str) -> str:
    """PEP 503 name: what a wheel, a requirement and packages.toml agree on."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Target:
    """Whose wheels: the GPU machine's, or this interpreter's (the CPU rehearsal)."""

    name: str
    python: str
    platform: str | None  # None: this machine's own
    pins: list[str]

    def uv_args(self) -> list[str]:
        if self.platform is None:
            return ["--python", sys.executable]
        return ["--python-version", self.python, "--python-platform", self.platform]

    def pip_args(self) -> list[str]:
        if self.platform is None:
            return []
        arch, _, tag = self.platform.partition("-")
        glibc_minor = int(tag.rsplit("_", 1)[1])
        tags = [f"manylinux_2_{n}_{arch}" for n in range(glibc_minor, 16, -1)]
        tags += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]
        args = ["--python-version", self.python, "--implementation", "cp"]
        for tag in tags:
            args += ["--platform", tag]
        return args


@dataclass
class Plan:
    """The resolution split three ways."""

    carry: dict[str, str] = field(default_factory=dict)  # name -> version
    image: dict[str, str] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)  # name -> why


@dataclass
class Wheel:
    name: str
    version: str
    file: str
    bytes: int
    downloaded_bytes: int
    dropped_files: int = 0
    recompressed: bool = False


def load_packages(path: Path = PACKAGES_FILE) -> dict:
    return tomllib.loads(path.read_text())


def requirements(packages: dict, pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """turnout's runtime dependencies, the extras the check needs, and `need.also`."""
    project = tomllib.loads(pyproject.read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in packages["need"]["extras"]:
        wanted += project["optional-dependencies"][extra]
    wanted += packages["need"].get("also", [])
    seen: dict[str, str] = {}
    for requirement in wanted:  # the extras share some packages: keep each line once
        seen.setdefault(requirement.replace(" ", ""), requirement)
    return list(seen.values())


def target_for(which: str, packages: dict) -> Target:
    if which == "device":
        device = packages["device"]
        return Target("device", device["python"], device["platform"], list(packages["image"]["pins"]))
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Target("here", here, None, [])


def resolve(wanted: list[str], target: Target, workdir: Path) -> dict[str, str]:
    """Every package (name -> version) the requirements need, for `target`, as one uv lock."""
    uv = shutil.which("uv")
    command = [uv] if uv else [sys.executable, "-m", "uv"]
    requirements_file = workdir / "requirements.in"
    requirements_file.write_text("\n".join(wanted) + "\n")
    constraints_file = workdir / "constraints.txt"
    constraints_file.write_text("\n".join(target.pins) + "\n")
    command += ["pip", "compile", str(requirements_file), "-c", str(constraints_file),
                "--only-binary", ":all:", "--no-header", "--no-annotate", "--quiet", *target.uv_args()]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise SystemExit("prepare needs uv to resolve for another Python and platform: python3 -m pip install uv")
    if done.returncode != 0:
        raise SystemExit(f"resolution failed ({' '.join(command[:3])} …):\n{done.stderr.strip()}")
    pinned = {}
    for line in done.stdout.splitlines():
        name, sep, version = line.strip().partition("==")
        if sep:
            pinned[canonical(name)] = version.split(";")[0].strip()
    return pinned


def split(pinned: dict[str, str], packages: dict) -> Plan:
    image = {canonical(name) for name in packages["image"]["packages"]}
    leave_out = {canonical(name): why for name, why in packages["leave_out"].items()}
    plan = Plan()
    for name, version in sorted(pinned.items()):
        if name in image:
            plan.image[name] = version
        elif name in leave_out:
            plan.left_out[name] = leave_out[name]
        else:
            plan.carry[name] = version
    return plan


def download(plan: Plan, target: Target, dest: Path) -> dict[str, Path]:
    """One wheel per carried package, into `dest` (emptied first); name -> file."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    pins = dest / "carry.txt"
    pins.write_text("".join(f"{name}=={version}\n" for name, version in plan.carry.items()))
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", *target.pip_args(), "-d", str(dest), "-r", str(pins)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    pins.unlink()
    if done.returncode != 0:
        raise SystemExit(f"download failed:\n{done.stderr.strip()}")
    files = {canonical(wheel.name.split("-")[0]): wheel for wheel in dest.glob("*.whl")}
    missing = sorted(set(plan.carry) - set(files))
    extra = sorted(set(files) - set(plan.carry))
    if missing or extra:
        raise SystemExit(f"download gave the wrong wheels: missing {missing}, unexpected {extra}")
    return files


def slim(wheel: Path, drop_prefixes: list[str]) -> tuple[int, bool]:
    """Rewrite `wheel` without files under `drop_prefixes` (and their RECORD lines),
    LZMA-compressed when it is large. Returns (files dropped, recompressed)."""
    large = wheel.stat().st_size >= LZMA_FROM_BYTES
    if not drop_prefixes and not large:
        return 0, False
    compression = zipfile.ZIP_LZMA if large else zipfile.ZIP_DEFLATED
    dropped = 0
    rewritten = wheel.with_suffix(".slim")
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(rewritten, "w", compression=compression) as out:
        for info in source.infolist():
            if any(info.filename.startswith(prefix) for prefix in drop_prefixes):
                dropped += 1
                continue
            data = source.read(info)
            if info.filename.endswith(".dist-info/RECORD") and drop_prefixes:
                lines = data.decode().splitlines(keepends=True)
                data = "".join(line for line in lines
                               if not any(line.startswith(prefix) for prefix in drop_prefixes)).encode()
            copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            copy.external_attr = info.external_attr  # keeps executables executable
            copy.compress_type = compression
            out.writestr(copy, data)
    rewritten.replace(wheel)
    return dropped, large


def working_tree_bytes(repo: Path = REPO) -> int:
    """What the device tool sends besides carried paths: tracked files and untracked files
    that git does not ignore (a `shared/` folder inside the checkout is among them)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=repo, capture_output=True, check=True).stdout
    total = 0
    for name in filter(None, listed.split(b"\0")):
        path = repo / os.fsdecode(name)
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def build(which: str, dest: Path) -> dict:
    """The whole of prepare: resolve, split, download, slim, measure; the manifest it writes."""
    packages = load_packages()
    target = target_for(which, packages)
    with tempfile.TemporaryDirectory(prefix="turnout-gpu-prepare-") as tmp:
        pinned = resolve(requirements(packages), target, Path(tmp))
    plan = split(pinned, packages)
    stale = sorted(canonical(n) for n in packages["leave_out"] if canonical(n) not in pinned)
    files = download(plan, target, dest)
    wheels = []
    for name, path in sorted(files.items()):
        downloaded = path.stat().st_size
        prefixes = [p for package, ps in packages["slim"].items() if canonical(package) == name for p in ps]
        dropped, recompressed = slim(path, prefixes)
        wheels.append(Wheel(name, plan.carry[name], path.name, path.stat().st_size, downloaded, dropped, recompressed))
    wheel_bytes = sum(w.bytes for w in wheels)
    tree_bytes = working_tree_bytes()
    manifest = {
        "target": asdict(target),
        "wheels": [asdict(w) for w in wheels],
        "image": plan.image,
        "left_out": plan.left_out,
        "leave_out_not_in_resolution": stale,
        "wheel_bytes": wheel_bytes,
        "working_tree_bytes": tree_bytes,
        "transfer_bytes": wheel_bytes + tree_bytes,
        "limit_bytes": TRANSFER_LIMIT_MIB * MIB,
        "margin_bytes": MARGIN_MIB * MIB,
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def report(manifest: dict, dest: Path) -> bool:
    """Print what was prepared and what to send; True when it fits with the margin."""
    wheels = sorted(manifest["wheels"], key=lambda w: -w["bytes"])
    print(f"{'wheel':<40} {'version':<16} {'MiB':>7} {'was':>7}  slimmed")
    for w in wheels:
        how = ", ".join(filter(None, [f"{w['dropped_files']} files dropped" if w["dropped_files"] else "",
                                      "LZMA" if w["recompressed"] else ""]))
        print(f"{w['name']:<40} {w['version']:<16} {w['bytes'] / MIB:>7.2f} {w['downloaded_bytes'] / MIB:>7.2f}  {how}")
    print(f"\n{len(wheels)} wheels carried; {len(manifest['image'])} packages left to the image; "
          f"{len(manifest['left_out'])} left out ({', '.join(manifest['left_out'])})")
    if manifest["leave_out_not_in_resolution"]:
        print(f"note: packages.toml leaves out {manifest['leave_out_not_in_resolution']}, which nothing needs any more")
    total, limit, margin = manifest["transfer_bytes"], manifest["limit_bytes"], manifest["margin_bytes"]
    fits = total + margin <= limit
    print(f"transfer: wheels {manifest['wheel_bytes'] / MIB:.1f} MiB + working tree "
          f"{manifest['working_tree_bytes'] / MIB:.1f} MiB = {total / MIB:.1f} MiB of {limit / MIB:.0f} MiB "
          f"({(limit - total) / MIB:.1f} MiB free; {'fits' if fits else 'DOES NOT FIT'} with a {margin / MIB:.0f} MiB margin)")
    if manifest["target"]["name"] == "device":
        carry = os.path.relpath(dest, REPO)
        print("\nOn the GPU machine (the device tool's `run`), one call:")
        print("    command:   python3 bench/gpu/run")
        print(f"    carry:     [\"{carry}\"]")
        print("    timeout_s: 600   (the script ends itself within --budget-s, 540 s by default)")
        print("Its files come back from $OUT: gpu_check.txt (the table), gpu_check.json, gpu_check.log,")
        print("gpu_engines-tiny.json, gpu_engines-1b.json. A quick rerun: python3 bench/gpu/run --budget-s 200 --engines exllamav3")
    return fits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Download and slim the wheels the GPU check needs.")
    parser.add_argument("--for", dest="which", choices=["device", "here"], default="device",
                        help="device: the GPU machine's Python and platform; here: this interpreter (the CPU rehearsal)")
    parser.add_argument("--dest", type=Path, default=DEFAULT_DEST, help="where the wheels go (emptied first)")
    args = parser.parse_args(argv)
    manifest = build(args.which, args.dest.resolve())
    fits = report(manifest, args.dest.resolve())
    return 0 if fits or args.which == "here" else 1


if __name__ == "__main__":
    sys.exit(main())
