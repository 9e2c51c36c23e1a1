"""The public entry points of Retro-Search: `revise` (results in input order) and `revise_iter` (as they finish)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from retrosearch.backends.base import Backend
from retrosearch.engine import Engine, ProgramError
from retrosearch.retro.config import RetroSearchConfig
from retrosearch.retro.program import revise_program
from retrosearch.retro.results import RevisionResult
from retrosearch.retro.search_traces import expand_groups, is_search_row, parse_search_trace
from retrosearch.rl.protocols import get_protocol
from retrosearch.rl.rollout import retrieval_tool
from retrosearch.trace import Trace
from retrosearch.verify import Verifier, get_verifier

TraceLike = Any  # str | dict | Trace | rl SearchRollout / SearchGroup


def _as_items(traces: Any) -> tuple[Iterable[Any], bool]:
    if isinstance(traces, (str, dict, Trace)) or is_search_row(traces) or hasattr(traces, "rollouts"):
        return [traces], not hasattr(traces, "rollouts")
    return traces, False


def _parse(item: Any, cfg: RetroSearchConfig) -> Trace:
    """One input as a trace: a search rollout needs `cfg.protocol`, which also reads strings as search traces."""
    if isinstance(item, Trace):
        return item
    if cfg.protocol is not None and (isinstance(item, str) or is_search_row(item)):
        return parse_search_trace(item, protocol=cfg.protocol, keywords=cfg.keywords)
    if is_search_row(item):
        raise ValueError(
            "a search rollout (gen_text_store): set RetroSearchConfig.protocol (e.g. 'r1-searcher')"
        )
    return Trace.parse(item, keywords=cfg.keywords)


def _engine(backend: Backend, cfg: RetroSearchConfig, engine: Engine | None, retriever: Any) -> Engine:
    """The engine to run on, with the retriever as the tool of the protocol's queries (the rollouts search)."""
    eng = engine or Engine(backend)
    if retriever is not None:
        if cfg.protocol is None:
            raise ValueError("a retriever serves search traces: set RetroSearchConfig.protocol too")
        for q in get_protocol(cfg.protocol).queries:
            if q.tool == "retrieve":
                eng.tools.setdefault(q.tool, retrieval_tool(retriever, cfg.top_k))
    return eng


def revise_iter(
    traces: Iterable[Any],
    backend: Backend,
    config: RetroSearchConfig | None = None,
    *,
    verifier: Verifier | str | None = None,
    engine: Engine | None = None,
    indexed: bool = False,
    retriever: Any = None,
) -> Iterator[RevisionResult]:
    """Revise `traces`, yielding each `RevisionResult` as soon as it is done (not in input order).

    Args:
        traces: Trace-likes (see `revise`); with `indexed=True`, `(index, trace_like)` pairs instead, where the
            index numbers the result and seeds its rollouts (so a resumed or sharded job revises a row exactly
            as an uninterrupted one), and a trace-like may be an exception raised upstream (reported as the
            row's error).
        backend, config, verifier, engine, retriever: As in `revise`.

    Inputs that cannot be parsed give an `"error"` result naming the row and field; the batch goes on.
    """
    cfg = config or RetroSearchConfig()
    ver = get_verifier(verifier if verifier is not None else cfg.verifier)
    eng = _engine(backend, cfg, engine, retriever)
    index_of: dict[int, int] = {}
    parsed: dict[int, Trace] = {}

    def programs() -> Iterator[Any]:
        for k, item in enumerate(traces if indexed else expand_groups(traces, cfg.keywords)):
            i, item = item if indexed else (k, item)
            index_of[k] = i
            try:
                if isinstance(item, BaseException):
                    raise item
                trace = _parse(item, cfg)
            except Exception as e:  # noqa: BLE001 - TraceFormatError names the field; anything else is one row
                msg = str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}"
                yield _returning(RevisionResult(i, "error", f"row {i}: {msg}"))
                continue
            parsed[i] = trace
            yield revise_program(trace, backend, cfg, ver, index=i)

    for k, value in eng.run_iter(programs()):
        i = index_of.pop(k)
        if isinstance(value, ProgramError):
            t = parsed.get(i)
            value = RevisionResult(i, "error", f"row {i}: {type(value.error).__name__}: {value.error}", t, t)
        parsed.pop(i, None)
        yield value


def _returning(value: Any) -> Iterator[Any]:
    """A program that asks for nothing and returns `value` (bad input still gets its slot in the output)."""
    return value
    yield  # pragma: no cover - makes this a generator


def revise(
    traces: TraceLike | Iterable[TraceLike],
    backend: Backend,
    config: RetroSearchConfig | None = None,
    *,
    verifier: Verifier | str | None = None,
    engine: Engine | None = None,
    retriever: Any = None,
) -> RevisionResult | list[RevisionResult]:
    """Revise reasoning traces with Retro-Search.

    Args:
        traces: One trace (a string, an OpenThoughts/flat row `dict`, or a `Trace`) or many (a list, any
            iterable, or a `datasets.Dataset`). With `config.protocol`, search rollouts too: R1-Searcher's
            published rows (`question`, `answer`, `gen_text_store`; also what `retrosearch rl evaluate`
            writes), rl `SearchGroup`s (each counts as its rollouts, in order; the gold answer from the tree's
            `meta`), or completion strings (see `retro.search_traces.parse_search_trace`).
        backend: The revision model (`ScriptedBackend`, `TransformersBackend`, `VLLMBackend`, `OpenAIBackend`).
        config: Search settings (`RetroSearchConfig()` by default: only traces with a gold answer are searched).
        verifier: Answer grader (overrides `config.verifier`): a name or a callable.
        engine: An `Engine` to reuse (its stats accumulate); a new one by default.
        retriever: For search traces: serves the queries rollouts write (`retrieve(queries, k)`, e.g.
            `retrosearch.rl.retrievers.load_retriever("bm25", ...)`), as the engine's tool; or give an `engine`
            whose `tools` has the protocol's tool.

    Returns:
        One `RevisionResult` for one input, else a list in input order. A revised trace is always correct
        and never longer (in thinking tokens of the revision model) than the original.
    """
    items, single = _as_items(traces)
    results = sorted(
        revise_iter(items, backend, config, verifier=verifier, engine=engine, retriever=retriever),
        key=lambda r: r.index,
    )
    return results[0] if single else results
