"""Parsing and grading throughput on the real data in ../shared/data (skipped when it is absent)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from retrosearch.trace import Trace
from retrosearch.verify import MathVerifier

DATA = Path(
    os.environ.get("RETROSEARCH_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (set RETROSEARCH_SHARED_DATA to the shared data folder)")
    return path


def _responses() -> list[str]:
    folder = _need(DATA / "traces")
    out = []
    for f in sorted(folder.glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            out.append(row.get("response") or row.get("full_response"))
    return out


def test_trace_parsing_and_segmentation_throughput(benchmark):
    responses = _responses()
    megabytes = sum(len(r.encode()) for r in responses) / 1e6

    def parse_all():
        return [len(Trace.parse(r).thoughts) for r in responses]

    thoughts = benchmark.pedantic(parse_all, rounds=3, iterations=1)
    seconds = benchmark.stats.stats.mean
    benchmark.extra_info.update(
        traces=len(responses),
        megabytes=round(megabytes, 2),
        mb_per_s=round(megabytes / seconds, 2),
        thoughts=sum(thoughts),
    )
    assert len(thoughts) == 2698


def _answers() -> list[tuple[str, str]]:
    """(response, gold) pairs from the real traces that carry a gold answer and a boxed prediction."""
    folder = _need(DATA / "traces")
    pairs = []
    for name in ("thinking_llms_interp.jsonl", "thought_anchors.jsonl"):
        for line in (folder / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("gold") is not None and row.get("boxed_pred"):
                pairs.append((f"\\boxed{{{row['boxed_pred']}}}", str(row["gold"])))
    return pairs


def test_grading_throughput_cold_and_cached(benchmark):
    pairs = _answers()
    MathVerifier()("\\boxed{\\frac{1}{2}}", "0.5")  # import and warm-up, paid once per process
    slowest = [0.0]

    def cold():
        v = MathVerifier(cache_size=0)
        for resp, gold in pairs:
            t = time.perf_counter()
            v(resp, gold)
            slowest[0] = max(slowest[0], time.perf_counter() - t)
        return v

    benchmark.pedantic(cold, rounds=1, iterations=1)
    cold_s = benchmark.stats.stats.mean
    cached = MathVerifier()
    for resp, gold in pairs:
        cached(resp, gold)
    t = time.perf_counter()
    for resp, gold in pairs:
        cached(resp, gold)
    cached_s = time.perf_counter() - t
    benchmark.extra_info.update(
        answers=len(pairs),
        cold_per_s=round(len(pairs) / cold_s, 1),
        cached_per_s=round(len(pairs) / cached_s, 1),
        slowest_check_s=round(slowest[0], 3),
    )
    assert cached_s < cold_s  # plain numbers skip math-verify; the rest come from the cache
