"""A safetensors writer that streams: tensors are written one block at a time.

`safetensors.numpy.save_file` needs every tensor in memory at once, which for the ~1B
benchmark model means holding 2 GB of weights just to write them. The format makes
streaming easy, because the header needs only names, dtypes and shapes:

    8 bytes   header length N, little-endian unsigned
    N bytes   JSON: {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__"}
              padded with spaces to a multiple of 8 bytes
    ...       the tensors' raw little-endian bytes, back to back, offsets relative to here

Only float16 (`F16`) is written: it is what the GPU engines load unquantized.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Sequence
from math import prod
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    import numpy as np

Shape = tuple[int, ...]
ITEM_SIZE = 2  # float16


def write_safetensors(
    path: Path,
    tensors: Sequence[tuple[str, Shape]],
    blocks: Callable[[str, Shape], Iterable[np.ndarray]],
    *,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write float16 `tensors` (name, shape) to `path`, in order.

    `blocks(name, shape)` yields the tensor's data as arrays in row-major order (any number
    of blocks, e.g. a few rows at a time); their sizes must add up to the shape's.
    `metadata` defaults to `{"format": "pt"}`, which transformers expects.
    """
    header: dict[str, object] = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    for name, shape in tensors:
        if name in header:
            raise ValueError(f"tensor name {name!r} appears twice")
        size = prod(shape) * ITEM_SIZE
        header[name] = {
            "dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + size],
        }
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)
    path = Path(path)
    try:
        with path.open("wb") as file:
            file.write(struct.pack("<Q", len(encoded)))
            file.write(encoded)
            for name, shape in tensors:
                _write_tensor(file, name, shape, blocks(name, shape))
    except BaseException:
        path.unlink(missing_ok=True)  # never leave a truncated file that looks like a model
        raise
    return path


def _write_tensor(file: BinaryIO, name: str, shape: Shape, blocks: Iterable[np.ndarray]) -> None:
    import numpy as np

    written = 0
    for block in blocks:
        data = np.ascontiguousarray(block, dtype="<f2").tobytes()
        file.write(data)
        written += len(data)
    if written != prod(shape) * ITEM_SIZE:
        raise ValueError(
            f"tensor {name} of shape {shape} needs {prod(shape)} values; "
            f"its blocks held {written // ITEM_SIZE}"
        )
