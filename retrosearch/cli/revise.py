"""`retrosearch revise`: resumable batch Retro-Search over a file, folder or dataset."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

from retrosearch.backends.spec import BackendSpec
from retrosearch.cli.common import Formatter
from retrosearch.config import add_arguments, from_args, load_yaml
from retrosearch.data.io import check_source
from retrosearch.retro import RetroSearchConfig
from retrosearch.retro.batch import run_batch

_REVISE_EPILOG = """\
examples:
  retrosearch revise --input examples/traces.jsonl --output runs/example.jsonl \\
      --backend scripted --model examples/scripted_model.json
  retrosearch revise --input open-thoughts/OpenThoughts-114k --input-config metadata --limit 1000 \\
      --output runs/ot.jsonl --backend vllm --model deepseek-ai/DeepSeek-R1-Distill-Qwen-7B
  retrosearch revise --input traces/ --output runs/w2s.jsonl --backend vllm \\
      --model deepseek-ai/DeepSeek-R1 --revision-model deepseek-ai/DeepSeek-R1-Distill-Qwen-32B \\
      --tensor-parallel-size 4 --dtype bfloat16

The output is a JSONL journal: a header with the run's settings, models and input, then one line per input
row, written as rows finish. Run the same command again after an interruption (Ctrl-C, a kill): rows already
in the journal are not redone. A rerun with other settings is refused (--overwrite starts anew); a file that
is not a journal is never overwritten. `retrosearch export` turns a journal into parquet.

--model is the model that wrote the traces and, without --revision-model, the one that revises them
(self-improvement). --revision-model is the model that revises when it is another one (weak-to-strong); --model
is then only recorded in the journal, never loaded.

--backend scripted: --model is a JSON file mapping prompt suffixes to the continuation (or a list of candidate
continuations, most likely first) that the fake model writes; the longest matching suffix wins. A prompt is the
question, a newline, "<think>\\n", then the thinking up to the end of a thought (before the blank line), e.g.
  {"6 * 7 = 42.": "\\n</think>\\n\\n", "42.\\n</think>\\n\\n": "The answer is \\\\boxed{42}."}
"""


def add_parser(subparsers: Any) -> None:
    """Add the `revise` subcommand."""
    p = subparsers.add_parser(
        "revise",
        help="Revise reasoning traces with Retro-Search into a resumable JSONL journal.",
        description="Revise every row of --input with Retro-Search; write one JSONL record per row to --output.",
        epilog=_REVISE_EPILOG,
        formatter_class=Formatter,
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
        "--overwrite",
        action="store_true",
        help="Start an existing journal anew instead of resuming it (a file that is not a journal is never "
        "overwritten).",
    )
    io.add_argument("--no-progress", action="store_true", help="No progress bar.")

    m = p.add_argument_group("model")
    BackendSpec.add_arguments(
        m,
        model_help="The model that wrote the input traces; without --revision-model also the one that revises "
        "them (loaded): a local folder, a shipped toy model (toy-base), a hub id, the server's model name for "
        "openai, or a JSON script for scripted.",
    )
    m.add_argument(
        "--revision-model",
        default=None,
        help="The model that revises, when it is not --model (weak-to-strong: another model revises --model's "
        "traces; --model is then recorded in the journal, not loaded). Same forms as --model.",
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
    if args.model is None and args.revision_model is None:
        raise ValueError(f"--model is required for --backend {args.backend}")
    two_scripts = (
        args.backend == "scripted"
        and None not in (args.model, args.revision_model)
        and Path(args.model).suffix == ".json"
        and Path(args.model).resolve() != Path(args.revision_model).resolve()
    )
    if two_scripts:
        # Only the reviser runs: the other script would be silently ignored.
        raise ValueError(
            f"--model {args.model} is a scripted model, but --revision-model {args.revision_model} revises; "
            "with --revision-model, --model names the model that wrote the traces (it is not loaded)"
        )
    _spec(args).validate(flag="--revision-model" if args.revision_model else "--model")
    if args.limit is not None and args.limit < 0:
        raise ValueError(f"--limit must be >= 0, got {args.limit}")
    if args.max_active < 1:
        raise ValueError(f"--max-active must be >= 1, got {args.max_active}")
    if args.ray:
        if importlib.util.find_spec("ray") is None:
            raise ValueError("--ray needs the package 'ray' (pip install 'retrosearch[ray]')")
        if args.ray_actors < 1 or args.ray_shard_size < 1:
            raise ValueError("--ray-actors and --ray-shard-size must be >= 1")
    try:
        check_source(args.input)
    except (FileNotFoundError, ValueError) as e:
        raise ValueError(f"--{e}") from e
    src, out = Path(args.input), Path(args.output)
    if out.is_dir():
        raise ValueError(
            f"--output {args.output} is a folder; give the journal's file name (e.g. runs/x.jsonl)"
        )
    if out.exists() and not out.is_file():
        raise ValueError(f"--output {args.output} is not a regular file (a device, pipe or socket)")
    if out.exists() and src.exists() and out.resolve() == src.resolve():
        raise ValueError("--output must not be the --input file")


def _spec(args: argparse.Namespace, seed: int | None = None) -> BackendSpec:
    """The backend that revises: `--revision-model` when given, else `--model`."""
    return BackendSpec.from_args(args, model=args.revision_model, seed=seed)


def _search_config(args: argparse.Namespace) -> Any:
    base = load_yaml(RetroSearchConfig, args.config) if args.config else None
    return from_args(RetroSearchConfig, args, base=base)


def _run_revise(args: argparse.Namespace) -> int:
    try:
        _check_revise(args)
        args.search_config = _search_config(args)
    except (ValueError, TypeError) as e:
        # Names the flag or field and what was expected; exits with status 2 like any usage error.
        args._parser.error(str(e))
    cfg = args.search_config
    try:
        summary = run_batch(
            args.input,
            args.output,
            _spec(args, seed=cfg.seed),
            cfg,
            split=args.split,
            name=args.input_config,
            limit=args.limit,
            save_trees=args.save_trees,
            max_active=args.max_active,
            overwrite=args.overwrite,
            trace_model=args.model if args.revision_model else None,
            ray=args.ray,
            ray_actors=args.ray_actors,
            ray_shard_size=args.ray_shard_size,
            ray_num_cpus=args.ray_num_cpus,
            progress=not args.no_progress,
        )
    except KeyboardInterrupt:
        # Every finished row is already on disk (one fsynced line each): nothing is lost.
        print(f"retrosearch revise: interrupted — rerun to resume ({args.output})", file=sys.stderr)
        return 130
    print(summary.table())
    return 0
