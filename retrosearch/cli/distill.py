"""`retrosearch distill`: supervised fine-tuning on (revised) traces."""

from __future__ import annotations

import argparse
from typing import Any

from retrosearch.config import add_arguments, from_args, load_yaml
from retrosearch.distill import DistillConfig, distill

_EPILOG = """\
examples:
  retrosearch distill --model toy-base --train-files runs/revised.jsonl --output-dir runs/student --max-steps 200
  retrosearch distill --config distill.yaml --resume true
  accelerate launch -m retrosearch.cli distill --config distill.yaml     # several GPUs, same config

A --config YAML file holds DistillConfig fields (flags override it), e.g.
  model: deepseek-ai/DeepSeek-R1-Distill-Qwen-7B
  train_files: [runs/revised.jsonl]
  chat_template_path: templates/r1_keep_thinking.jinja
  learning_rate: 1.0e-5
  per_device_train_batch_size: 1
  gradient_accumulation_steps: 16
  bf16: true
  sft_args: {lr_scheduler_kwargs: {}, dataloader_num_workers: 2}
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `distill` subcommand to `subparsers` (an `argparse` sub-parsers object)."""
    p = subparsers.add_parser(
        "distill",
        help="Fine-tune a student on (revised) traces with TRL's SFTTrainer.",
        description="Supervised fine-tuning on reasoning traces: the user turn is the question, the assistant "
        "turn the trace in R1's format (<think>...</think> then the solution); the loss covers the assistant "
        "turn only. Checkpoints every --save-steps; --resume continues from one.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", default=None, help="YAML file of DistillConfig fields (flags override it).")
    add_arguments(p.add_argument_group("DistillConfig"), DistillConfig)
    p.set_defaults(func=run_cli, _parser=p)
    return p


def config_from_args(args: argparse.Namespace) -> DistillConfig:
    """The `DistillConfig` of a parsed command line (`--config` YAML, then the flags)."""
    base = load_yaml(DistillConfig, args.config) if getattr(args, "config", None) else None
    return from_args(DistillConfig, args, base=base)


def run_cli(args: argparse.Namespace) -> int:
    """`retrosearch distill`: train, then print the summary."""
    try:
        config = config_from_args(args)
        config.validate()
    except (ValueError, TypeError) as e:
        args._parser.error(str(e))
    summary = distill(config)
    if not summary["is_main_process"]:
        return 0
    skipped = summary["data"]["skipped"]
    print(
        f"distill: {summary['data']['examples']} examples"
        + (f" ({sum(skipped.values())} rows skipped: {skipped})" if skipped else "")
        + f", {summary['steps_this_run']} steps this run (global step {summary['global_step']}"
        + (f", resumed from {summary['resumed_from']}" if summary["resumed_from"] else "")
        + f"), train loss {summary['train_loss']:.4f}, {summary['seconds']:.1f} s on {summary['device']}"
        + f"\nmodel saved to {summary['output_dir']}"
    )
    return 0
