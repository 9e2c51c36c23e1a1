"""`retrosearch rl serve-retriever`: serve a BM25 or dense retriever over HTTP in Search-R1's format."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from retrosearch.cli.common import Formatter

EPILOG = """\
endpoints:
  POST /retrieve  {"queries": [...], "topk": 3, "return_scores": true}
                  -> {"result": [[{"document": {"id", "contents"}, "score"}, ...], ...]}   (Search-R1, verl)
  POST /queries   {"queries": [...], "k": 3} -> {"answers": [["\\"Title\\"\\ntext", ...], ...]}   (R1-Searcher)
  GET  /health

example:
  retrosearch rl serve-retriever --corpus passages.jsonl --kind bm25 --index bm25_index --port 8000
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `serve-retriever` subcommand."""
    p = subparsers.add_parser(
        "serve-retriever",
        help="Serve a BM25 or dense retriever over HTTP (Search-R1's /retrieve, R1-Searcher's /queries).",
        description="Index a jsonl corpus ({id, title, text} or Search-R1's {id, contents} rows), or load a saved "
        "index, and answer retrieval requests until interrupted.",
        epilog=EPILOG,
        formatter_class=Formatter,
    )
    p.add_argument("--corpus", help="The corpus jsonl (needed unless --index already holds an index).")
    p.add_argument("--kind", choices=("bm25", "dense"), default="bm25", help="Retriever kind.")
    p.add_argument(
        "--index",
        help="Index folder: loaded when it holds an index of --kind, else built from --corpus and saved.",
    )
    p.add_argument("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0 for every interface).")
    p.add_argument("--port", type=int, default=8000, help="Port to listen on.")
    p.add_argument(
        "--model", default=None, help="sentence-transformers model (name or folder) for --kind dense."
    )
    p.add_argument(
        "--dense-index", choices=("flat", "hnsw"), default="flat", help="faiss index for --kind dense."
    )
    p.add_argument(
        "--default-topk", type=int, default=3, help="Passages per query when a request gives none."
    )
    p.add_argument("--max-topk", type=int, default=100, help="The largest topk a request may ask for.")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.set_defaults(func=_run, _parser=p)
    return p


def _run(args: argparse.Namespace) -> int:
    from retrosearch.rl.retrievers import DEFAULT_DENSE_MODEL, load_retriever
    from retrosearch.rl.retrievers.server import serve

    if args.corpus is None and args.index is None:
        raise ValueError("serve-retriever needs --corpus (or --index holding a saved index)")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    if args.default_topk < 1 or args.max_topk < args.default_topk:
        raise ValueError(f"need 1 <= --default-topk ({args.default_topk}) <= --max-topk ({args.max_topk})")
    retriever = load_retriever(
        args.kind,
        corpus=args.corpus,
        index=args.index,
        model=args.model or DEFAULT_DENSE_MODEL,
        dense_index=args.dense_index,
    )
    n = len(retriever) if hasattr(retriever, "__len__") else "?"
    print(
        f"serving a {args.kind} retriever over {n} passages on http://{args.host}:{args.port} "
        "(POST /retrieve, POST /queries)",
        file=sys.stderr,
        flush=True,
    )
    serve(
        retriever,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        default_k=args.default_topk,
        max_k=args.max_topk,
    )
    return 0
