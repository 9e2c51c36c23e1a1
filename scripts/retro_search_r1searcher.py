"""Retro-Search on R1-Searcher's published rollouts: how many retrievals can go with the answer still correct.

Reads R1-Searcher's outputs (`question`, `answer`, `pred_ans`, `gen_text_store`), keeps the rollouts whose
published answer is cover-EM correct, and revises them with a small reviser (SmolLM2-135M-Instruct by default,
through the transformers backend) and BM25 over the passages those rollouts retrieved: at each query the untaken
path (the query tag banned in its first step) is rolled out and kept when it still answers correctly with fewer
retrievals and no more tokens. Prints a summary and writes the per-trace records.

    python scripts/retro_search_r1searcher.py --data ../shared/data/qa/r1searcher --benchmark bamboogle_qwen \\
        --limit 50 --out runs/retro_r1searcher

The reviser is tiny: the figures are plumbing, not a claim about what a strong reviser would remove.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from retrosearch.retro import RetroSearchConfig, revise_iter
from retrosearch.retro.search_traces import parse_search_trace
from retrosearch.verify import get_verifier


def correct_rows(path: Path, limit: int, verifier: str) -> list[dict]:
    """The first `limit` rows whose published answer is correct (the paper revises correct traces only)."""
    grade = get_verifier(verifier)
    out = []
    for line in path.open(encoding="utf-8"):
        row = json.loads(line)
        trace = parse_search_trace(row)
        if trace.metadata["retrievals"] and grade(trace.solution or "", trace.gold).correct:
            out.append(row)
        if len(out) >= limit:
            break
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data", type=Path, required=True, help="R1-Searcher's folder (outputs/, passages.jsonl)."
    )
    ap.add_argument("--benchmark", default="bamboogle_qwen", help="An outputs/<name>.jsonl file.")
    ap.add_argument("--limit", type=int, default=50, help="Correct rollouts to revise.")
    ap.add_argument("--model", default=None, help="Reviser model folder (default: the SmolLM2 test fixture).")
    ap.add_argument(
        "--index", type=Path, default=None, help="Folder for the BM25 index (built once, then loaded)."
    )
    ap.add_argument("--n", type=int, default=2, help="Rollouts per cut.")
    ap.add_argument("--max-tokens", type=int, default=160, help="Most model tokens per rollout.")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--verifier", default="cover_em", choices=("cover_em", "f1"))
    ap.add_argument("--batch", type=int, default=4, help="Most requests per model call (bounds CPU memory).")
    ap.add_argument("--out", type=Path, default=None, help="Folder for records.jsonl and summary.json.")
    args = ap.parse_args(argv)

    from retrosearch.backends.hf import TransformersBackend
    from retrosearch.engine import Engine
    from retrosearch.rl.retrievers import load_retriever

    if args.model is None:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ sits beside the package
        from tools.smollm2 import smollm2_path

        args.model = str(smollm2_path())
    rows = correct_rows(args.data / "outputs" / f"{args.benchmark}.jsonl", args.limit, args.verifier)
    retriever = load_retriever(
        "bm25", corpus=args.data / "passages.jsonl", index=args.index, show_progress=False
    )
    backend = TransformersBackend(args.model, device="cpu", dtype="float32")
    cfg = RetroSearchConfig(
        protocol="r1-searcher",
        verifier=args.verifier,
        n=args.n,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        first_step_max_tokens=min(64, args.max_tokens),
        top_k=3,
    )
    engine = Engine(backend, max_requests_per_call=args.batch)
    t0 = time.perf_counter()
    records = []
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
    sink = (args.out / "records.jsonl").open("w", encoding="utf-8") if args.out is not None else None
    for res in revise_iter(rows, backend, cfg, engine=engine, retriever=retriever):
        rec = res.to_record(with_tree=False)
        rec["question"] = rows[res.index]["question"]
        records.append(rec)
        if sink is not None:  # as they finish, so a long run can be read while it goes
            sink.write(json.dumps(rec, ensure_ascii=False) + "\n")
            sink.flush()
        print(f"[{len(records)}/{len(rows)}] {res.status}: {res.reason}", flush=True)
    if sink is not None:
        sink.close()
    records.sort(key=lambda r: r["index"])
    searched = [r for r in records if r["status"] in ("revised", "unchanged")]
    before = sum(r["stats"]["retrievals_before"] for r in searched)
    after = sum(r["stats"]["retrievals_after"] for r in searched)
    summary = {
        "benchmark": args.benchmark,
        "traces": len(records),
        "searched": len(searched),
        "revised": sum(r["status"] == "revised" for r in records),
        "errors": sum(r["status"] == "error" for r in records),
        "retrievals_before": before,
        "retrievals_after": after,
        "retrievals_removed": before - after,
        "traces_with_a_retrieval_removed": sum(r["stats"]["retrievals_removed"] > 0 for r in searched),
        "queries_explored": sum(e.get("cut_kind") == "query" for r in searched for e in r["explorations"]),
        "rollouts": engine.stats.samples,
        "retriever_calls": engine.stats.tool_calls,
        "seconds": round(time.perf_counter() - t0, 1),
        "config": {"n": args.n, "max_tokens": args.max_tokens, "verifier": args.verifier, "model": "reviser"},
    }
    print(json.dumps(summary, indent=2))
    if args.out is not None:
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


if __name__ == "__main__":
    main()
