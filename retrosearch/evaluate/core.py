"""Evaluation: accuracy (pass@1 averaged over k samples) and mean thinking length per benchmark, any backend."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrosearch.backends.base import Backend
from retrosearch.config import check_choices, option, to_dict
from retrosearch.engine import Engine, Generate, ProgramError
from retrosearch.retro import PromptFormat, split_output
from retrosearch.trace import Trace
from retrosearch.tree import Node, SearchTree
from retrosearch.verify import Verdict, Verifier, get_verifier, gold_answer

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


@dataclass(frozen=True)
class _Fields:
    """Where a benchmark file keeps its parts: the first key present wins."""

    file: str
    question: tuple[str, ...]
    gold: tuple[str, ...]
    id: tuple[str, ...] = ("id", "idx", "unique_id")


#: The math sets of ../shared/data/math (Qwen2.5-Math's evaluation suite) and their field names.
BENCHMARKS: dict[str, _Fields] = {
    "math500": _Fields("math500.jsonl", ("problem",), ("answer",), ("unique_id",)),
    "aime24": _Fields("aime24.jsonl", ("problem", "question"), ("answer",)),
    "aime25": _Fields("aime25.jsonl", ("problem", "question"), ("answer",)),
    "amc23": _Fields("amc23.jsonl", ("problem", "question"), ("answer",)),  # floats: 27.0 -> "27"
    "gsm8k": _Fields("gsm8k.jsonl", ("question",), ("answer",), ("idx",)),  # worked solution ending "#### N"
    "olympiadbench": _Fields("olympiadbench.jsonl", ("question",), ("final_answer",)),  # a list of answers
    "gaokao2023en": _Fields("gaokao2023en.jsonl", ("question",), ("answer",), ("id", "source")),
}
#: Any other JSONL file: the first of these keys present.
_GENERIC = _Fields(
    "", ("problem", "question", "prompt"), ("answer", "final_answer", "gold", "gold_answer", "ground_truth")
)
TOY = "toy"


@dataclass(frozen=True)
class EvalProblem:
    """One problem: its id in the benchmark, the question, and the gold answer as one string."""

    id: str
    question: str
    gold: str


@dataclass
class Benchmark:
    """A named list of problems, with where they came from."""

    name: str
    problems: list[EvalProblem]
    source: str = ""
    #: Rows of the source left out because their gold answer is empty.
    skipped: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- loading
def _default_data_dirs() -> list[Path]:
    env = os.environ.get("RETROSEARCH_SHARED_DATA")
    if env:
        return [Path(env)]
    # The project layout keeps the shared data next to the checkout (../shared/data).
    here = Path(__file__).resolve().parents[2]
    return [Path.cwd() / ".." / "shared" / "data", here.parent / "shared" / "data", Path.cwd() / "data"]


def _find_file(file: str, data_dir: str | Path | None) -> Path:
    roots = [Path(data_dir)] if data_dir is not None else _default_data_dirs()
    tried = []
    for root in roots:
        for cand in (root / "math" / file, root / file):
            tried.append(str(cand))
            if cand.is_file():
                return cand
    raise FileNotFoundError(
        f"benchmark file {file} not found (looked in {', '.join(tried)}); set --data-dir (EvalConfig.data_dir) or "
        "$RETROSEARCH_SHARED_DATA to the folder holding math/, or pass the file's path"
    )


def _pick(row: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str | None, Any]:
    """The first of `keys` in `row` with a value (`"None"` and blank strings count as none); `(None, None)`."""
    for k in keys:
        v = row.get(k)
        if v is not None and not (isinstance(v, str) and v.strip() in ("", "None")):
            return k, v
    return None, None


def _read_problems(path: Path, fields: _Fields, limit: int | None) -> tuple[list[EvalProblem], list[str]]:
    """`(problems, ids of rows left out because their gold answer is empty)`."""
    from retrosearch.data.io import BadRow, read_rows

    out: list[EvalProblem] = []
    no_gold: list[str] = []
    for row_id, row in read_rows(path):
        if limit is not None and len(out) >= limit:
            break
        if isinstance(row, BadRow):
            raise ValueError(f"benchmark {path}: {row.reason}")
        if not isinstance(row, Mapping):
            raise ValueError(
                f"benchmark {path} row {row_id}: expected a JSON object, got {type(row).__name__}"
            )
        _, question = _pick(row, fields.question)
        if not isinstance(question, str):
            raise ValueError(
                f"benchmark {path} row {row_id}: expected the question in one of {list(fields.question)}, "
                f"got keys {sorted(row)}"
            )
        if not any(k in row for k in fields.gold):
            raise ValueError(
                f"benchmark {path} row {row_id}: expected the gold answer in one of {list(fields.gold)}, "
                f"got keys {sorted(row)}"
            )
        gk, gold = _pick(row, fields.gold)
        try:
            gold_text = gold_answer(gold) if gold is not None else ""
        except TypeError as e:
            raise ValueError(f"benchmark {path} row {row_id}: field {gk!r}: {e}") from e
        if not gold_text:
            # A few real rows have an empty answer (e.g. 2 of gaokao2023en): they cannot be graded.
            no_gold.append(row_id)
            continue
        _, pid = _pick(row, fields.id)
        out.append(EvalProblem(str(pid) if pid is not None else row_id, question, gold_text))
    return out, no_gold


def load_benchmark(
    name_or_path: str | Path,
    *,
    limit: int | None = None,
    data_dir: str | Path | None = None,
    toy_problems: int = 200,
    toy_seed: int = 0,
) -> Benchmark:
    """A benchmark by name or path.

    Args:
        name_or_path: One of `BENCHMARKS` (math500, aime24, aime25, amc23, gsm8k, olympiadbench, gaokao2023en;
            read from `data_dir/math/<name>.jsonl`), `"toy"` (the toy world's held-out problems), or a
            `.jsonl`/`.parquet` file whose rows hold a question (`problem`/`question`/`prompt`) and a gold answer
            (`answer`/`final_answer`/`gold`/`gold_answer`/`ground_truth`).
        limit: Keep the first `limit` problems.
        data_dir: Folder holding `math/` (default: `$RETROSEARCH_SHARED_DATA`, else `../shared/data`).
        toy_problems: Number of toy problems when `limit` is not given.
        toy_seed: Seed of the toy problems.

    Raises:
        FileNotFoundError: the file is not there (the message says where it looked).
        ValueError: an unknown name, or a row without a question or a gold answer (naming the row).
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    text = str(name_or_path)
    key = text.lower()
    if key == TOY:
        from retrosearch.toy import make_problems

        probs = make_problems(limit if limit is not None else toy_problems, seed=toy_seed, split="test")
        return Benchmark(
            TOY,
            [EvalProblem(p.expression, p.question, str(p.answer)) for p in probs],
            f"toy(seed={toy_seed})",
        )
    if key in BENCHMARKS:
        fields = BENCHMARKS[key]
        path = _find_file(fields.file, data_dir)
        problems, skipped = _read_problems(path, fields, limit)
        return Benchmark(key, problems, str(path), skipped)
    path = Path(text)
    if path.suffix in (".jsonl", ".parquet"):
        if not path.is_file():
            raise FileNotFoundError(f"benchmark file {path} does not exist")
        problems, skipped = _read_problems(path, _GENERIC, limit)
        if not problems:
            raise ValueError(f"benchmark {path}: no row has a gold answer")
        return Benchmark(path.stem, problems, str(path), skipped)
    raise ValueError(
        f"unknown benchmark {text!r}; expected one of {sorted(BENCHMARKS) + [TOY]} or a .jsonl/.parquet file"
    )


# --------------------------------------------------------------------------- config
@dataclass
class EvalConfig:
    """Settings of `evaluate` (every field is also a `retrosearch evaluate` flag)."""

    k: int = option(4, "Samples per problem; accuracy is pass@1 averaged over them.")
    temperature: float = option(0.6, "Sampling temperature (0: greedy, then the k samples are identical).")
    top_p: float = option(0.95, "Nucleus sampling mass.")
    max_tokens: int = option(4096, "Most new tokens per sample (thinking and solution).")
    seed: int = option(0, "Seed of the samples (with the benchmark and problem id).")
    limit: int | None = option(None, "Evaluate only the first N problems of each benchmark.")
    verifier: str = option("math", "Answer grader.", choices=("math", "exact", "choice"))
    data_dir: str | None = option(
        None, "Folder holding math/*.jsonl (default: $RETROSEARCH_SHARED_DATA, else ../shared/data)."
    )
    toy_problems: int = option(200, "Held-out toy problems evaluated for the toy benchmark (when no limit).")
    toy_seed: int = option(0, "Seed of the toy benchmark's problems.")
    use_chat_template: bool = option(
        True, "Wrap the question with the model's chat template when it has one."
    )
    system_prompt: str | None = option(None, "System message for the chat template.")
    question_template: str = option(
        "{question}",
        "Text of the user turn; `{question}` is replaced (e.g. add 'Put your final answer within \\boxed{}.').",
    )
    think_open: str = option(
        "<think>\n", "Text that opens the thinking, appended to the prompt (unless there)."
    )
    think_close: str = option("</think>", "Tag that closes the thinking in the model's output.")
    max_active: int = option(
        256, "Problems sampled at once (their requests share one backend call per wave)."
    )
    save_samples: bool = option(
        True, "Keep every sample's text in the per-problem records of the JSON output."
    )

    def __post_init__(self) -> None:
        name = type(self).__name__
        for f in ("k", "max_tokens", "max_active", "toy_problems"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}.{f} must be an integer >= 1, got {v!r}")
        if self.limit is not None and (
            not isinstance(self.limit, int) or isinstance(self.limit, bool) or self.limit < 1
        ):
            raise ValueError(f"{name}.limit must be None or an integer >= 1, got {self.limit!r}")
        if not isinstance(self.temperature, (int, float)) or not self.temperature >= 0:
            raise ValueError(f"{name}.temperature must be >= 0, got {self.temperature!r}")
        if not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
            raise ValueError(f"{name}.top_p must be in (0, 1], got {self.top_p!r}")
        if "{question}" not in self.question_template:
            raise ValueError(
                f"{name}.question_template must contain {{question}}, got {self.question_template!r}"
            )
        if not self.think_close:
            raise ValueError(f"{name}.think_close must not be empty")
        check_choices(self)

    @property
    def prompt_format(self) -> PromptFormat:
        """The prompt as Retro-Search builds it: chat template, then the think tag."""
        return PromptFormat(
            use_chat_template=self.use_chat_template,
            system_prompt=self.system_prompt,
            question_template=self.question_template,
            think_open=self.think_open,
            think_close=self.think_close,
        )


# --------------------------------------------------------------------------- evaluation
def _seed(*parts: Any) -> int:
    h = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(h[:4], "little")


def _sample_program(prompt: str, cfg: EvalConfig, seed: int) -> Iterator[Any]:
    """One problem: `k` samples of the answer in one request. Returns the sampled nodes."""
    tree = SearchTree(prompt)
    nodes: list[Node] = yield Generate(
        tree.root, n=cfg.k, temperature=cfg.temperature, top_p=cfg.top_p, max_tokens=cfg.max_tokens, seed=seed
    )
    return nodes


def _grade(
    text: str, finish: str | None, gold: str, backend: Backend, fmt: PromptFormat, verifier: Verifier
) -> dict[str, Any]:
    """One sample: its answer, verdict, thinking length in tokens and whether it was cut off."""
    if fmt.think_close == "</think>":
        # The prompt ends with the think tag: with it, the sample parses as the whole assistant turn.
        trace = Trace.parse(fmt.think_open + text)
        thinking, solution, closed = trace.thinking, trace.solution, trace.solution is not None
    else:  # a custom tag that `Trace.parse` does not know
        split = split_output(text, fmt.think_close)
        closed = split is not None
        thinking, solution = (split[0].strip(), split[1]) if split else (text.strip(), None)
    # Graded like Retro-Search grades: the solution when the thinking closed, else the whole text.
    result = verifier(solution if solution is not None else text, gold)
    return {
        "correct": result.correct,
        "answer": result.prediction,
        "verdict": Verdict(result.verdict).value,
        "thinking_tokens": len(backend.tokenize(thinking)) if thinking else 0,
        "closed": closed,
        "truncated": finish == "length" or not closed,
        "finish_reason": finish,
    }


def _mean(xs: Sequence[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _summarize(bench: Benchmark, records: list[dict[str, Any]], k: int) -> dict[str, Any]:
    samples = [s for r in records for s in r["samples"]]
    per_problem = [sum(s["correct"] for s in r["samples"]) / k for r in records]
    correct = [s for s in samples if s["correct"]]
    return {
        "name": bench.name,
        "source": bench.source,
        "n_problems": len(records),
        "rows_without_gold": len(bench.skipped),
        "k": k,
        "n_samples": len(samples),
        "accuracy": _mean(per_problem),
        "pass_at_k": _mean([1.0 if any(s["correct"] for s in r["samples"]) else 0.0 for r in records]),
        "mean_thinking_tokens": _mean([s["thinking_tokens"] for s in samples]),
        "mean_thinking_tokens_correct": _mean([s["thinking_tokens"] for s in correct]),
        "mean_generated_tokens": _mean([s["generated_tokens"] for s in samples]),
        "truncated_share": _mean([1.0 if s["truncated"] else 0.0 for s in samples]),
        "no_answer_share": _mean([1.0 if s["answer"] is None else 0.0 for s in samples]),
        "errors": sum(1 for r in records if r.get("error")),
    }


def evaluate(
    backend: Backend,
    benchmarks: Sequence[str | Path | Benchmark] | str | Benchmark,
    config: EvalConfig | None = None,
    *,
    output: str | Path | None = None,
    engine: Engine | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Sample `k` answers per problem with `backend`, grade them, and measure the thinking.

    Every problem is one engine program that asks for its `k` samples in one request; the problems of all
    benchmarks share the engine's waves. A sample's prompt is the chat template (when the backend has one) with
    the question, then the think tag, as Retro-Search prompts; the sample is parsed as `think tag + text` with
    `Trace.parse`, its thinking counted in tokens with `backend.tokenize`, and the solution (the whole text when
    the thinking never closed) graded against the gold answer.

    Args:
        backend: The model.
        benchmarks: Names, paths (see `load_benchmark`) or `Benchmark`s.
        config: Settings (`EvalConfig()` by default).
        output: Write the result as JSON there.
        engine: An engine to reuse; a new one by default.
        progress: Show a progress bar over problems on stderr.

    Returns:
        `{"benchmarks": {name: summary}, "average": {...}, "problems": {name: [records]}, "config", "backend",
        "seconds", "engine"}`; a summary holds `accuracy` (pass@1 averaged over k), `pass_at_k`,
        `mean_thinking_tokens` (all samples), `mean_thinking_tokens_correct`, `mean_generated_tokens`,
        `truncated_share` (hit max_tokens or never closed the thinking), `no_answer_share`, and counts.
    """
    cfg = config or EvalConfig()
    if isinstance(benchmarks, (str, Path, Benchmark)):
        benchmarks = [benchmarks]
    loaded: list[Benchmark] = []
    for b in benchmarks:
        if isinstance(b, Benchmark):
            loaded.append(
                dataclasses.replace(b, problems=b.problems[: cfg.limit] if cfg.limit else list(b.problems))
            )
        else:
            loaded.append(
                load_benchmark(
                    b,
                    limit=cfg.limit,
                    data_dir=cfg.data_dir,
                    toy_problems=cfg.toy_problems,
                    toy_seed=cfg.toy_seed,
                )
            )
    names = [b.name for b in loaded]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"benchmarks: {dupes} given more than once")
    if not loaded:
        raise ValueError("benchmarks: expected at least one benchmark")

    fmt = cfg.prompt_format
    verifier = get_verifier(cfg.verifier)
    engine = engine or Engine(backend, max_active=cfg.max_active)
    items = [(b, p) for b in loaded for p in b.problems]
    prompts = [fmt.render(p.question, backend) for _, p in items]
    t0 = time.perf_counter()

    def programs() -> Iterator[Any]:
        for (b, p), prompt in zip(items, prompts):
            yield _sample_program(prompt, cfg, _seed(cfg.seed, b.name, p.id))

    records: list[dict[str, Any] | None] = [None] * len(items)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items), unit="problem", desc="evaluate", file=sys.stderr, dynamic_ncols=True)
    for i, value in engine.run_iter(programs()):
        b, p = items[i]
        rec: dict[str, Any] = {"id": p.id, "question": p.question, "gold": p.gold}
        if isinstance(value, ProgramError):
            rec["error"] = str(value)
            # A failed problem counts as k wrong samples (it is reported in `errors`).
            rec["samples"] = [
                {
                    "correct": False,
                    "answer": None,
                    "verdict": "error",
                    "thinking_tokens": 0,
                    "generated_tokens": 0,
                    "closed": False,
                    "truncated": False,
                    "finish_reason": "error",
                }
                for _ in range(cfg.k)
            ]
        else:
            samples = []
            for node in value:
                s = _grade(node.text, node.finish_reason, p.gold, backend, fmt, verifier)
                s["generated_tokens"] = node.token_count
                if node.meta.get("error"):
                    s["error"] = node.meta["error"]
                if cfg.save_samples:
                    s["text"] = node.text
                samples.append(s)
            rec["samples"] = samples
        rec["accuracy"] = sum(s["correct"] for s in rec["samples"]) / cfg.k
        records[i] = rec
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()

    per_bench: dict[str, list[dict[str, Any]]] = {b.name: [] for b in loaded}
    for (b, _), rec in zip(items, records):
        assert rec is not None
        per_bench[b.name].append(rec)
    summaries = {b.name: _summarize(b, per_bench[b.name], cfg.k) for b in loaded}
    result: dict[str, Any] = {
        "backend": getattr(backend, "name", type(backend).__name__),
        "config": to_dict(cfg),
        "benchmarks": summaries,
        "average": _average(list(summaries.values())),
        "seconds": round(time.perf_counter() - t0, 3),
        "engine": dataclasses.asdict(engine.stats),
        "problems": per_bench,
    }
    if output is not None:
        write_json(result, output)
    return result


def _average(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Macro average over benchmarks (each counts once, as papers report it)."""
    out: dict[str, Any] = {"n_benchmarks": len(summaries)}
    for key in (
        "accuracy",
        "pass_at_k",
        "mean_thinking_tokens",
        "mean_thinking_tokens_correct",
        "truncated_share",
    ):
        vals = [s[key] for s in summaries if s[key] is not None]
        out[key] = _mean(vals)
    return out


def write_json(result: Mapping[str, Any], path: str | Path) -> Path:
    """Write an `evaluate` result as indented JSON (its folder is created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return p


def _fmt(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def format_table(result: Mapping[str, Any]) -> str:
    """The per-benchmark figures of an `evaluate` result as a text table."""
    header = ("benchmark", "problems", "k", "pass@1", "pass@k", "think tok", "think tok ✓", "truncated")
    rows = []
    for s in result["benchmarks"].values():
        rows.append(
            (
                s["name"],
                str(s["n_problems"]),
                str(s["k"]),
                _fmt(s["accuracy"], ".3f"),
                _fmt(s["pass_at_k"], ".3f"),
                _fmt(s["mean_thinking_tokens"], ".1f"),
                _fmt(s["mean_thinking_tokens_correct"], ".1f"),
                _fmt(s["truncated_share"], ".1%"),
            )
        )
    avg = result.get("average") or {}
    if avg.get("n_benchmarks", 0) > 1:
        rows.append(
            (
                "average",
                "",
                "",
                _fmt(avg["accuracy"], ".3f"),
                _fmt(avg["pass_at_k"], ".3f"),
                _fmt(avg["mean_thinking_tokens"], ".1f"),
                _fmt(avg["mean_thinking_tokens_correct"], ".1f"),
                _fmt(avg["truncated_share"], ".1%"),
            )
        )
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]

    def line(r: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths)))

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])
