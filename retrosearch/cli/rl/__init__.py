"""`retrosearch rl ...`: search-augmented RL commands (serve a retriever, evaluate, score), one module each."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

#: Modules of the `rl` subcommands, in `--help` order; each has `add_parser(subparsers)` setting `func`.
RL_COMMAND_MODULES: tuple[str, ...] = (
    "retrosearch.cli.rl.serve",
    "retrosearch.cli.rl.evaluate",
    "retrosearch.cli.rl.score",
    "retrosearch.cli.rl.train",
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `rl` command and its subcommands."""
    p = subparsers.add_parser("rl", help="Search-augmented RL: retriever server, QA evaluation, scoring.")
    sub = p.add_subparsers(dest="rl_command", metavar="RL_COMMAND")
    sub.required = True
    for name in RL_COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as e:  # a missing extra disables its subcommand only
            print(f"retrosearch rl: subcommand {name.rsplit('.', 1)[-1]} unavailable ({e})", file=sys.stderr)
            continue
        module.add_parser(sub)
    return p
