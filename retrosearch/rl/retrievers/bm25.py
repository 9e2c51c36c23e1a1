"""BM25 retrieval with bm25s: build from passages (title and text indexed), save, load memory-mapped."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from retrosearch.rl.retrievers.base import Passage, check_queries
from retrosearch.rl.retrievers.corpus import PassageStore, read_meta, save_passages, saved_kind, write_meta

#: Queries scored together in one sparse product (bounds the memory of the `(queries, docs)` product).
_QUERY_BLOCK = 256


class BM25Retriever:
    """Lexical retrieval over a fixed corpus; `retrieve` scores a whole batch of queries in one call.

    Build with `BM25Retriever.build(passages)` or load a saved index with `BM25Retriever.load(folder)`.
    """

    kind = "bm25"

    def __init__(self, model: Any, passages: Sequence[Passage], *, stopwords: str | None = "en") -> None:
        """Wrap an indexed `bm25s.BM25` whose document `i` is `passages[i]` (use `build` or `load`)."""
        n = int(model.scores["num_docs"])
        if n != len(passages):
            raise ValueError(f"BM25 index holds {n} documents but {len(passages)} passages were given")
        self.model = model
        self.passages = passages
        self.stopwords = stopwords
        self._weights: Any = None

    def __len__(self) -> int:
        return len(self.passages)

    @classmethod
    def build(
        cls,
        passages: Sequence[Passage],
        *,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
        stopwords: str | None = "en",
        show_progress: bool = True,
    ) -> BM25Retriever:
        """Index `passages` (title and text together), with progress bars while tokenizing and indexing.

        Args:
            passages: The corpus; at least one passage.
            k1: BM25's term-frequency saturation.
            b: BM25's length normalization.
            method: bm25s's scoring variant (`"lucene"`, `"robertson"`, `"atire"`, `"bm25l"`, `"bm25+"`).
            stopwords: bm25s's stopword list (`"en"`) or `None` for none.
            show_progress: Show the progress bars.
        """
        import bm25s

        if len(passages) == 0:
            raise ValueError("BM25 needs at least one passage to index")
        texts = [f"{p.title}\n{p.text}" if p.title else p.text for p in passages]
        tokens = bm25s.tokenize(texts, stopwords=stopwords, return_ids=True, show_progress=show_progress)
        model = bm25s.BM25(k1=k1, b=b, method=method)
        model.index(tokens, show_progress=show_progress)
        return cls(model, passages, stopwords=stopwords)

    def retrieve(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        """Per query, the top `min(k, len(corpus))` passages, best first, with bm25s's BM25 scores.

        Passages with no query word score 0 and come after every match, lowest corpus position first (so a query
        with no indexed word gets the first `k` passages, all scored 0).
        """
        import bm25s

        queries = check_queries(queries, k)
        if not queries or k == 0:
            return [[] for _ in queries]
        tokens = bm25s.tokenize(
            list(queries), stopwords=self.stopwords, return_ids=False, show_progress=False
        )
        token_ids = [self.model.get_tokens_ids(t) for t in tokens]
        out = []
        for start in range(0, len(token_ids), _QUERY_BLOCK):
            block = token_ids[start : start + _QUERY_BLOCK]
            for ids, (docs, scores) in zip(block, self._top(block, min(k, len(self.passages)))):
                if self.model.nonoccurrence_array is not None:  # BM25L / BM25+ add a per-query constant
                    scores = scores + float(self.model.nonoccurrence_array[ids].sum())
                out.append([self._scored(i, s) for i, s in zip(docs.tolist(), scores.tolist())])
        return out

    def _top(self, token_ids: list[list[int]], k: int) -> list[tuple[Any, Any]]:
        """`(doc indices, scores)` of the best `k` per query, from one sparse product of the block's queries.

        bm25s's own numpy top-k runs `argpartition` over every document's score, which numpy makes slow when most
        scores tie at 0; here only the documents that share a word with the query are ranked.
        """
        import numpy as np
        import scipy.sparse as sp

        weights = self._matrix()  # `(vocabulary, docs)`
        rows = np.repeat(np.arange(len(token_ids)), [len(t) for t in token_ids])
        cols = np.fromiter((i for t in token_ids for i in t), dtype=np.int64, count=len(rows))
        queries = sp.csr_matrix(
            (np.ones(len(rows), dtype=weights.dtype), (rows, cols)), shape=(len(token_ids), weights.shape[0])
        )
        hits = (
            queries @ weights
        )  # `(queries, docs)`: the sum of each query's words' BM25 weights, matches only
        out = []
        for j in range(len(token_ids)):
            docs = hits.indices[hits.indptr[j] : hits.indptr[j + 1]]
            scores = hits.data[hits.indptr[j] : hits.indptr[j + 1]]
            if len(docs) > k:  # keep everything tied with the k-th best, so ties go by corpus position
                kth = np.partition(scores, len(scores) - k)[len(scores) - k]
                keep = scores >= kth
                docs, scores = docs[keep], scores[keep]
            order = np.lexsort((docs, -scores))[:k]  # best first; ties by corpus position
            docs, scores = docs[order].astype(np.int64), scores[order].astype(np.float64)
            if len(docs) < k:  # pad with unmatched passages, score 0
                pad = np.setdiff1d(np.arange(min(len(self.passages), k + len(docs))), docs)[: k - len(docs)]
                docs, scores = np.concatenate([docs, pad]), np.concatenate([scores, np.zeros(len(pad))])
            out.append((docs, scores))
        return out

    def _matrix(self) -> Any:
        """bm25s's precomputed weights as a `(vocabulary, docs)` scipy CSR matrix (sharing its arrays)."""
        if self._weights is None:
            import scipy.sparse as sp

            s = self.model.scores
            shape = (len(s["indptr"]) - 1, int(s["num_docs"]))
            self._weights = sp.csr_matrix((s["data"], s["indices"], s["indptr"]), shape=shape, copy=False)
        return self._weights

    def _scored(self, i: int, score: float) -> Passage:
        p = self.passages[i]
        return Passage(p.id, p.title, p.text, score)

    def save(self, directory: str | Path) -> None:
        """Write the index, its settings and the passages to `directory` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save(directory, show_progress=False)
        save_passages(self.passages, directory)
        write_meta(
            directory, {"kind": self.kind, "stopwords": self.stopwords, "passages": len(self.passages)}
        )

    @staticmethod
    def is_saved(directory: str | Path) -> bool:
        """Whether `directory` holds a saved BM25 index."""
        return saved_kind(directory) == BM25Retriever.kind

    @classmethod
    def load(cls, directory: str | Path, *, mmap: bool = True) -> BM25Retriever:
        """A retriever saved with `save`; with `mmap` the score arrays stay on disk, paged in on use.

        Raises:
            ValueError: `directory` holds no BM25 index.
        """
        import bm25s

        meta = read_meta(directory, cls.kind)
        model = bm25s.BM25.load(directory, mmap=mmap, show_progress=False)
        return cls(model, PassageStore(directory), stopwords=meta.get("stopwords", "en"))
