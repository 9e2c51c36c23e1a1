"""Parsing and grading throughput on the real data in ../shared/data (skipped when it is absent)."""

from __future__ import annotations

import json
import os
import re
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


def _math500_pairs() -> list[tuple[str, str]]:
    """(response, gold) pairs: each MATH500 gold against a boxed copy of itself, a rewritten copy (`\\dfrac`,
    no `\\left`/`\\right`, no spaces), the next different gold and itself with one number changed."""
    with open(_need(DATA / "math" / "math500.jsonl"), encoding="utf-8") as f:
        golds = [json.loads(line)["answer"] for line in f]
    pairs = []
    for i, gold in enumerate(golds):
        rewritten = (
            gold.replace("\\frac", "\\dfrac").replace("\\left", "").replace("\\right", "").replace(" ", "")
        )
        other = next(g for g in golds[i + 1 :] + golds[:i] if g != gold)
        numbers = list(re.finditer(r"\d+", gold))
        if numbers:
            n = numbers[len(numbers) // 2]
            bumped = gold[: n.start()] + str(int(n.group()) + 1) + gold[n.end() :]
        else:
            bumped = gold + "+1"
        for answer in (gold, rewritten, other, bumped):
            pairs.append((f"So the answer is $\\boxed{{{answer}}}$.", gold))
    return pairs


def _math_verify(response: str, gold: str) -> bool:
    """math-verify's own parse + verify, with its default settings."""
    import math_verify

    return math_verify.verify(math_verify.parse(f"${gold}$"), math_verify.parse(response))


def _clear_math_verify_caches() -> None:
    from math_verify import parser

    for name in ("parse_latex_cached", "parse_expr_cached", "extract_latex"):
        getattr(getattr(parser, name, None), "cache_clear", lambda: None)()


def test_grading_throughput_against_math_verify(benchmark):
    """Cold grading (no verdict cache) of MATH500 answers vs math-verify's own parse + verify, in one run."""
    pairs = _math500_pairs()
    for response, gold in pairs:  # imports and the LaTeX parser's prediction caches, shared by both sides
        _math_verify(response, gold)
    MathVerifier()(*pairs[0])
    seconds = {"math_verify": 0.0, "ours": 0.0}
    verdicts: dict[str, list] = {"math_verify": [], "ours": []}
    ours = MathVerifier(cache_size=0)
    sides = {"math_verify": _math_verify, "ours": lambda r, g: ours(r, g)}

    def grade_both() -> None:
        # Interleaved chunks, each side first in turn, so load on the machine weighs on both alike.
        for k, start in enumerate(range(0, len(pairs), 100)):
            chunk = pairs[start : start + 100]
            for name in ("math_verify", "ours") if k % 2 == 0 else ("ours", "math_verify"):
                _clear_math_verify_caches()
                t = time.perf_counter()
                verdicts[name] += [sides[name](r, g) for r, g in chunk]
                seconds[name] += time.perf_counter() - t

    benchmark.pedantic(grade_both, rounds=1, iterations=1)
    ours_correct = [v.correct for v in verdicts["ours"]]
    changed = [(p, m) for p, m, o in zip(pairs, verdicts["math_verify"], ours_correct) if m != o]
    rates = {name: len(pairs) / seconds[name] for name in seconds}
    without_sympy = sum(not v.reason.startswith("math-verify") for v in verdicts["ours"])
    benchmark.extra_info.update(
        pairs=len(pairs),
        math_verify_per_s=round(rates["math_verify"], 1),
        ours_per_s=round(rates["ours"], 1),
        ratio=round(rates["ours"] / rates["math_verify"], 2),
        decided_without_sympy=without_sympy,
        changed_verdicts=len(changed),
    )
    print(
        f"\ngrading {len(pairs)} MATH500 pairs: ours {rates['ours']:.0f}/s, math-verify {rates['math_verify']:.0f}/s"
        f" ({rates['ours'] / rates['math_verify']:.2f}x); {without_sympy} decided without sympy; "
        f"{len(changed)} verdicts changed"
    )
    assert changed == []  # the same verdict as math-verify on every pair
    assert rates["ours"] >= 4 * rates["math_verify"]
