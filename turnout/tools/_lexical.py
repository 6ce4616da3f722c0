"""BM25 over code: a tokeniser that knows identifiers, and the bm25s index behind `search`.

People ask "how is the config file loaded" of code that says `load_config_file` or
`ConfigFileLoader`, so identifiers are split on snake_case and camelCase and the parts are
indexed beside the whole name; a light plural rule makes "options" find `option`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

_RUN = re.compile(r"[A-Za-z0-9_]+")
_PARTS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does doing for from had has have how
    i if in into is it its me my of on or our should so such than that the their them then
    there these they this those to too was we were what when where which while who whom why
    will with would you your self cls py""".split()
)


def _stem(word: str) -> str:
    """Plural to singular, roughly: enough for "options" to meet `option`."""
    if len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    return word[:-1]


def _keep(word: str) -> bool:
    return len(word) > 1 and word not in STOPWORDS


def code_tokens(text: str) -> list[str]:
    """Lower-case tokens: each identifier whole, plus its snake/camel parts when it has several."""
    tokens: list[str] = []
    for run in _RUN.findall(text):
        parts = [p.lower() for piece in run.split("_") for p in _PARTS.findall(piece)]
        whole = run.strip("_").lower()
        if len(parts) > 1 and _keep(whole):
            tokens.append(_stem(whole))
        tokens.extend(_stem(p) for p in parts if _keep(p))
    return tokens


class LexicalIndex:
    """A BM25 index over pre-tokenised documents (bm25s, imported only when one is built)."""

    def __init__(self, documents: Sequence[list[str]]) -> None:
        import bm25s

        self._bm25: Any = bm25s.BM25()
        self._bm25.index(list(documents), show_progress=False)

    def scores(self, tokens: list[str]) -> np.ndarray:
        """One BM25 score per document; tokens unknown to the index score nothing."""
        import numpy as np

        known = [t for t in tokens if t in self._bm25.vocab_dict]
        if not known:
            return np.zeros(self._bm25.scores["num_docs"], dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)


def top(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the k highest positive scores, best first; ties keep index order."""
    import numpy as np

    order = np.argsort(-scores, kind="stable")[:k]
    return [int(i) for i in order if scores[i] > 0]
