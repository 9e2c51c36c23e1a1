"""Retrievers behind one batched protocol: `retrieve(queries, k) -> list[list[Passage]]`.

`load_retriever(kind, corpus=..., index=..., url=...)` builds one; `add_retriever_arguments(parser)` and
`retriever_from_args(args)` do the same from command-line flags. The retriever classes import their libraries
(bm25s, faiss, sentence-transformers, httpx) only when used.
"""

from __future__ import annotations

from typing import Any

from retrosearch.rl.retrievers.base import Passage, Retriever
from retrosearch.rl.retrievers.corpus import iter_corpus, parse_contents, passage_from_row, read_corpus
from retrosearch.rl.retrievers.factory import (
    DEFAULT_DENSE_MODEL,
    RETRIEVER_KINDS,
    RetrieverConfig,
    add_retriever_arguments,
    load_retriever,
    retriever_config_from_args,
    retriever_from_args,
    retriever_from_config,
)

#: Names served lazily from their modules (importing them is cheap; their libraries load on first use).
_LAZY = {
    "BM25Retriever": "retrosearch.rl.retrievers.bm25",
    "DenseRetriever": "retrosearch.rl.retrievers.dense",
    "HttpRetriever": "retrosearch.rl.retrievers.http",
    "RetrieverError": "retrosearch.rl.retrievers.http",
}

__all__ = [
    "DEFAULT_DENSE_MODEL",
    "RETRIEVER_KINDS",
    "BM25Retriever",
    "DenseRetriever",
    "HttpRetriever",
    "Passage",
    "Retriever",
    "RetrieverConfig",
    "RetrieverError",
    "add_retriever_arguments",
    "iter_corpus",
    "load_retriever",
    "parse_contents",
    "passage_from_row",
    "read_corpus",
    "retriever_config_from_args",
    "retriever_from_args",
    "retriever_from_config",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
