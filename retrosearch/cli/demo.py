"""`retrosearch demo`: sample, revise and (with --full) distill with the shipped toy model."""

from __future__ import annotations

import argparse
from typing import Any

from retrosearch.config import add_arguments, from_args
from retrosearch.demo import DemoConfig, run_demo


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo",
        help="sample, revise and (with --full) distill with the shipped toy model, on CPU in minutes",
        description=run_demo.__doc__,
    )
    add_arguments(p, DemoConfig)
    p.set_defaults(func=run_cli, _parser=p)
    return p


def run_cli(args: argparse.Namespace) -> int:
    try:
        cfg = from_args(DemoConfig, args)
    except (TypeError, ValueError) as e:
        args._parser.error(str(e))
    run_demo(cfg)
    return 0
