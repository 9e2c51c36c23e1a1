"""`retrosearch rl train`: GRPO training of a search agent on TRL, from a recipe or YAML file plus flags."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from retrosearch.cli.common import Formatter
from retrosearch.config import add_arguments, from_args

EPILOG = """\
examples:
  retrosearch rl train --config r1searcher-stage1 --model SmolLM2-135M-Instruct --max-steps 20
  accelerate launch --num_processes 2 -m retrosearch rl train --config r1searcher-stage2 --use-cpu
  retrosearch rl train --config my.yaml --num-generations 8 --scale-rewards none --loss-type grpo

Recipes: r1searcher-stage1, r1searcher-stage2, r1searcher-pp (or a YAML file of the fields below). Flags override
the config; other trl.GRPOConfig fields go under grpo_args in the YAML. Resumes from the newest checkpoint in
--output-dir by default (--resume auto).
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `rl train` subcommand."""
    from retrosearch.rl.train.config import RLTrainConfig

    p = subparsers.add_parser(
        "train",
        help="GRPO training of a search agent on TRL (R1-Searcher's stages, R1-Searcher++).",
        description="Train with TRL's GRPOTrainer on search rollouts (documents masked from the loss), "
        "checkpointing and resuming; runs under accelerate launch.",
        epilog=EPILOG,
        formatter_class=Formatter,
    )
    p.add_argument("--config", default=None, help="A shipped recipe's name or a YAML file.")
    add_arguments(p.add_argument_group("training (RLTrainConfig; GRPOConfig names)"), RLTrainConfig)
    p.set_defaults(func=run)
    return p


def config_from_args(args: argparse.Namespace) -> Any:
    """The `RLTrainConfig` of `--config` with the flags given on top."""
    from retrosearch.rl.train.config import RLTrainConfig, load_config

    base = load_config(args.config) if args.config else None
    cfg = from_args(RLTrainConfig, args, base=base)
    cfg.__post_init__()
    return cfg


def run(args: argparse.Namespace) -> int:
    try:
        cfg = config_from_args(args)
        cfg.validate()
    except (ValueError, TypeError) as e:
        print(f"retrosearch rl train: {e}", file=sys.stderr)
        return 2
    from retrosearch.rl.train.trainer import train

    summary = train(cfg)
    keys = ("global_step", "steps_this_run", "resumed_from", "train_loss", "losses_finite", "seconds")
    print(json.dumps({k: summary[k] for k in keys}, default=str))
    return 0
