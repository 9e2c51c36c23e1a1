"""Retrievers behind one batched protocol: `retrieve(queries, k) -> list[list[Passage]]`."""

from retrosearch.rl.retrievers.base import Passage, Retriever

__all__ = ["Passage", "Retriever"]
