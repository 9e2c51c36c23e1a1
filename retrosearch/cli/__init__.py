"""The `retrosearch` command line: argparse only, one module per subcommand. Nothing imports this package."""

from __future__ import annotations

import argparse
import importlib
import sys

#: Subcommand modules, in `--help` order; each has `add_parser(subparsers)` that sets `func` on its parser.
COMMAND_MODULES: tuple[str, ...] = (
    "retrosearch.cli.revise",
    "retrosearch.cli.export",
    "retrosearch.cli.distill",
    "retrosearch.cli.evaluate",
    "retrosearch.cli.demo",
    "retrosearch.cli.rl",
)


def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every subcommand whose module imports (a missing extra is reported, not fatal)."""
    from retrosearch import __version__

    parser = argparse.ArgumentParser(
        prog="retrosearch", description="Retro-Search: revise reasoning traces into shorter correct ones."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as e:  # a subcommand whose extra is not installed must not break the others
            print(f"retrosearch: subcommand {name.rsplit('.', 1)[-1]} unavailable ({e})", file=sys.stderr)
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `retrosearch` command line; returns the exit status (2 for a bad command line, 1 for an error,
    130 for Ctrl-C)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, ImportError) as e:  # e.g. a model that cannot be loaded
        print(f"retrosearch {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"retrosearch {args.command}: interrupted", file=sys.stderr)
        return 130
