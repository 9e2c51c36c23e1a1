"""`retrosearch evaluate`: accuracy and thinking length of a model on math benchmarks."""

from __future__ import annotations

import argparse
from typing import Any

from retrosearch.backends.spec import BackendSpec
from retrosearch.config import add_arguments, from_args, load_yaml
from retrosearch.evaluate import EvalConfig, evaluate, format_table, load_benchmark, write_json

_EPILOG = """\
examples:
  retrosearch evaluate --backend transformers --model toy-base --benchmark toy --n 4 --output runs/eval_toy.json
  retrosearch evaluate --backend vllm --model deepseek-ai/DeepSeek-R1-Distill-Qwen-7B --benchmark math500 \\
      --benchmark aime24 --n 4 --max-tokens 32768 --output runs/eval.json
  retrosearch evaluate --backend openai --base-url http://127.0.0.1:8000 --model r1 --benchmark my_set.jsonl

Benchmarks: math500, aime24, aime25, amc23, gsm8k, olympiadbench, gaokao2023en (read from --data-dir/math/),
toy (the toy world's held-out problems), or a .jsonl/.parquet file with question and answer fields.
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `evaluate` subcommand to `subparsers` (an `argparse` sub-parsers object)."""
    p = subparsers.add_parser(
        "evaluate",
        help="Accuracy (pass@1 over n samples) and mean thinking tokens per benchmark, for any backend.",
        description="Sample n answers per problem, grade them against the gold answers, and report accuracy "
        "and thinking length per benchmark: a table on the terminal, everything in --output (JSON).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--benchmark", action="append", required=True, help="A benchmark name or file (repeat for several)."
    )
    p.add_argument("--output", default=None, help="JSON file for the summaries and per-problem records.")
    p.add_argument("--config", default=None, help="YAML file of EvalConfig fields (flags override it).")
    p.add_argument("--no-progress", action="store_true", help="No progress bar.")
    m = p.add_argument_group("model")
    BackendSpec.add_arguments(
        m,
        model_required=True,
        model_help="A model folder or hub id, a shipped toy model (toy-base, toy-small), the server's model name "
        "for openai, or a JSON script for scripted.",
    )
    add_arguments(p.add_argument_group("EvalConfig (flags override --config)"), EvalConfig)
    p.set_defaults(func=run_cli, _parser=p)
    return p


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    """The `EvalConfig` of a parsed command line (`--config` YAML, then the flags)."""
    base = load_yaml(EvalConfig, args.config) if getattr(args, "config", None) else None
    return from_args(EvalConfig, args, base=base)


def run_cli(args: argparse.Namespace) -> int:
    """`retrosearch evaluate`: sample, grade, print the table, write the JSON."""
    try:
        cfg = config_from_args(args)
        spec = BackendSpec.from_args(args, seed=cfg.seed)
        spec.validate()
    except (ValueError, TypeError) as e:
        args._parser.error(str(e))
    # Load the benchmarks before the model: a typo should not cost a model load.
    benches = [
        load_benchmark(
            b, limit=cfg.limit, data_dir=cfg.data_dir, toy_problems=cfg.toy_problems, toy_seed=cfg.toy_seed
        )
        for b in args.benchmark
    ]
    backend = spec.build()
    result = evaluate(backend, benches, cfg, progress=not args.no_progress)
    result["model"] = args.model
    if args.output:
        write_json(result, args.output)
    print(format_table(result))
    print(f"{result['seconds']:.1f} s" + (f"; wrote {args.output}" if args.output else ""))
    return 0
