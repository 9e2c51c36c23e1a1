"""Build a retriever from a kind and a few paths: the one place commands turn flags into a `Retriever`."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from retrosearch.config import add_arguments, check_choices, from_args, option
from retrosearch.rl.retrievers.base import Retriever

#: The kinds `load_retriever` builds.
RETRIEVER_KINDS: tuple[str, ...] = ("bm25", "dense", "http")
#: The sentence-embedding model dense retrieval uses unless told otherwise.
DEFAULT_DENSE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
#: The HTTP wire formats: Search-R1 / verl (`POST /retrieve`) and R1-Searcher (`POST /queries`).
HTTP_APIS: tuple[str, ...] = ("search-r1", "r1-searcher")


@dataclass
class RetrieverConfig:
    """Which retriever to use and where its corpus, index or server is (the `--retriever ...` flags)."""

    retriever: str = option("bm25", "Retriever kind.", choices=RETRIEVER_KINDS)
    corpus: str | None = option(
        None, "Corpus jsonl ({id, title, text} or Search-R1's {id, contents} rows) for bm25/dense."
    )
    index: str | None = option(
        None,
        "Index folder for bm25/dense: loaded when it holds an index, else built from --corpus and saved.",
    )
    url: str | None = option(
        None, "Retriever server for http: an endpoint URL, or a base URL (the API's path is appended)."
    )
    retriever_api: str = option("search-r1", "Wire format of the http retriever.", choices=HTTP_APIS)
    retriever_model: str = option(
        DEFAULT_DENSE_MODEL, "sentence-transformers model (name or folder) for dense."
    )
    dense_index: str = option(
        "flat", "faiss index for dense: exact inner product or HNSW.", choices=("flat", "hnsw")
    )
    retriever_timeout: float = option(30.0, "Seconds an http retrieval request may take.")
    retriever_retries: int = option(3, "Retries of a failed http request (timeouts, connection errors, 5xx).")


def load_retriever(
    kind: str,
    *,
    corpus: str | Path | None = None,
    index: str | Path | None = None,
    url: str | None = None,
    api: str = "search-r1",
    model: str = DEFAULT_DENSE_MODEL,
    dense_index: str = "flat",
    timeout: float = 30.0,
    retries: int = 3,
    show_progress: bool = True,
) -> Retriever:
    """A ready retriever of `kind`.

    Args:
        kind: `"bm25"`, `"dense"` or `"http"`.
        corpus: The corpus jsonl to index (bm25/dense), needed unless `index` already holds an index.
        index: A folder: loaded when it holds a saved index of this kind, otherwise the index built from `corpus`
            is saved there (so the next call loads it). `None` builds in memory.
        url: The server (http): an endpoint such as `http://127.0.0.1:8000/retrieve`, or a base URL.
        api: The server's wire format (http): `"search-r1"` or `"r1-searcher"`.
        model: The sentence-transformers model, by name or folder (dense, when building).
        dense_index: `"flat"` (exact inner product) or `"hnsw"` (dense, when building).
        timeout: Seconds per http request.
        retries: Retries of a failed http request.
        show_progress: Progress bars while indexing.

    Raises:
        ValueError: an unknown kind, or what that kind needs is missing.
    """
    if kind not in RETRIEVER_KINDS:
        raise ValueError(f"retriever kind must be one of {list(RETRIEVER_KINDS)}, got {kind!r}")
    if kind == "http":
        if not url:
            raise ValueError("an http retriever needs a url (--url), e.g. http://127.0.0.1:8000/retrieve")
        from retrosearch.rl.retrievers.http import HttpRetriever

        return HttpRetriever(url, api=api, timeout=timeout, retries=retries)
    if kind == "bm25":
        from retrosearch.rl.retrievers.bm25 import BM25Retriever as cls
    else:
        from retrosearch.rl.retrievers.dense import DenseRetriever as cls
    if index is not None and cls.is_saved(index):
        return cls.load(index)
    if corpus is None:
        where = f" and {index} holds no {kind} index" if index is not None else ""
        raise ValueError(f"a {kind} retriever needs a corpus (--corpus){where}")
    from retrosearch.rl.retrievers.corpus import read_corpus

    passages = read_corpus(corpus)
    if kind == "bm25":
        retriever = cls.build(passages, show_progress=show_progress)
    else:
        retriever = cls.build(passages, model=model, index=dense_index, show_progress=show_progress)
    if index is not None:
        retriever.save(index)
        print(f"saved the {kind} index of {len(passages)} passages to {index}", file=sys.stderr)
    return retriever


def add_retriever_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add `--retriever`, `--corpus`, `--index`, `--url` and the other `RetrieverConfig` flags to a parser or group."""
    add_arguments(parser, RetrieverConfig)


def retriever_config_from_args(args: argparse.Namespace) -> RetrieverConfig:
    """The `RetrieverConfig` given by flags added with `add_retriever_arguments` (defaults for the rest)."""
    cfg = from_args(RetrieverConfig, args)
    check_choices(cfg)
    return cfg


def retriever_from_config(cfg: RetrieverConfig, *, show_progress: bool = True) -> Retriever:
    """The retriever a `RetrieverConfig` describes."""
    check_choices(cfg)
    return load_retriever(
        cfg.retriever,
        corpus=cfg.corpus,
        index=cfg.index,
        url=cfg.url,
        api=cfg.retriever_api,
        model=cfg.retriever_model,
        dense_index=cfg.dense_index,
        timeout=cfg.retriever_timeout,
        retries=cfg.retriever_retries,
        show_progress=show_progress,
    )


def retriever_from_args(args: argparse.Namespace) -> Retriever:
    """The retriever given by flags added with `add_retriever_arguments`."""
    return retriever_from_config(retriever_config_from_args(args))
