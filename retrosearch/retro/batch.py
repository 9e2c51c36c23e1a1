"""Resumable batch revision: rows in, one journal line per row out as rows finish; optional Ray shards."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from retrosearch.backends.base import Backend
from retrosearch.backends.spec import BackendSpec
from retrosearch.config import to_dict
from retrosearch.data.export import export_journal
from retrosearch.data.io import (
    BadRow,
    RowAdapter,
    check_source,
    count_rows,
    get_adapter,
    input_identity,
    read_rows,
    row_key,
)
from retrosearch.data.journal import Journal
from retrosearch.engine import Engine
from retrosearch.retro import RetroSearchConfig, RevisionResult, revise_iter
from retrosearch.retro.batch_summary import BatchSummary

__all__ = ["BatchSummary", "batch_fingerprint", "export_journal", "process_rows", "run_batch"]

#: One input row on its way through the batch: (position in the input, where it is (`file:line`), its content
#: key, the row). The content key (`row_key`, with `#k` for the k-th repeat of the same row) identifies it.
RowItem = tuple[int, str, str, Any]


# --------------------------------------------------------------------------- per-row processing
def _error_record(seq: int, row_id: str, key: str, row: Any, reason: str) -> dict[str, Any]:
    if isinstance(row, BadRow):
        return {
            "row_id": row_id,
            "row_key": key,
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
        "row_key": key,
        "seq": seq,
        "status": "error",
        "reason": f"row {row_id}: {reason}",
        "stats": {},
        "revisions": [],
        "row": row,
    }


def _result_record(
    seq: int, row_id: str, key: str, row: Any, adapter: RowAdapter, result: RevisionResult, save_trees: bool
) -> dict[str, Any]:
    rec = result.to_record(with_tree=save_trees)
    rec.pop("index", None)
    rec.pop("revised", None)  # the revised text lives in `row`, in the input's layout
    if result.status == "error":
        # The search numbers rows by position; the journal speaks in row ids.
        prefix = f"row {seq}: "
        reason = result.reason[len(prefix) :] if result.reason.startswith(prefix) else result.reason
        tree = {"tree": rec["tree"]} if "tree" in rec else {}
        return {**_error_record(seq, row_id, key, row, reason), **tree}
    out = row
    if result.status == "revised":
        assert result.revised is not None
        try:
            out = adapter.to_row(row, result.revised)
        except Exception as e:  # noqa: BLE001 - one row that cannot be written back must not end the batch
            return _error_record(
                seq, row_id, key, row, f"writing the revised row back failed: {type(e).__name__}: {e}"
            )
    return {
        "row_id": row_id,
        "row_key": key,
        "seq": seq,
        **{k: v for k, v in rec.items() if k != "tree"},
        "row": out,
        **({"tree": rec["tree"]} if "tree" in rec else {}),
    }


def process_rows(
    items: Iterable[RowItem | tuple[int, str, Any]],
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
        items: `(seq, row_id, row_key, row)` (or `(seq, row_id, row)`: the key is then `row_key(row)`); a row
            is a dict, a string, or a `BadRow`.
        backend: The revision model.
        config: Search settings.
        save_trees: Put each row's search tree in its record (large).
        max_active: Rows searched at once (the engine batches their requests into one backend call per wave).

    Yields:
        Records `{row_id, row_key, seq, status, reason, stats, revisions, row[, tree][, raw]}`; `row` is the
        revised row in its input layout when `status == "revised"`, else the input row as it came (`None` for
        a line that was not valid JSON, whose text is in `raw`).
    """
    rows: dict[int, tuple[str, str, Any, RowAdapter | None]] = {}

    def inputs() -> Iterator[tuple[int, Any]]:
        for item in items:
            seq, row_id, key, row = item if len(item) == 4 else (item[0], item[1], row_key(item[2]), item[2])
            if isinstance(row, BadRow):
                rows[seq] = (row_id, key, row, None)
                yield seq, ValueError(row.reason)
                continue
            adapter = get_adapter(row)
            rows[seq] = (row_id, key, row, adapter)
            try:
                yield seq, adapter.to_trace_input(row)
            except Exception as e:  # noqa: BLE001 - reported as this row's error by revise_iter
                yield seq, e

    engine = Engine(backend, max_active=max_active)
    for result in revise_iter(inputs(), backend, config, engine=engine, indexed=True):
        row_id, key, row, adapter = rows.pop(result.index)
        if adapter is None:
            yield _error_record(result.index, row_id, key, row, row.reason)
        else:
            yield _result_record(result.index, row_id, key, row, adapter, result, save_trees)


# --------------------------------------------------------------------------- the job
def _todo(rows: Iterable[tuple[str, Any]], done: set[str], on_skip: Callable[[], None]) -> Iterator[RowItem]:
    """The rows not yet in the journal, each with its content key (`#k` marks the k-th repeat of a row)."""
    seen: dict[str, int] = {}
    for seq, (row_id, row) in enumerate(rows):
        base = row_key(row)
        seen[base] = seen.get(base, 0) + 1
        key = base if seen[base] == 1 else f"{base}#{seen[base]}"
        if key in done:
            on_skip()
            continue
        yield seq, row_id, key, row


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


def batch_fingerprint(
    source: str | Path,
    backend: Backend | BackendSpec,
    config: RetroSearchConfig,
    *,
    split: str = "train",
    name: str | None = None,
    trace_model: str | None = None,
) -> dict[str, Any]:
    """What a journal's rows depend on: the search settings, the models and the input (not `limit`, speed
    settings or where the output goes). A resumed run must have the same."""
    if isinstance(backend, BackendSpec):
        reviser = backend.identity()
    else:
        reviser = {"backend": str(getattr(backend, "name", type(backend).__name__))}
    return {
        "config": to_dict(config),
        "models": {"revision": reviser, "traces": trace_model},
        "input": input_identity(source, split=split, name=name),
    }


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
    trace_model: str | None = None,
    ray: bool = False,
    ray_actors: int = 2,
    ray_shard_size: int = 16,
    ray_num_cpus: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> BatchSummary:
    """Revise every row of `source` into the JSONL `journal`, resuming where an earlier run stopped.

    The journal starts with a header holding the run's fingerprint (`batch_fingerprint`); every input row then
    gets exactly one line, written (and fsynced) as soon as the row is done: revised, unchanged, skipped (e.g.
    a wrong original answer) or error (e.g. invalid JSON, a missing response field). Rows are told apart by
    their content (`row_key`), so a rerun skips the rows already there even when the input gained or lost
    lines. A rerun with other settings, models or input is refused (`JournalError`, a `ValueError`), as is an
    output file that is not a journal; a last line cut off mid-write is reported through `log`, cut off and its
    row redone. Nothing is written before the backend is ready, so a failed start leaves no file behind.

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
        overwrite: Start the journal anew instead of resuming it (a file that is not a journal is never
            overwritten).
        trace_model: The model that wrote the input traces, when not the reviser (weak-to-strong); recorded in
            the fingerprint.
        ray: Spread shards of rows over Ray actors.
        ray_actors: Number of actors.
        ray_shard_size: Rows per shard (the journal is written per finished shard).
        ray_num_cpus: CPUs of the local Ray instance started here (default: one per actor).
        progress: Show a tqdm progress bar on stderr.
        log: Where notes about the journal go (default: stderr).

    Returns:
        The summary over the whole journal.
    """
    from tqdm.auto import tqdm

    say = log or (lambda msg: print(f"retrosearch: {msg}", file=sys.stderr, flush=True))
    cfg = config or RetroSearchConfig()
    if ray and not isinstance(backend, BackendSpec):
        raise TypeError("run_batch(ray=True) needs a BackendSpec: each Ray actor builds its own backend")
    t0 = time.perf_counter()
    check_source(source)
    fingerprint = batch_fingerprint(source, backend, cfg, split=split, name=name, trace_model=trace_model)
    with Journal(journal, fingerprint, overwrite=overwrite) as jr:
        for note in jr.notes:
            say(note)
        if ray:
            assert isinstance(backend, BackendSpec)
            backend.validate()  # here, before the actors start (each builds its own backend)
        model = backend.build() if isinstance(backend, BackendSpec) and not ray else backend
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
        jr.finish()
        return BatchSummary.from_records(
            jr.records.values(),
            new_rows=new,
            resumed_rows=resumed[0],
            wall_s=time.perf_counter() - t0,
            journal=str(jr.path),
            models=fingerprint["models"],
            notes=list(jr.notes),
        )
