"""The retriever protocol and the passage it returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Passage:
    """One retrieved passage.

    Attributes:
        id: The passage's id in its corpus.
        title: Its title (`""` when the corpus has none).
        text: Its text, without the title.
        score: The retriever's score (higher is better; `None` when the source gives none).
    """

    id: str
    title: str
    text: str
    score: float | None = None

    @property
    def contents(self) -> str:
        """The passage in Search-R1's corpus form: `'"Title"\\ntext'` (just the text when untitled)."""
        return f'"{self.title}"\n{self.text}' if self.title else self.text


@runtime_checkable
class Retriever(Protocol):
    """Anything that answers a batch of queries with the top `k` passages of each, best first."""

    def retrieve(self, queries: Sequence[str], k: int) -> list[list[Passage]]:
        """Per query, in order, at most `k` passages (fewer only when the corpus holds fewer)."""
        ...


def check_queries(queries: Sequence[str], k: int) -> list[str]:
    """The queries of a `retrieve` call as a list, after checking them and `k`.

    Raises:
        TypeError: `queries` is one string, not a sequence of them.
        ValueError: `k` is negative.
    """
    if isinstance(queries, str):
        raise TypeError("queries must be a sequence of strings, not one string")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    return list(queries)
