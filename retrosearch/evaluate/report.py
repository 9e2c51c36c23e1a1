"""An `evaluate` result as a terminal table and as a JSON file."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["format_table", "write_json"]


def write_json(result: Mapping[str, Any], path: str | Path) -> Path:
    """Write an `evaluate` result as indented JSON (its folder is created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return p


def _fmt(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def format_table(result: Mapping[str, Any]) -> str:
    """The per-benchmark figures of an `evaluate` result as a text table."""
    header = ("benchmark", "problems", "k", "pass@1", "pass@k", "think tok", "think tok ✓", "truncated")
    rows = []
    for s in result["benchmarks"].values():
        rows.append(
            (
                s["name"],
                str(s["n_problems"]),
                str(s["k"]),
                _fmt(s["accuracy"], ".3f"),
                _fmt(s["pass_at_k"], ".3f"),
                _fmt(s["mean_thinking_tokens"], ".1f"),
                _fmt(s["mean_thinking_tokens_correct"], ".1f"),
                _fmt(s["truncated_share"], ".1%"),
            )
        )
    avg = result.get("average") or {}
    if avg.get("n_benchmarks", 0) > 1:
        rows.append(
            (
                "average",
                "",
                "",
                _fmt(avg["accuracy"], ".3f"),
                _fmt(avg["pass_at_k"], ".3f"),
                _fmt(avg["mean_thinking_tokens"], ".1f"),
                _fmt(avg["mean_thinking_tokens_correct"], ".1f"),
                _fmt(avg["truncated_share"], ".1%"),
            )
        )
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]

    def line(r: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths)))

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])
