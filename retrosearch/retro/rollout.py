"""The rollout sub-program: continuations from a cut, the switch words (or the query tag) banned in their first step."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from retrosearch.retro.config import RetroSearchConfig
from retrosearch.rl.protocols import TagProtocol
from retrosearch.text import split_think
from retrosearch.tree import Node
from retrosearch.types import Call, Generate, ToolError

#: How often a first step that stopped on a bare blank line is asked again (a model may write several).
BLANK_RETRIES = 3


@dataclass
class Rollout:
    """One continuation as generated: its nodes (first step, retries, continuation, documents), text, model
    tokens (documents not counted), finish, and the retrievals it made."""

    nodes: list[Node]
    text: str
    tokens: int
    finish: str
    retrievals: int = 0
    queries: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Search:
    """How a rollout of a search trace may search: its protocol, how many retrievals it may still make (one
    more ends it with finish `"max_retrievals"`: it could not be kept), and the documents per query."""

    protocol: TagProtocol
    allowed: int
    top_k: int


def split_output(text: str, close: str) -> tuple[str, str] | None:
    """(thinking continuation, solution) of a rollout, or None when it never closed the thinking."""
    thinking, solution = split_think(text, close, open="")
    return None if solution is None else (thinking.rstrip(), solution.strip())


def rollouts(
    start: Node,
    cfg: RetroSearchConfig,
    budget: int,
    seed: int,
    boundary: int,
    *,
    ban: tuple[str, ...] | None = None,
    search: Search | None = None,
) -> Iterator[Any]:
    """Sub-program: `cfg.n` continuations from `start`, `ban` (the switch words by default) banned in the first step.

    Every rollout gets at most `cap = min(cfg.max_tokens, budget)` model tokens in all. The first step is
    generated with the ban and a blank-line stop, under `min(cfg.first_step_max_tokens, cap)`; since the cut is
    before the separator, a sample that stopped on the bare separator is asked again, still banned, for the
    step's text (up to `BLANK_RETRIES` times, while tokens are left). The rest runs free under what is left of
    the cap; a rollout with nothing left is not continued (it ends with finish `"length"`).

    With `search`, every segment (the first step included) also stops at the protocol's query close tags and
    the continuation at its answer close tag; a query is sent to the engine's tool as a `Call`, its documents
    come back as an environment span (not counted in the cap), and the rollout goes on. A malformed query ends
    it (`"invalid_query"`), as does one retrieval more than `search.allowed` (`"max_retrievals"`).

    Returns:
        `list[Rollout]`, in sampling order.
    """
    ban = cfg.first_step_ban if ban is None else ban
    protocol = search.protocol if search is not None else None
    closes = protocol.stops(search=True, at_answer=False) if protocol is not None else ()
    sep = ("\n\n", *closes)
    cap = min(cfg.max_tokens, budget)
    first_cap = min(cfg.first_step_max_tokens, cap)
    common = dict(temperature=cfg.temperature, top_p=cfg.top_p)
    first_meta = {"boundary": boundary, "phase": "first_step"}
    firsts: list[Node] = yield Generate(
        start,
        meta=first_meta,
        n=cfg.n,
        max_tokens=first_cap,
        stop=sep,
        banned_words=ban,
        seed=seed,
        **common,
    )
    chains = [[f] for f in firsts]

    def used(k: int) -> int:
        return sum(n.token_count for n in chains[k] if n.origin != "environment")

    for attempt in range(BLANK_RETRIES):
        again = [
            k
            for k, c in enumerate(chains)
            if c[-1].finish_reason == "stop" and not c[-1].text.strip() and used(k) < cap
        ]
        if not again:
            break
        more: list[list[Node]] = yield [
            Generate(
                chains[k][-1],
                meta=first_meta,
                n=1,
                max_tokens=min(first_cap, cap - used(k)),
                stop=sep,
                banned_words=ban,
                seed=seed + 1 + k + attempt * cfg.n,
                **common,
            )
            for k in again
        ]
        for k, (node,) in zip(again, more):
            chains[k].append(node)
    # Still blank after the retries: a degenerate sample, not continued (it could only switch or stall).
    todo = [
        k
        for k, chain in enumerate(chains)
        if chain[-1].finish_reason == "stop" and chain[-1].text.strip() and used(k) < cap
    ]
    ends: dict[int, str] = {}
    searched: list[list[str]] = [[] for _ in chains]
    first, turn = True, 0
    while todo:
        wants, gens = [], []
        for k in todo:
            last = chains[k][-1]
            parsed = protocol.ending_query(last.text) if protocol is not None else None
            if parsed is None:
                if first:  # the first step is done: the continuation follows
                    gens.append(k)
            elif parsed.query is None:
                ends[k] = "invalid_query"
            elif len(searched[k]) >= search.allowed:  # type: ignore[union-attr]
                ends[k] = "max_retrievals"
            else:
                wants.append((k, parsed))
        if wants:
            try:
                found = yield [Call(pq.tag.tool, pq.query) for _, pq in wants]
            except ToolError:  # no retriever, or it failed: these rollouts cannot go on, the others can
                ends.update({k: "error" for k, _ in wants})
                found, wants = [], []
            for (k, pq), docs in zip(wants, found):
                text = protocol.format_documents(list(docs)[: search.top_k])  # type: ignore[union-attr]
                meta = {"boundary": boundary, "tool": pq.tag.tool, "query": pq.query}
                chains[k].append(start.tree.add_environment(chains[k][-1], text, meta=meta))  # type: ignore[union-attr]
                searched[k].append(pq.query)  # type: ignore[arg-type]
                gens.append(k)
        gens = sorted(k for k in gens if used(k) < cap)
        if not gens:
            break
        cont_meta = {"boundary": boundary, "phase": "continuation"}
        if turn:
            cont_meta["turn"] = turn
        rest: list[list[Node]] = yield [
            Generate(
                chains[k][-1],
                meta=cont_meta,
                n=1,
                max_tokens=cap - used(k),
                stop=protocol.stops(search=True, at_answer=True) if protocol is not None else (),
                seed=seed + 1000 * (turn + 1) + k,
                **common,
            )
            for k in gens
        ]
        for k, (node,) in zip(gens, rest):
            chains[k].append(node)
        todo, first, turn = gens, False, turn + 1
    out = []
    for k, chain in enumerate(chains):
        finish = ends.get(k) or chain[-1].finish_reason or "eos"
        tokens = used(k)
        if (tokens >= cap and finish == "stop") or chain[-1].origin == "environment":
            finish = "length"  # the cap ran out between phases
        out.append(
            Rollout(chain, "".join(n.text for n in chain), tokens, finish, len(searched[k]), searched[k])
        )
    return out
