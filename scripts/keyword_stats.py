"""Count step openers and candidate switch keywords over the real traces (the evidence for `DEFAULT_KEYWORDS`).

Usage: `python scripts/keyword_stats.py [DATA_DIR] [--top N]` (DATA_DIR defaults to ../shared/data/traces).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrosearch.trace import DEFAULT_KEYWORDS, Trace  # noqa: E402

#: (file, field holding the raw response)
FILES = (
    ("thought_anchors.jsonl", "response"),
    ("thinking_llms_interp.jsonl", "response"),
    ("r1_llama8b_open_prompts.jsonl", "full_response"),
)

#: Phrases considered as switch keywords (counted where they open a step, with the keyword rule of `Trace`).
CANDIDATES = (
    "Wait",
    "But wait",
    "Alternatively",
    "Hmm",
    "Hold on",
    "But hold on",
    "Wait a second",
    "Wait a minute",
    "On second thought",
    "Another approach",
    "Another way",
    "Another thought",
    "Another angle",
    "Let me double-check",
    "Let me verify",
    "Let me check",
    "Let me think again",
    "Let me reconsider",
    "Just to double-check",
    "Just to make sure",
    "But just to",
    "Double-check",
    "However",
    "But",
    "Actually",
    "Oh",
    "No,",
    "Let me",
    "So",
    "Then",
    "Therefore",
    "Now",
    "Next",
    "First",
    "Okay",
)

_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*|\S")


def _opener(text: str, n: int) -> str | None:
    words = _WORD.findall(text[:80])
    return " ".join(words[:n]) if len(words) >= n else None


def main(argv: list[str] | None = None) -> int:
    default_dir = Path(__file__).resolve().parents[2] / "shared" / "data" / "traces"
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("data_dir", nargs="?", type=Path, default=default_dir)
    ap.add_argument("--top", type=int, default=30, help="how many openers to list per n-gram length")
    args = ap.parse_args(argv)
    if not args.data_dir.is_dir():
        print(f"no data folder at {args.data_dir}", file=sys.stderr)
        return 1

    traces: list[Trace] = []
    per_file: dict[str, list[Trace]] = {}
    for name, key in FILES:
        path = args.data_dir / name
        if not path.exists():
            print(f"skipping absent {path}", file=sys.stderr)
            continue
        with path.open() as fh:
            for line in fh:
                traces.append(Trace.parse(json.loads(line)[key]))
                per_file.setdefault(name, []).append(traces[-1])
    openers = {n: Counter() for n in (1, 2, 3)}
    cand = {c: Counter() for c in CANDIDATES}  # keyword -> Counter(steps=, traces=)
    num_steps = 0
    for t in traces:
        seen = set()
        # Segment with every candidate, to count each where it opens a step (longest match, like `Trace`).
        every = Trace.parse(t, keywords=CANDIDATES)
        for step in every.steps:
            num_steps += 1
            for n in openers:
                o = _opener(step.text, n)
                if o is not None:
                    openers[n][o] += 1
        for th in every.thoughts:
            if th.keyword is not None:
                cand[th.keyword]["steps"] += 1
                seen.add(th.keyword)
        for k in seen:
            cand[k]["traces"] += 1

    thoughts = [t.num_thoughts for t in traces]
    complete = sum(t.complete for t in traces)
    total_thoughts = sum(thoughts)
    steps_per_thought = sum(t.num_steps for t in traces) / max(total_thoughts, 1)
    print(f"traces parsed: {len(traces)} ({complete} complete, {len(traces) - complete} truncated)")
    print(f"steps: {num_steps}")
    print(f"DEFAULT_KEYWORDS = {DEFAULT_KEYWORDS}")
    print(
        f"thoughts per trace: mean {statistics.mean(thoughts):.2f}, median {statistics.median(thoughts)}, "
        f"max {max(thoughts)}; switches per trace: mean {statistics.mean(thoughts) - 1:.2f}"
    )
    print(f"mean steps per thought: {steps_per_thought:.2f}")
    for name, ts in per_file.items():
        th = [t.num_thoughts for t in ts]
        spt = sum(t.num_steps for t in ts) / max(sum(th), 1)
        print(
            f"  {name}: {len(ts)} traces, thoughts per trace mean {statistics.mean(th):.2f} "
            f"median {statistics.median(th)}, steps per thought {spt:.2f}"
        )
    kw = Counter()
    for t in traces:
        kw.update(th.keyword for th in t.thoughts if th.keyword is not None)
    print("\nthought-opening keyword frequencies with DEFAULT_KEYWORDS (thoughts opened):")
    for k in DEFAULT_KEYWORDS:
        print(f"  {k!r:28} {kw[k]:6d}")
    print("\ncandidate keywords where they open a step (longest match among all candidates): steps / traces")
    for k, c in sorted(cand.items(), key=lambda kv: -kv[1]["steps"]):
        print(f"  {k!r:28} {c['steps']:6d} {c['traces']:6d}")
    for n, c in openers.items():
        print(f"\ntop {args.top} step openers, {n} token(s):")
        for o, k in c.most_common(args.top):
            print(f"  {o!r:40} {k:6d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
