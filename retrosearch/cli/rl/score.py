"""`retrosearch rl score`: cover-EM, EM, F1 (and format, retrievals, judge) of a predictions file."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from retrosearch.cli.common import Formatter

EPILOG = """\
examples:
  retrosearch rl score --predictions hotpotqa_qwen.jsonl
  retrosearch rl score --predictions runs/rl_eval.predictions.jsonl --judge-field judge --output runs/score.json
  retrosearch rl score --predictions preds.jsonl --pred-field prediction --gold-field golden_answers --text-field ""

By default the fields are R1-Searcher's published ones: pred_ans (prediction), answer (gold: a string or a list),
gen_text_store (the rollout text: format check and retrievals) and gpt4o_output (a recorded judge verdict). An
empty field name turns that part off.
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `rl score` subcommand."""
    p = subparsers.add_parser(
        "score",
        help="Score a predictions file: cover-EM, EM, F1, well-formed share, retrievals, recorded judge.",
        description="Grade each row's prediction against its gold answer(s) with R1-Searcher's metrics and print "
        "one line of means per file.",
        epilog=EPILOG,
        formatter_class=Formatter,
    )
    p.add_argument(
        "--predictions", action="append", required=True, help="A JSONL predictions file (repeatable)."
    )
    p.add_argument("--pred-field", default="pred_ans", help="Field of the predicted answer.")
    p.add_argument("--gold-field", default="answer", help="Field of the gold answer(s).")
    p.add_argument("--text-field", default="gen_text_store", help="Field of the rollout text ('' for none).")
    p.add_argument(
        "--judge-field", default="gpt4o_output", help="Field of a recorded judge verdict ('' for none)."
    )
    p.add_argument("--protocol", default="r1-searcher", help="Tag protocol of the rollout texts.")
    p.add_argument("--output", default=None, help="JSON file for the scores.")
    p.set_defaults(func=run_cli, _parser=p)
    return p


def run_cli(args: argparse.Namespace) -> int:
    """Score each file, print a table, write the JSON."""
    from retrosearch.rl.protocols import get_protocol
    from retrosearch.rl.scoring import score_file

    try:
        protocol = get_protocol(args.protocol)
    except ValueError as e:
        args._parser.error(str(e))
    results = [
        score_file(
            path,
            pred_field=args.pred_field,
            gold_field=args.gold_field,
            text_field=args.text_field or None,
            judge_field=args.judge_field or None,
            protocol=protocol,
        )
        for path in args.predictions
    ]
    print(format_scores(results))
    if args.output:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"files": results}, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    return 0


def format_scores(results: list[dict[str, Any]]) -> str:
    """One row per file: n and the means in percent (retrievals per question as a count)."""
    head = ("file", "n", "cover_em", "em", "f1", "judge", "retr/q", "well_formed")
    rows = [head]
    for r in results:

        def pct(key: str, r: dict[str, Any] = r) -> str:
            v = r.get(key)
            return "-" if v is None else f"{100 * v:.1f}"

        retr = r.get("retrievals_per_question")
        rows.append(
            (
                Path(r["file"]).name,
                str(r["n"]),
                pct("cover_em"),
                pct("em"),
                pct("f1"),
                pct("judge"),
                "-" if retr is None else f"{retr:.2f}",
                pct("well_formed"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows)
