"""The figures of a batch revision: totals over its journal, and the run's own."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BatchSummary"]


@dataclass
class BatchSummary:
    """Totals over the journal after a run (rows of earlier runs included), and this run's own figures."""

    rows: int = 0
    revised: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: int = 0
    new_rows: int = 0
    resumed_rows: int = 0
    thinking_tokens_before: float = float("nan")
    thinking_tokens_after: float = float("nan")
    rollouts: int = 0
    tokens_spent: int = 0
    wall_s: float = 0.0
    journal: str = ""
    models: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]], **kw: Any) -> BatchSummary:
        s = cls(**kw)
        before, after = [], []
        for r in records:
            s.rows += 1
            status = r.get("status")
            if status == "revised":
                s.revised += 1
            elif status == "unchanged":
                s.unchanged += 1
            elif status == "skipped":
                s.skipped += 1
            else:
                s.errors += 1
            st = r.get("stats") or {}
            s.rollouts += int(st.get("rollouts") or 0)
            s.tokens_spent += int(st.get("tokens_spent") or 0)
            if status == "revised" and "thinking_tokens_before" in st:
                before.append(st["thinking_tokens_before"])
                after.append(st["thinking_tokens_after"])
        if before:
            s.thinking_tokens_before = sum(before) / len(before)
            s.thinking_tokens_after = sum(after) / len(after)
        return s

    def table(self) -> str:
        """A plain-text table for the terminal."""
        if self.revised:
            change = (
                (self.thinking_tokens_after / self.thinking_tokens_before - 1) * 100
                if self.thinking_tokens_before
                else 0.0
            )
            tokens = f"{self.thinking_tokens_before:.1f} -> {self.thinking_tokens_after:.1f} ({change:+.1f}%)"
        else:
            tokens = "-"
        lines = [
            ("rows", f"{self.rows} ({self.new_rows} this run, {self.resumed_rows} from an earlier run)"),
            ("revised", str(self.revised)),
            ("unchanged", str(self.unchanged)),
            ("skipped", str(self.skipped)),
            ("errors", str(self.errors)),
            ("thinking tokens, revised rows (mean)", tokens),
            ("rollouts", str(self.rollouts)),
            ("tokens spent", str(self.tokens_spent)),
            ("wall time (this run)", f"{self.wall_s:.1f} s"),
            ("journal", self.journal),
        ]
        reviser = (self.models.get("revision") or {}).get("model")
        if reviser:
            traces = self.models.get("traces")
            lines.append(("revision model", reviser + (f" (traces by {traces})" if traces else "")))
        width = max(len(k) for k, _ in lines)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in lines)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
