"""Evaluation of accuracy and thinking length on math benchmarks, for any backend."""

from retrosearch.evaluate.core import (  # noqa: F401
    BENCHMARKS,
    Benchmark,
    EvalConfig,
    EvalProblem,
    evaluate,
    format_table,
    load_benchmark,
    write_json,
)

__all__ = [
    "BENCHMARKS",
    "Benchmark",
    "EvalConfig",
    "EvalProblem",
    "evaluate",
    "format_table",
    "load_benchmark",
    "write_json",
]
