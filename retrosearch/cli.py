"""The `retrosearch` command line: `revise` (resumable batch Retro-Search), `export`, and room for more."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from retrosearch.batch import BackendSpec

#: A subcommand: a function that adds its parser to `subparsers` and sets `func` (`Namespace -> int`) on it.
Command = Callable[[Any], None]

#: Registered subcommands, in the order they appear in `--help`.
COMMANDS: dict[str, Command] = {}

#: Modules imported before parsing so that their `@register_command` functions run (for subcommands kept
#: outside this file, e.g. `"retrosearch.distill"`); a module that fails to import is reported, not fatal.
COMMAND_MODULES: tuple[str, ...] = ("retrosearch.distill", "retrosearch.evaluate", "retrosearch.demo")


def register_command(name: str) -> Callable[[Command], Command]:
    """Decorator: register `fn(subparsers)` as the subcommand `name`.

    Example:
        >>> @register_command("distill")
        ... def _distill(subparsers):
        ...     p = subparsers.add_parser("distill", help="Fine-tune a student on revised traces.")
        ...     p.add_argument("--journal", required=True)
        ...     p.set_defaults(func=lambda args: 0)
    """

    def deco(fn: Command) -> Command:
        if name in COMMANDS and COMMANDS[name] is not fn:
            raise ValueError(f"subcommand {name!r} is already registered")
        COMMANDS[name] = fn
        return fn

    return deco


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


# --------------------------------------------------------------------------- revise
_REVISE_EPILOG = """\
examples:
  retrosearch revise --input examples/traces.jsonl --output runs/example.jsonl \\
      --backend scripted --model examples/scripted_model.json
  retrosearch revise --input open-thoughts/OpenThoughts-114k --input-config metadata --limit 1000 \\
      --output runs/ot.jsonl --backend vllm --model deepseek-ai/DeepSeek-R1-Distill-Qwen-7B
  retrosearch revise --input traces/ --output runs/w2s.jsonl --backend openai \\
      --base-url http://127.0.0.1:8000 --model r1-32b --revision-model r1-distill-7b

The output is a JSONL journal, one line per input row, written as rows finish. Run the same command again
after an interruption: rows already in the journal are not redone. `retrosearch export` turns it into parquet.

--backend scripted: --model is a JSON file mapping prompt suffixes to the continuation (or a list of candidate
continuations, most likely first) that the fake model writes; the longest matching suffix wins. A prompt is the
question, a newline, "<think>\\n", then the thinking up to the end of a thought (before the blank line), e.g.
  {"6 * 7 = 42.": "\\n</think>\\n\\n", "42.\\n</think>\\n\\n": "The answer is \\\\boxed{42}."}
"""


@register_command("revise")
def _revise_parser(subparsers: Any) -> None:
    from retrosearch.config import add_arguments
    from retrosearch.search import RetroSearchConfig

    p = subparsers.add_parser(
        "revise",
        help="Revise reasoning traces with Retro-Search into a resumable JSONL journal.",
        description="Revise every row of --input with Retro-Search; write one JSONL record per row to --output.",
        epilog=_REVISE_EPILOG,
        formatter_class=_Formatter,
    )
    io = p.add_argument_group("input / output")
    io.add_argument(
        "--input",
        required=True,
        help="A .jsonl or .parquet file, a folder of them, a `datasets.save_to_disk` folder, or a "
        "`datasets` hub name (e.g. open-thoughts/OpenThoughts-114k).",
    )
    io.add_argument("--input-config", default=None, help="Configuration of a hub dataset (e.g. metadata).")
    io.add_argument("--split", default="train", help="Split of a `datasets` input.")
    io.add_argument("--output", required=True, help="The JSONL journal to write (resumed when it exists).")
    io.add_argument("--limit", type=int, default=None, help="Only the first N input rows.")
    io.add_argument("--save-trees", action="store_true", help="Store each row's search tree in the journal.")
    io.add_argument(
        "--overwrite", action="store_true", help="Discard an existing journal instead of resuming it."
    )
    io.add_argument("--no-progress", action="store_true", help="No progress bar.")

    m = p.add_argument_group("model")
    BackendSpec.add_arguments(
        m,
        model_help="The model whose traces are revised (and, unless --revision-model is given, the one that "
        "revises): a path or hub name, a shipped toy model, the server's model name for openai, a JSON script "
        "for scripted.",
    )
    m.add_argument(
        "--revision-model",
        default=None,
        help="The model that revises, when not --model (weak-to-strong: a smaller model revises a "
        "stronger model's traces).",
    )
    m.add_argument(
        "--scripted-latency", type=float, default=0.0, help="Fake seconds per backend call (scripted)."
    )

    s = p.add_argument_group("search (RetroSearchConfig; flags override --config)")
    s.add_argument("--config", default=None, help="YAML file of RetroSearchConfig fields.")
    add_arguments(s, RetroSearchConfig)

    r = p.add_argument_group("execution")
    r.add_argument(
        "--max-active",
        type=int,
        default=256,
        help="Rows searched at once per engine (their requests share one backend call per wave).",
    )
    r.add_argument(
        "--ray", action="store_true", help="Spread shards of rows over Ray actors, each with its backend."
    )
    r.add_argument("--ray-actors", type=int, default=2, help="Number of Ray actors.")
    r.add_argument("--ray-shard-size", type=int, default=16, help="Rows per shard sent to an actor.")
    r.add_argument(
        "--ray-num-cpus",
        type=int,
        default=None,
        help="CPUs of the local Ray instance started here (default: one per actor).",
    )
    p.set_defaults(func=_run_revise, _parser=p)


def _check_revise(args: argparse.Namespace) -> None:
    """Reject bad combinations before any model is loaded; `SystemExit` via `parser.error` by the caller."""
    model = args.revision_model or args.model
    if model is None:
        raise ValueError(f"--model is required for --backend {args.backend}")
    if args.backend == "scripted":
        from retrosearch.batch import load_script

        load_script(model)
    elif args.backend == "openai":
        if not args.base_url:
            raise ValueError("--backend openai needs --base-url (e.g. http://127.0.0.1:8000)")
    elif args.base_url:
        raise ValueError(f"--base-url only applies to --backend openai, not {args.backend}")
    if args.backend in ("transformers", "vllm") and (model.endswith((".json", ".jsonl"))):
        raise ValueError(
            f"--model {model!r} looks like a file of data, not a model, for --backend {args.backend}"
        )
    if (
        args.backend in ("transformers", "vllm")
        and model.startswith((".", "/", "~"))
        and not Path(model).expanduser().exists()
    ):
        raise ValueError(f"--model {model}: no such model folder")
    needs = {"transformers": "transformers", "vllm": "vllm", "openai": "httpx"}
    pkg = needs.get(args.backend)
    if pkg is not None and importlib.util.find_spec(pkg) is None:
        raise ValueError(f"--backend {args.backend} needs the package {pkg!r}, which is not installed")
    if args.scripted_latency < 0:
        raise ValueError(f"--scripted-latency must be >= 0, got {args.scripted_latency}")
    if args.limit is not None and args.limit < 0:
        raise ValueError(f"--limit must be >= 0, got {args.limit}")
    if args.max_active < 1:
        raise ValueError(f"--max-active must be >= 1, got {args.max_active}")
    if args.ray:
        if importlib.util.find_spec("ray") is None:
            raise ValueError("--ray needs the package 'ray' (pip install 'retrosearch[ray]')")
        if args.ray_actors < 1 or args.ray_shard_size < 1:
            raise ValueError("--ray-actors and --ray-shard-size must be >= 1")
    src = Path(args.input)
    if not src.exists() and (src.suffix in (".jsonl", ".parquet") or args.input.startswith((".", "/", "~"))):
        raise ValueError(f"--input {args.input}: no such file or folder")
    out = Path(args.output)
    if out.is_dir():
        raise ValueError(
            f"--output {args.output} is a folder; give the journal's file name (e.g. runs/x.jsonl)"
        )
    if out.resolve() == src.resolve():
        raise ValueError("--output must not be the --input file")


def _search_config(args: argparse.Namespace) -> Any:
    from retrosearch.config import from_args, load_yaml
    from retrosearch.search import RetroSearchConfig

    base = load_yaml(RetroSearchConfig, args.config) if args.config else None
    return from_args(RetroSearchConfig, args, base=base)


def _run_revise(args: argparse.Namespace) -> int:
    from retrosearch.batch import run_batch

    spec = BackendSpec.from_args(args, model=args.revision_model)
    summary = run_batch(
        args.input,
        args.output,
        spec,
        args.search_config,
        split=args.split,
        name=args.input_config,
        limit=args.limit,
        save_trees=args.save_trees,
        max_active=args.max_active,
        overwrite=args.overwrite,
        ray=args.ray,
        ray_actors=args.ray_actors,
        ray_shard_size=args.ray_shard_size,
        ray_num_cpus=args.ray_num_cpus,
        progress=not args.no_progress,
    )
    print(summary.table())
    return 0


# --------------------------------------------------------------------------- export
@register_command("export")
def _export_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="Turn a revise journal into a parquet dataset in the input's row layout.",
        description="Write the rows of a journal (revised rows replaced, others as they came), in input order, "
        "as a parquet file loadable with `datasets.load_dataset('parquet', data_files=...)`.",
        formatter_class=_Formatter,
    )
    p.add_argument("--journal", required=True, help="A JSONL journal written by `retrosearch revise`.")
    p.add_argument("--output", required=True, help="The parquet file to write.")
    p.add_argument("--drop-errors", action="store_true", help="Leave out rows whose status is error.")
    p.set_defaults(func=_run_export, _parser=p)


def _run_export(args: argparse.Namespace) -> int:
    from retrosearch.batch import export_journal

    if not Path(args.journal).is_file():
        raise ValueError(f"--journal {args.journal}: no such file")
    if not args.output.endswith(".parquet"):
        raise ValueError(f"--output {args.output}: expected a .parquet file name")
    ds = export_journal(args.journal, args.output, include_errors=not args.drop_errors)
    print(f"wrote {len(ds)} rows ({', '.join(ds.column_names)}) to {args.output}")
    return 0


# --------------------------------------------------------------------------- entry point
def build_parser() -> argparse.ArgumentParser:
    """The full parser, with every registered subcommand."""
    for mod in COMMAND_MODULES:
        try:
            importlib.import_module(mod)
        except Exception as e:  # noqa: BLE001 - a broken or extra-less subcommand must not break the others
            print(f"retrosearch: subcommands of {mod} unavailable ({e})", file=sys.stderr)
    parser = argparse.ArgumentParser(
        prog="retrosearch", description="Retro-Search: revise reasoning traces into shorter correct ones."
    )
    from retrosearch import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for setup in COMMANDS.values():
        setup(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `retrosearch` command line; returns the exit status (2 for a bad command line)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "revise":
            _check_revise(args)
            args.search_config = _search_config(args)
    except (ValueError, TypeError) as e:
        # Names the flag or field and what was expected; exits with status 2 like any usage error.
        getattr(args, "_parser", parser).error(str(e))
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError, ImportError) as e:  # e.g. a model that cannot be loaded
        print(f"retrosearch {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    # Run the registry of the importable module, not of this `__main__` copy: subcommand modules register
    # themselves into `retrosearch.cli`.
    from retrosearch.cli import main as _main

    raise SystemExit(_main())
