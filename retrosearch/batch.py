"""Resumable batch revision: rows in, one JSONL journal line per row out, as rows finish; optional Ray shards."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrosearch.backends.base import Backend
from retrosearch.engine import Engine
from retrosearch.io import BadRow, RowAdapter, count_rows, get_adapter, read_rows
from retrosearch.search import RetroSearchConfig, RevisionResult, revise_iter

__all__ = [
    "BackendSpec",
    "BatchSummary",
    "Journal",
    "export_journal",
    "process_rows",
    "read_journal",
    "run_batch",
]

#: Backend kinds the command line accepts.
BACKEND_KINDS = ("scripted", "transformers", "vllm", "openai")

#: One input row on its way through the batch: (position in the input, stable row id, the row).
RowItem = tuple[int, str, Any]


# --------------------------------------------------------------------------- backends from settings
@dataclass
class BackendSpec:
    """Everything needed to build a backend, picklable so that each Ray actor can build its own.

    Attributes:
        kind: `scripted`, `transformers`, `vllm` or `openai`.
        model: The model that revises: a path or hub name (transformers, vllm), the server's model name (openai),
            or for `scripted` a JSON file mapping prompt suffixes to continuation(s) (see `load_script`).
        tokenizer: Tokenizer path/name when it differs from the model (all but scripted).
        base_url: Server address (openai).
        api_key: Bearer token (openai); `None` reads `$OPENAI_API_KEY` when set.
        device: Device for transformers (`auto`, `cpu`, `cuda`, ...).
        dtype: Weights dtype (transformers, vllm).
        trust_remote_code: Allow code from the model folder to run (off unless asked for).
        max_model_len: Context length for vllm.
        scripted_latency: Fake seconds per backend call (scripted).
        batch_size: Sequences per forward batch (transformers).
    """

    kind: str
    model: str
    tokenizer: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False
    max_model_len: int | None = None
    scripted_latency: float = 0.0
    batch_size: int = 16

    @staticmethod
    def add_arguments(group: Any, *, model_help: str, model_required: bool = False) -> None:
        """The command-line flags of a backend (`--backend`, `--model`, ...), shared by every subcommand."""
        group.add_argument(
            "--backend", required=True, choices=BACKEND_KINDS, help="Where generation happens."
        )
        group.add_argument("--model", default=None, required=model_required, help=model_help)
        group.add_argument(
            "--tokenizer", default=None, help="Tokenizer path/name when it differs from the model."
        )
        group.add_argument(
            "--base-url", default=None, help="OpenAI-compatible server (openai), e.g. http://127.0.0.1:8000."
        )
        group.add_argument(
            "--api-key", default=None, help="Bearer token for openai (default: $OPENAI_API_KEY if set)."
        )
        group.add_argument("--device", default="auto", help="Device for transformers (auto, cpu, cuda, ...).")
        group.add_argument("--dtype", default="auto", help="Weights dtype (transformers, vllm).")
        group.add_argument("--max-model-len", type=int, default=None, help="Context length (vllm).")
        group.add_argument(
            "--batch-size", type=int, default=16, help="Sequences per forward batch (transformers)."
        )
        group.add_argument(
            "--trust-remote-code", action="store_true", help="Allow code shipped with the model to run."
        )

    @classmethod
    def from_args(cls, args: Any, *, model: str | None = None) -> BackendSpec:
        """The spec of parsed `add_arguments` flags (`model` overrides `--model`, e.g. a revision model)."""
        return cls(
            kind=args.backend,
            model=model or args.model,
            tokenizer=args.tokenizer,
            base_url=args.base_url,
            api_key=args.api_key,
            device=args.device,
            dtype=args.dtype,
            trust_remote_code=args.trust_remote_code,
            max_model_len=args.max_model_len,
            scripted_latency=getattr(args, "scripted_latency", 0.0),
            batch_size=args.batch_size,
        )

    def build(self) -> Backend:
        """Load the backend (heavy libraries are imported here, not before).

        For transformers and vllm, `model` may also name a shipped toy model (`toy-base`, `toy-small`).
        """
        from retrosearch.backends import ScriptedBackend, load_backend

        if self.kind in ("transformers", "vllm"):
            from retrosearch.distill import resolve_model

            self = dataclasses.replace(self, model=resolve_model(self.model))
        if self.kind == "scripted":
            return ScriptedBackend(load_script(self.model), latency_s=self.scripted_latency)
        if self.kind == "transformers":
            return load_backend(
                "transformers",
                model=self.model,
                tokenizer=self.tokenizer,
                device=self.device,
                dtype=self.dtype,
                trust_remote_code=self.trust_remote_code,
                batch_size=self.batch_size,
            )
        if self.kind == "vllm":
            return load_backend(
                "vllm",
                model=self.model,
                tokenizer=self.tokenizer,
                dtype=self.dtype,
                max_model_len=self.max_model_len,
                trust_remote_code=self.trust_remote_code,
            )
        if self.kind == "openai":
            key = self.api_key if self.api_key is not None else os.environ.get("OPENAI_API_KEY")
            return load_backend(
                "openai", base_url=self.base_url, model=self.model, api_key=key, tokenizer=self.tokenizer
            )
        raise ValueError(f"backend: unknown kind {self.kind!r}")


def load_script(path: str | Path) -> dict[str, str | list[str]]:
    """Read a scripted model: a JSON object mapping a prompt suffix to a continuation or a list of them.

    The longest suffix that ends the prompt wins; a list gives the candidates in order of preference (those
    containing a banned word are dropped, and one of the rest is drawn with the request's seed). A prompt is
    the question, a newline, `<think>\\n`, then the thinking so far: rollouts start at the end of a thought's
    last step (before the blank line), so a key such as `"6 * 7 = 42."` answers the first step there and
    `"6 * 7 = 42.\\n</think>\\n\\n"` the continuation after the thinking is closed.

    Raises:
        ValueError: the file is not a JSON object of strings / lists of strings (the message names the key).
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ValueError(f"--model: the scripted model file {p} does not exist") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"--model: {p} is not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise ValueError(
            f"--model: {p} must hold a JSON object (prompt suffix -> continuation), got {type(data).__name__}"
        )
    for k, v in data.items():
        if not (isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))):
            raise ValueError(f"--model: {p}: key {k!r} must map to a string or a list of strings")
    return data


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


# --------------------------------------------------------------------------- the journal
def _scan_journal(
    path: Path, keep: Callable[[dict[str, Any]], dict[str, Any]]
) -> tuple[list[dict[str, Any]], int]:
    """(`keep(record)` for each record, byte length of the good part), reading line by line.

    A torn or unreadable *last* line (a run killed mid-write) is left out; an unreadable line before the last
    is an error naming it.
    """
    records: list[dict[str, Any]] = []
    good = 0
    bad: tuple[int, str] | None = None
    with path.open("rb") as f:
        for lineno, line in enumerate(f, start=1):
            if bad is not None:
                raise ValueError(
                    f"journal {path}, line {bad[0]}: unreadable record ({bad[1]}); fix or remove the line"
                )
            try:
                rec = json.loads(line.decode("utf-8")) if line.strip() else None
                if rec is not None and not (isinstance(rec, dict) and "row_id" in rec):
                    raise ValueError("not a journal record (no 'row_id')")
                if rec is not None and not line.endswith(b"\n"):
                    raise ValueError("no newline at the end: the write was cut off")
            except ValueError as e:
                bad = (lineno, str(e))
                continue
            if rec is not None:
                records.append(keep(rec))
            good += len(line)
    return records, good


def _slim(rec: dict[str, Any]) -> dict[str, Any]:
    """What the summary needs of a record (the rows and trees of a long journal stay on disk)."""
    return {k: rec[k] for k in ("row_id", "seq", "status", "stats") if k in rec}


def read_journal(path: str | Path, *, trees: bool = True) -> list[dict[str, Any]]:
    """The records of a journal, first one per row id, a torn last line left out (the file is not changed).

    Args:
        path: The journal.
        trees: Keep the search trees (`--save-trees`); `False` drops them to save memory.
    """
    keep = (lambda r: r) if trees else (lambda r: {k: v for k, v in r.items() if k != "tree"})
    records, _ = _scan_journal(Path(path), keep)
    seen: set[str] = set()
    out = []
    for r in records:
        if r["row_id"] not in seen:
            seen.add(r["row_id"])
            out.append(r)
    return out


class Journal:
    """An append-only JSONL file of row records, durable line by line (write, flush, fsync).

    Opening it reads what a previous run wrote and cuts off a torn last line, so `done` holds exactly the rows
    that need no redoing.

    Args:
        path: The journal file (created with its folder when absent).
        overwrite: Start afresh instead of resuming.
    """

    def __init__(self, path: str | Path, *, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: dict[str, dict[str, Any]] = {}
        self.torn_bytes = 0
        if self.path.exists() and not overwrite:
            records, good = _scan_journal(self.path, _slim)
            size = self.path.stat().st_size
            if good < size:
                self.torn_bytes = size - good
                with self.path.open("r+b") as f:
                    f.truncate(good)
                    f.flush()
                    os.fsync(f.fileno())
            for r in records:
                self.records.setdefault(r["row_id"], r)
        self._f = self.path.open("w" if overwrite else "a", encoding="utf-8")

    @property
    def done(self) -> set[str]:
        """Row ids already in the journal (`records` maps each to its status and stats)."""
        return set(self.records)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record durably (one `write` call per line, so a kill can only tear the last line)."""
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        self._f.write(line)
        self._f.flush()
        os.fsync(self._f.fileno())
        self.records.setdefault(record["row_id"], _slim(record))

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


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
        root = str(Path(__file__).resolve().parents[1])
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
