"""The code index on disk: one JSON file of chunks, identifier uses and file fingerprints.

The BM25 matrix is not stored: rebuilding it from the chunks takes well under a second
for a large repository, and JSON keeps the cache readable, diffable and free of pickles.
A cache that is missing, corrupt, or written for other settings is simply not used: the
next refresh rebuilds it, so deleting `.turnout/index/` is always safe.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from turnout.tools._chunking import Chunk

logger = logging.getLogger("turnout.tools")
FORMAT = 1
CACHE_FILE = "code_index.json"


class FileEntry(BaseModel):
    """One indexed file: the fingerprint that says whether to re-read it, and what it held."""

    size: int
    mtime_ns: int
    sha256: str
    chunks: list[Chunk] = Field(default_factory=list)
    occurrences: dict[str, list[int]] = Field(default_factory=dict)


class Snapshot(BaseModel):
    format: int = FORMAT
    root: str
    max_file_bytes: int
    refreshed_ns: int = 0
    files: dict[str, FileEntry] = Field(default_factory=dict)


def load(path: Path, *, root: Path, max_file_bytes: int) -> Snapshot | None:
    """The stored snapshot for this root and size limit, or None (absent, corrupt, stale format)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        logger.warning("cannot read the code index cache %s (%s); rebuilding it", path, exc)
        return None
    try:
        snapshot = Snapshot.model_validate_json(raw)
    except ValidationError:
        logger.warning("the code index cache %s is corrupt or from another version; rebuilding it", path)
        return None
    if snapshot.format != FORMAT or snapshot.root != str(root) or snapshot.max_file_bytes != max_file_bytes:
        return None
    return snapshot


def save(path: Path, snapshot: Snapshot) -> None:
    """Write atomically (temp file, then rename), so a killed process never leaves half a cache."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        partial.write_text(snapshot.model_dump_json(), encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
