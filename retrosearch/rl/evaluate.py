"""QA evaluation of a search agent: cover-EM, EM, F1, retrievals and format, with closed-book and naive-RAG baselines."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrosearch.config import option
from retrosearch.engine import Engine, ProgramError
from retrosearch.rl.benchmarks import QABenchmark
from retrosearch.rl.judge import LLMJudge
from retrosearch.rl.protocols import get_protocol
from retrosearch.rl.rollout import MODES, SearchGroup, SearchRolloutConfig, retrieval_tool, search_rollout
from retrosearch.rl.scoring import grade, summarize


@dataclass
class QAEvalConfig:
    """What `evaluate_qa` runs besides the rollouts themselves."""

    modes: tuple[str, ...] = option(
        MODES,
        "Rollout modes: search (the protocol's loop), closed_book, naive_rag (retrieve once with the question).",
    )
    limit: int | None = option(None, "Questions per benchmark (None: all).")
    data_dir: str | None = option(
        None, "Folder holding qa/ (default: $RETROSEARCH_SHARED_DATA, else ../shared/data)."
    )
    question_field: str = option("question", "Question field of a benchmark file.")
    answer_field: str = option("answer", "Gold answer field of a benchmark file (a string or a list).")
    max_active: int = option(64, "Questions the engine runs at once.")

    def __post_init__(self) -> None:
        self.modes = tuple(self.modes)
        bad = [m for m in self.modes if m not in MODES]
        if bad or not self.modes:
            raise ValueError(f"QAEvalConfig.modes must be some of {list(MODES)}, got {list(self.modes)}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"QAEvalConfig.limit must be >= 1 or None, got {self.limit}")
        if self.max_active < 1:
            raise ValueError(f"QAEvalConfig.max_active must be >= 1, got {self.max_active}")


def eval_rollout_config(**overrides: Any) -> SearchRolloutConfig:
    """Rollout settings of R1-Searcher's evaluation: greedy, top-5 documents, one rollout, no log-probs."""
    base = {"temperature": 0.0, "top_k": 5, "num_generations": 1, "logprobs": False}
    return SearchRolloutConfig(**{**base, **overrides})


def _needs_retriever(modes: Sequence[str]) -> bool:
    return any(m in ("search", "naive_rag") for m in modes)


def evaluate_qa(
    backend: Any,
    benchmarks: Sequence[QABenchmark],
    rollout: SearchRolloutConfig,
    cfg: QAEvalConfig | None = None,
    *,
    retriever: Any = None,
    judge: LLMJudge | None = None,
    predictions: str | Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run every mode on every benchmark through one engine, grade, and summarize.

    Args:
        backend: The policy model.
        benchmarks: The question sets.
        rollout: The rollout settings (see `eval_rollout_config` for R1-Searcher's evaluation ones).
        cfg: Modes and engine settings.
        retriever: Answers `retrieve(queries, k)` (needed by the `search` and `naive_rag` modes).
        judge: Grades each prediction too (`judge` in the records and summaries).
        predictions: A JSONL file for the per-rollout records (question, gold, prediction, rollout text, scores).
        progress: A progress bar on stderr.

    Returns:
        `{"protocol", "modes", "rollout", "benchmarks": {name: {<the first mode's summary>, "modes": {mode:
        summary}}}, "average", "seconds", "engine"}`; a summary holds `n`, `cover_em`, `em`, `f1`,
        `retrievals_per_question`, `well_formed`, `truncated`, `finish_reasons`, `errors` (and `judge`).
    """
    cfg = cfg or QAEvalConfig()
    protocol = get_protocol(rollout.protocol)
    if _needs_retriever(cfg.modes) and retriever is None:
        raise ValueError(f"modes {list(cfg.modes)} need a retriever (only closed_book runs without one)")
    t0 = time.perf_counter()
    # Text search is the `retrieve` tool of every protocol; an image-search tool comes from the multimodal work.
    tools = {"retrieve": retrieval_tool(retriever, rollout.top_k)} if retriever is not None else {}
    engine = Engine(backend, tools=tools, max_active=cfg.max_active)
    jobs = [(b, m, ex) for b in benchmarks for m in cfg.modes for ex in b.examples]

    def programs() -> Iterator[Any]:
        for k, (_, mode, ex) in enumerate(jobs):
            yield search_rollout(ex.question, backend, rollout, mode=mode, index=k, meta={"id": ex.id})

    records: list[list[dict[str, Any]]] = [[] for _ in jobs]
    bar = _bar(len(jobs), progress)
    for k, result in engine.run_iter(programs()):
        bench, mode, ex = jobs[k]
        records[k] = _records(bench.name, mode, ex, result, protocol)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    flat = [r for rs in records for r in rs]
    if judge is not None:
        verdicts = judge([(r["question"], r["answer"], r["pred_ans"]) for r in flat])
        for r, v in zip(flat, verdicts):
            r["judge"], r["judge_reply"] = v.correct, v.reply
    if predictions is not None:
        _write_jsonl(flat, predictions)
    result: dict[str, Any] = {
        "protocol": protocol.name,
        "modes": list(cfg.modes),
        "rollout": dataclasses.asdict(rollout),
        "benchmarks": {},
    }
    for bench in benchmarks:
        per_mode = {
            m: summarize([r for r in flat if r["benchmark"] == bench.name and r["mode"] == m])
            for m in cfg.modes
        }
        result["benchmarks"][bench.name] = {"mode": cfg.modes[0], **per_mode[cfg.modes[0]], "modes": per_mode}
    result["average"] = _average(result["benchmarks"], cfg.modes)
    result["seconds"] = round(time.perf_counter() - t0, 3)
    s = engine.stats
    result["engine"] = {"waves": s.waves, "backend_calls": s.backend_calls, "tool_calls": s.tool_calls}
    if predictions is not None:
        result["predictions"] = str(predictions)
    return result


def _records(bench: str, mode: str, ex: Any, result: Any, protocol: Any) -> list[dict[str, Any]]:
    base = {"benchmark": bench, "mode": mode, "id": ex.id, "question": ex.question, "answer": list(ex.golds)}
    if isinstance(result, ProgramError) or not isinstance(result, SearchGroup):
        err = str(result.error if isinstance(result, ProgramError) else result)
        rec = {**base, "pred_ans": None, "gen_text_store": "", "retrievals": 0, "finish_reason": "error"}
        return [{**rec, **grade(None, ex.golds), "well_formed": False, "truncated": False, "error": err}]
    out = []
    for j, r in enumerate(result.rollouts):
        rec = {
            **base,
            "sample": j,
            "pred_ans": r.answer,
            "gen_text_store": r.text,
            "queries": r.queries,
            "retrievals": r.retrievals,
            "finish_reason": r.finish_reason,
            "truncated": r.truncated,
            "completion_tokens": len(r.completion_ids),
            "document_tokens": len(r.env_mask) - sum(r.env_mask),
        }
        rec.update(grade(r.answer, ex.golds, r.text, protocol))
        if r.error:
            rec["error"] = r.error
        out.append(rec)
    return out


def _average(benches: dict[str, dict[str, Any]], modes: Sequence[str]) -> dict[str, Any]:
    """Per mode, the unweighted mean over benchmarks of each averaged score."""
    out: dict[str, Any] = {}
    for m in modes:
        summaries = [b["modes"][m] for b in benches.values()]
        keys = ("cover_em", "em", "f1", "judge", "retrievals_per_question", "well_formed", "truncated")
        avg = {}
        for key in keys:
            vals = [s[key] for s in summaries if s.get(key) is not None]
            if vals:
                avg[key] = sum(vals) / len(vals)
        out[m] = avg
    return out


def _bar(total: int, on: bool) -> Any:
    if not on:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="rl evaluate", unit="q")


def _write_jsonl(records: Sequence[dict[str, Any]], path: str | Path) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def write_json(result: dict[str, Any], path: str | Path) -> Path:
    """Write a result as indented JSON (its folder is created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    return p


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table: one row per benchmark and mode."""
    head = ("benchmark", "mode", "n", "cover_em", "em", "f1", "judge", "retr/q", "well_formed", "truncated")
    rows = [head]

    def pct(v: Any) -> str:
        return "-" if v is None else f"{100 * v:.1f}"

    for name, b in result["benchmarks"].items():
        for mode, s in b["modes"].items():
            r = s.get("retrievals_per_question")
            rows.append(
                (
                    name,
                    mode,
                    str(s["n"]),
                    pct(s.get("cover_em")),
                    pct(s.get("em")),
                    pct(s.get("f1")),
                    pct(s.get("judge")),
                    "-" if r is None else f"{r:.2f}",
                    pct(s.get("well_formed")),
                    pct(s.get("truncated")),
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)
