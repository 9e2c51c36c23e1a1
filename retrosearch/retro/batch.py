"""Resumable batch revision: rows in, one JSONL journal line per row out, as rows finish; optional Ray shards."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrosearch.backends.base import Backend
from retrosearch.backends.spec import BackendSpec
from retrosearch.data.io import BadRow, RowAdapter, count_rows, get_adapter, read_rows
from retrosearch.data.journal import Journal, read_journal
from retrosearch.engine import Engine
from retrosearch.retro.search import RetroSearchConfig, RevisionResult, revise_iter

__all__ = ["BatchSummary", "export_journal", "process_rows", "run_batch"]

#: One input row on its way through the batch: (position in the input, stable row id, the row).
RowItem = tuple[int, str, Any]


# --------------------------------------------------------------------------- per-row processing
def _error_record(seq: int, row_id: str, row: Any, reason: str) -> dict[str, Any]:
    if isinstance(row, BadRow):
        return {
            "row_id": row_id,
            "seq": seq,
            "status": "error",
            "reason": row.reason,
            "stats": {},
            "revisions": [],
            "row": None,
            "raw": row.raw,
        }
    return {
        "row_id": row_id,
        "seq": seq,
        "status": "error",
        "reason": f"row {row_id}: {reason}",
        "stats": {},
        "revisions": [],
        "row": row,
    }


def _result_record(
    seq: int, row_id: str, row: Any, adapter: RowAdapter, result: RevisionResult, save_trees: bool
) -> dict[str, Any]:
    rec = result.to_record(with_tree=save_trees)
    rec.pop("index", None)
    rec.pop("revised", None)  # the revised text lives in `row`, in the input's layout
    if result.status == "error":
        # The search numbers rows by position; the journal speaks in row ids.
        prefix = f"row {seq}: "
        reason = result.reason[len(prefix) :] if result.reason.startswith(prefix) else result.reason
        return {**_error_record(seq, row_id, row, reason), **({"tree": rec["tree"]} if "tree" in rec else {})}
    out = row
    if result.status == "revised":
        assert result.revised is not None
        try:
            out = adapter.to_row(row, result.revised)
        except Exception as e:  # noqa: BLE001 - one row that cannot be written back must not end the batch
            return _error_record(
                seq, row_id, row, f"writing the revised row back failed: {type(e).__name__}: {e}"
            )
    return {
        "row_id": row_id,
        "seq": seq,
        **{k: v for k, v in rec.items() if k != "tree"},
        "row": out,
        **({"tree": rec["tree"]} if "tree" in rec else {}),
    }


def process_rows(
    items: Iterable[RowItem],
    backend: Backend,
    config: RetroSearchConfig,
    *,
    save_trees: bool = False,
    max_active: int = 256,
) -> Iterator[dict[str, Any]]:
    """Revise rows and yield one journal record per row as soon as it is done (not in input order).

    The rollout seeds depend on each row's input position (`seq`), not on its place in this call, so a resumed
    run or a Ray shard revises a row exactly as an uninterrupted local run would.

    Args:
        items: `(seq, row_id, row)` triples; a row is a dict, a string, or a `BadRow`.
        backend: The revision model.
        config: Search settings.
        save_trees: Put each row's search tree in its record (large).
        max_active: Rows searched at once (the engine batches their requests into one backend call per wave).

    Yields:
        Records `{row_id, seq, status, reason, stats, revisions, row[, tree][, raw]}`; `row` is the revised
        row in its input layout when `status == "revised"`, else the input row as it came (`None` for a line
        that was not valid JSON, whose text is in `raw`).
    """
    rows: dict[int, tuple[str, Any, RowAdapter | None]] = {}

    def inputs() -> Iterator[tuple[int, Any]]:
        for seq, row_id, row in items:
            if isinstance(row, BadRow):
                rows[seq] = (row_id, row, None)
                yield seq, ValueError(row.reason)
                continue
            adapter = get_adapter(row)
            rows[seq] = (row_id, row, adapter)
            try:
                yield seq, adapter.to_trace_input(row)
            except Exception as e:  # noqa: BLE001 - reported as this row's error by revise_iter
                yield seq, e

    engine = Engine(backend, max_active=max_active)
    for result in revise_iter(inputs(), backend, config, engine=engine, indexed=True):
        row_id, row, adapter = rows.pop(result.index)
        if adapter is None:
            yield _error_record(result.index, row_id, row, row.reason)
        else:
            yield _result_record(result.index, row_id, row, adapter, result, save_trees)


# --------------------------------------------------------------------------- summary
@dataclass
class BatchSummary:
    """Totals over the journal after a run (rows of earlier runs included), and this run's own figures."""

    rows: int = 0
    revised: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: int = 0
    new_rows: int = 0
    resumed_rows: int = 0
    thinking_tokens_before: float = float("nan")
    thinking_tokens_after: float = float("nan")
    rollouts: int = 0
    tokens_spent: int = 0
    wall_s: float = 0.0
    journal: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]], **kw: Any) -> BatchSummary:
        s = cls(**kw)
        before, after = [], []
        for r in records:
            s.rows += 1
            status = r.get("status")
            if status == "revised":
                s.revised += 1
            elif status == "unchanged":
                s.unchanged += 1
            elif status == "skipped":
                s.skipped += 1
            else:
                s.errors += 1
            st = r.get("stats") or {}
            s.rollouts += int(st.get("rollouts") or 0)
            s.tokens_spent += int(st.get("tokens_spent") or 0)
            if status == "revised" and "thinking_tokens_before" in st:
                before.append(st["thinking_tokens_before"])
                after.append(st["thinking_tokens_after"])
        if before:
            s.thinking_tokens_before = sum(before) / len(before)
            s.thinking_tokens_after = sum(after) / len(after)
        return s

    def table(self) -> str:
        """A plain-text table for the terminal."""
        if self.revised:
            change = (
                (self.thinking_tokens_after / self.thinking_tokens_before - 1) * 100
                if self.thinking_tokens_before
                else 0.0
            )
            tokens = f"{self.thinking_tokens_before:.1f} -> {self.thinking_tokens_after:.1f} ({change:+.1f}%)"
        else:
            tokens = "-"
        lines = [
            ("rows", f"{self.rows} ({self.new_rows} this run, {self.resumed_rows} from an earlier run)"),
            ("revised", str(self.revised)),
            ("unchanged", str(self.unchanged)),
            ("skipped", str(self.skipped)),
            ("errors", str(self.errors)),
            ("thinking tokens, revised rows (mean)", tokens),
            ("rollouts", str(self.rollouts)),
            ("tokens spent", str(self.tokens_spent)),
            ("wall time (this run)", f"{self.wall_s:.1f} s"),
            ("journal", self.journal),
        ]
        width = max(len(k) for k, _ in lines)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in lines)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- the job
def _todo(rows: Iterable[tuple[str, Any]], done: set[str], on_skip: Any) -> Iterator[RowItem]:
    for seq, (row_id, row) in enumerate(rows):
        if row_id in done:
            on_skip()
            continue
        yield seq, row_id, row


def _shards(items: Iterable[RowItem], size: int) -> Iterator[list[RowItem]]:
    shard: list[RowItem] = []
    for it in items:
        shard.append(it)
        if len(shard) >= size:
            yield shard
            shard = []
    if shard:
        yield shard


def _ray_records(
    items: Iterable[RowItem],
    spec: BackendSpec,
    config: RetroSearchConfig,
    *,
    save_trees: bool,
    max_active: int,
    actors: int,
    shard_size: int,
    num_cpus: int | None,
) -> Iterator[list[dict[str, Any]]]:
    """Spread `items` in shards over `actors` Ray actors, each with its own backend; yield each shard's records.

    Shards are read from `items` only as actors free up, so a long input is never held in memory at once.
    """
    try:
        import ray
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("--ray needs the `ray` package (pip install 'retrosearch[ray]')") from e

    started = False
    if not ray.is_initialized():
        # Workers must import this very package even when it is not installed (a source checkout).
        root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
        ray.init(
            num_cpus=num_cpus or actors,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"PYTHONPATH": path}},
        )
        started = True
    try:

        @ray.remote(num_cpus=1)
        class _Reviser:
            def __init__(
                self, spec: BackendSpec, config: RetroSearchConfig, save_trees: bool, max_active: int
            ):
                self.backend = spec.build()
                self.config, self.save_trees, self.max_active = config, save_trees, max_active

            def run(self, shard: list[RowItem]) -> list[dict[str, Any]]:
                return list(
                    process_rows(
                        shard,
                        self.backend,
                        self.config,
                        save_trees=self.save_trees,
                        max_active=self.max_active,
                    )
                )

        pool = [_Reviser.remote(spec, config, save_trees, max_active) for _ in range(actors)]
        idle = list(pool)
        running: dict[Any, Any] = {}
        shards = _shards(items, shard_size)
        exhausted = False
        while True:
            while idle and not exhausted:
                shard = next(shards, None)
                if shard is None:
                    exhausted = True
                    break
                actor = idle.pop()
                running[actor.run.remote(shard)] = actor
            if not running:
                break
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                idle.append(running.pop(ref))
                yield ray.get(ref)
    finally:
        if started:
            ray.shutdown()


def run_batch(
    source: str | Path,
    journal: str | Path,
    backend: Backend | BackendSpec,
    config: RetroSearchConfig | None = None,
    *,
    split: str = "train",
    name: str | None = None,
    limit: int | None = None,
    save_trees: bool = False,
    max_active: int = 256,
    overwrite: bool = False,
    ray: bool = False,
    ray_actors: int = 2,
    ray_shard_size: int = 16,
    ray_num_cpus: int | None = None,
    progress: bool = True,
) -> BatchSummary:
    """Revise every row of `source` into the JSONL `journal`, resuming where an earlier run stopped.

    Every input row gets exactly one journal line, written (and fsynced) as soon as the row is done: revised,
    unchanged, skipped (e.g. a wrong original answer) or error (e.g. invalid JSON, a missing response field).
    Rows whose id is already in the journal are not redone; a torn last line (a run killed mid-write) is cut off
    and its row redone.

    Args:
        source: Input for `io.read_rows` (jsonl, parquet, folder, saved dataset or hub name).
        journal: Output JSONL file.
        backend: A backend, or a `BackendSpec` (needed with `ray`: every actor builds its own).
        config: Search settings.
        split: Split of a `datasets` input.
        name: Configuration of a hub dataset (e.g. `"metadata"`).
        limit: Only the first `limit` input rows.
        save_trees: Store each row's search tree in the journal.
        max_active: Rows searched at once per engine.
        overwrite: Discard an existing journal instead of resuming it.
        ray: Spread shards of rows over Ray actors.
        ray_actors: Number of actors.
        ray_shard_size: Rows per shard (the journal is written per finished shard).
        ray_num_cpus: CPUs of the local Ray instance started here (default: one per actor).
        progress: Show a tqdm progress bar on stderr.

    Returns:
        The summary over the whole journal.
    """
    from tqdm.auto import tqdm

    cfg = config or RetroSearchConfig()
    if ray and not isinstance(backend, BackendSpec):
        raise TypeError("run_batch(ray=True) needs a BackendSpec: each Ray actor builds its own backend")
    t0 = time.perf_counter()
    with Journal(journal, overwrite=overwrite) as jr:
        done = jr.done
        total = count_rows(source, split=split, name=name)
        if total is not None and limit is not None:
            total = min(total, limit)
        bar = tqdm(
            total=total, unit="row", desc="revise", disable=not progress, file=sys.stderr, dynamic_ncols=True
        )
        resumed = [0]

        def skip() -> None:
            resumed[0] += 1
            bar.update(1)

        items = _todo(read_rows(source, split=split, name=name, limit=limit), done, skip)
        new = 0
        try:
            if ray:
                assert isinstance(backend, BackendSpec)
                batches: Iterator[list[dict[str, Any]]] = _ray_records(
                    items,
                    backend,
                    cfg,
                    save_trees=save_trees,
                    max_active=max_active,
                    actors=ray_actors,
                    shard_size=ray_shard_size,
                    num_cpus=ray_num_cpus,
                )
            else:
                model = backend.build() if isinstance(backend, BackendSpec) else backend
                batches = (
                    [r] for r in process_rows(items, model, cfg, save_trees=save_trees, max_active=max_active)
                )
            for batch in batches:
                for rec in batch:
                    jr.write(rec)
                    new += 1
                    bar.update(1)
                    bar.set_postfix_str(rec["status"], refresh=False)
        finally:
            bar.close()
        return BatchSummary.from_records(
            jr.records.values(),
            new_rows=new,
            resumed_rows=resumed[0],
            wall_s=time.perf_counter() - t0,
            journal=str(jr.path),
        )


# --------------------------------------------------------------------------- export
def export_journal(
    journal: str | Path, out_parquet: str | Path | None = None, *, include_errors: bool = True
) -> Any:
    """The journal as a `datasets.Dataset` in the input layout, in input order; saved as parquet when asked.

    Revised rows carry the revised trace; unchanged and skipped rows are as they came. Error rows are kept as
    they came unless `include_errors` is False; lines that were not valid JSON have no row and are left out.
    Columns are the union of the rows' keys (a row lacking one gets `None`).

    Args:
        journal: A journal written by `run_batch` / `retrosearch revise`.
        out_parquet: Where to write the parquet file (its folder is created).
        include_errors: Keep rows whose status is `error`.

    Returns:
        The `datasets.Dataset`.
    """
    import datasets

    records = sorted(read_journal(journal, trees=False), key=lambda r: (r.get("seq", 0), r["row_id"]))
    rows = []
    for r in records:
        if r.get("row") is None or (r.get("status") == "error" and not include_errors):
            continue
        row = r["row"]
        rows.append(row if isinstance(row, dict) else {"response": row})
    if not rows:
        raise ValueError(f"journal {journal}: no rows to export")
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    rows = [{k: row.get(k) for k in keys} for row in rows]
    ds = datasets.Dataset.from_list(rows)
    if out_parquet is not None:
        out = Path(out_parquet)
        out.parent.mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(out))
    return ds
