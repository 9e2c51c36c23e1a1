"""`retrosearch rl evaluate`: a search agent on QA benchmarks, with closed-book and naive-RAG baselines."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from retrosearch.backends.spec import BackendSpec
from retrosearch.cli.common import Formatter
from retrosearch.config import add_arguments, from_args

EPILOG = """\
examples:
  retrosearch rl evaluate --backend transformers --model SmolLM2-135M-Instruct --use-chat-template \\
      --corpus passages.jsonl --index runs/bm25 --benchmark bamboogle --output runs/rl_eval.json
  retrosearch rl evaluate --backend vllm --model R1-Searcher-Qwen-7B --retriever http \\
      --url http://127.0.0.1:8000/retrieve --benchmark hotpotqa --benchmark 2wiki --output runs/eval.json

Benchmarks: hotpotqa, 2wiki, musique, bamboogle (R1-Searcher's evaluation sets, read from --data-dir/qa/), or a
.jsonl/.parquet file of questions and answers. The rollout settings default to R1-Searcher's evaluation ones
(temperature 0, top-k 5, one rollout per question); the flags below override them. Per-rollout records (question,
gold, pred_ans, the rollout text as gen_text_store, scores) go to --predictions, which `rl score` reads back.
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `rl evaluate` subcommand."""
    from retrosearch.rl.evaluate import QAEvalConfig
    from retrosearch.rl.retrievers import add_retriever_arguments
    from retrosearch.rl.rollout import SearchRolloutConfig

    p = subparsers.add_parser(
        "evaluate",
        help="Cover-EM, EM, F1, retrievals and format of a search agent on QA benchmarks, with baselines.",
        description="Run the search rollouts (and the closed-book and naive-RAG baselines) on QA benchmarks, "
        "grade them, print a table and write everything to --output (JSON).",
        epilog=EPILOG,
        formatter_class=Formatter,
    )
    p.add_argument(
        "--benchmark", action="append", required=True, help="A benchmark name or file (repeatable)."
    )
    p.add_argument("--output", default=None, help="JSON file for the summaries.")
    p.add_argument(
        "--predictions",
        default=None,
        help="JSONL file for the per-rollout records (default: next to --output).",
    )
    p.add_argument("--no-progress", action="store_true", help="No progress bar.")
    BackendSpec.add_arguments(
        p.add_argument_group("policy model"),
        model_required=True,
        model_help="A model folder or hub id, the server's model name for openai, or a JSON script for scripted.",
    )
    add_retriever_arguments(p.add_argument_group("retriever (for the search and naive_rag modes)"))
    j = p.add_argument_group("LLM judge (optional)")
    j.add_argument("--judge-model", default=None, help="The judge's model name (enables the judge).")
    j.add_argument("--judge-backend", default="openai", help="The judge's backend kind.")
    j.add_argument("--judge-base-url", default=None, help="The judge's OpenAI-compatible server.")
    j.add_argument(
        "--judge-api-key", default=None, help="The judge's bearer token (default: $OPENAI_API_KEY)."
    )
    add_arguments(p.add_argument_group("evaluation"), QAEvalConfig)
    add_arguments(
        p.add_argument_group(
            "rollouts (for evaluation, temperature 0, top-k 5 and no log-probs unless given)"
        ),
        SearchRolloutConfig,
    )
    p.set_defaults(func=run_cli, _parser=p)
    return p


def run_cli(args: argparse.Namespace) -> int:
    """Load the benchmarks, then the retriever and models; evaluate; print and write the results."""
    from retrosearch.rl.benchmarks import load_qa_benchmark
    from retrosearch.rl.evaluate import (
        QAEvalConfig,
        eval_rollout_config,
        evaluate_qa,
        format_table,
        write_json,
    )
    from retrosearch.rl.judge import LLMJudge
    from retrosearch.rl.retrievers import retriever_config_from_args, retriever_from_config
    from retrosearch.rl.rollout import SearchRolloutConfig

    try:
        cfg = from_args(QAEvalConfig, args)
        rollout = from_args(SearchRolloutConfig, args, base=eval_rollout_config())
        rcfg = retriever_config_from_args(args)
    except (ValueError, TypeError) as e:
        args._parser.error(str(e))
    needs = any(m in ("search", "naive_rag") for m in cfg.modes)
    if needs and not (rcfg.corpus or rcfg.index or rcfg.url):
        args._parser.error(
            f"modes {list(cfg.modes)} need a retriever: give --corpus/--index (bm25, dense) or --url (http), "
            "or --modes closed_book"
        )
    # Benchmarks first: a typo should not cost an index build or a model load.
    benches = [
        load_qa_benchmark(
            b,
            data_dir=cfg.data_dir,
            limit=cfg.limit,
            question_field=cfg.question_field,
            answer_field=cfg.answer_field,
        )
        for b in args.benchmark
    ]
    retriever = retriever_from_config(rcfg) if needs else None
    backend = BackendSpec.from_args(args).build()
    judge = None
    if args.judge_model:
        spec = BackendSpec(
            kind=args.judge_backend,
            model=args.judge_model,
            base_url=args.judge_base_url,
            api_key=args.judge_api_key,
        )
        judge = LLMJudge(spec.build())
    predictions = args.predictions
    if predictions is None and args.output:
        predictions = str(Path(args.output).with_suffix(".predictions.jsonl"))
    result = evaluate_qa(
        backend,
        benches,
        rollout,
        cfg,
        retriever=retriever,
        judge=judge,
        predictions=predictions,
        progress=not args.no_progress,
    )
    result["model"] = args.model
    if args.output:
        write_json(result, args.output)
    print(format_table(result))
    wrote = [x for x in (args.output, predictions) if x]
    print(f"{result['seconds']:.1f} s" + (f"; wrote {', '.join(wrote)}" if wrote else ""))
    return 0
