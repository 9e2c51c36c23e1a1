"""Evaluation of accuracy and thinking length on math benchmarks, for any backend."""

from retrosearch.evaluate.benchmarks import BENCHMARKS, Benchmark, EvalProblem, load_benchmark
from retrosearch.evaluate.config import EvalConfig
from retrosearch.evaluate.report import format_table, write_json
from retrosearch.evaluate.run import evaluate

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
