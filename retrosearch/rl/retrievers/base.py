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
