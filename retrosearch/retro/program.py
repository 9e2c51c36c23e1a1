"""The per-trace Retro-Search program: explore each cut (a thought switch, or a query of a search trace), judge
the rollouts, keep the best branch."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

from retrosearch.backends.base import Backend
from retrosearch.config import derive_seed
from retrosearch.retro.accept import Size, choose, grade
from retrosearch.retro.config import RetroSearchConfig
from retrosearch.retro.results import Exploration, Kind, Revision, RevisionResult, Status
from retrosearch.retro.rollout import Rollout, Search, rollouts
from retrosearch.retro.search_traces import Cut, cuts, environment_spans, find_retrievals, model_text
from retrosearch.rl.protocols import TagProtocol, get_protocol
from retrosearch.text import count_steps, last_boxed
from retrosearch.trace import Trace
from retrosearch.tree import Node, SearchTree
from retrosearch.verify import Verifier

__all__ = ["choose", "revise_program"]


class _MainPath:
    """The current trace as a chain of tree nodes, so a rollout can branch at any thinking offset."""

    def __init__(self, root: Node, nodes: list[Node], on_split: Callable[[Node, Node], None]):
        self.root = root
        self.nodes = nodes  # after the root, in order
        self.on_split = on_split

    def node_ending_at(self, offset: int) -> Node:
        """The chain node whose path (after the root) ends exactly at thinking offset `offset`, splitting one."""
        tree = self.root.tree
        assert tree is not None
        pos = 0
        for k, node in enumerate(self.nodes):
            end = pos + len(node.text)
            if end == offset:
                return node
            if pos < offset < end:
                # Requests from a trace's path go as text (its spans' ids are for counting): re-tokenize the halves.
                tail = tree.split(node, offset - pos, retokenize=True)
                self.nodes.insert(k + 1, tail)
                self.on_split(node, tail)
                return node
            pos = end
        raise ValueError(f"thinking offset {offset} is past the end of the main path ({pos})")

    def after(self, node: Node) -> list[Node]:
        """The chain nodes below `node` (the remainder when `node` is a cut point)."""
        return self.nodes[self.nodes.index(node) + 1 :]

    def up_to(self, node: Node) -> list[Node]:
        """The chain nodes from just below the root down to `node`, included."""
        return self.nodes[: self.nodes.index(node) + 1]


def revise_program(
    trace: Trace, backend: Backend, cfg: RetroSearchConfig, verifier: Verifier, *, index: int = 0
) -> Iterator[Any]:
    """The per-trace Retro-Search program (a generator for `Engine`); returns a `RevisionResult`.

    For each cut, from the first: a thought switch (the end of a thought, before the blank-line separator) or,
    with `cfg.protocol`, a query (just before its opening tag). Roll out `n` continuations from the cut with
    the switch words (at a switch) or the query tag (at a query) banned in the first new step; grade each;
    value = `gamma ** thinking_steps * reward`. The rollout `choose` keeps (fewer retrievals or a better value,
    never longer, never more retrievals) replaces the trace's remainder and the search goes on at the next cut
    of the revised trace (at a switch: the end of the now longer thought); when none is kept it moves on to the
    next cut. Rollouts of a search trace that query again are served by the engine's retrieval tool, and their
    documents are environment spans of the tree. Every exploration is recorded (`RevisionResult.explorations`,
    also in the tree's `meta`).
    """
    fmt = cfg.prompt
    protocol = get_protocol(cfg.protocol) if cfg.protocol is not None else None
    close = protocol.think_close if protocol is not None else fmt.think_close
    gold, reference = trace.gold, "gold"
    if gold is None:
        if cfg.reference == "gold":
            return RevisionResult(
                index,
                "skipped",
                "no gold answer (reference='gold'; 'self' grades against the trace's own)",
                trace,
                trace,
            )
        gold, reference = trace.answer, "self"
    if gold is None:
        return RevisionResult(
            index, "skipped", "no gold answer and the trace has no \\boxed{} answer", trace, trace
        )
    if not trace.complete:
        return RevisionResult(
            index, "skipped", "the trace is truncated (no end of thinking or no answer)", trace, trace
        )
    verdict = verifier(trace.solution if trace.solution is not None else trace.render(), gold)
    if not verdict.correct:
        return RevisionResult(
            index,
            "skipped",
            f"the original answer is not correct: {verdict.reason}",
            trace,
            trace,
            reference=reference,
        )

    meta = {"index": index, "gold": gold, "format": trace.format, "reference": reference}
    if protocol is not None:
        meta["protocol"] = protocol.name
    tree = SearchTree(_prompt(trace, backend, cfg, protocol), tokenizer=backend, meta=meta)
    owners: dict[int, list[int]] = {}  # node id -> the node list of the rollout record holding it

    def on_split(head: Node, tail: Node) -> None:
        ids = owners.get(head.id)
        if ids is not None:
            ids.insert(ids.index(head.id) + 1, tail.id)
            owners[tail.id] = ids

    closing = "\n" + close + "\n\n" + (trace.solution or "")
    path = _MainPath(tree.root, _original_chain(tree, trace, closing, protocol), on_split)
    before = _measure(trace, tree, protocol)
    current, current_size = trace, before
    revisions: list[Revision] = []
    explorations: list[Exploration] = []
    boundary = spent = n_rollouts = 0
    places = cuts(current, protocol)

    while boundary < len(places):
        if cfg.max_boundaries is not None and len(explorations) >= cfg.max_boundaries:
            break
        # The stride picks cuts by index; exploring a cut again after an acceptance is not a new pick.
        if boundary % cfg.boundary_stride:
            boundary += 1
            continue
        place = places[boundary]
        cut = place.offset
        at = path.node_ending_at(cut)
        # A new list: a split tail copies its head's meta, and the two must not share this one.
        at.meta["boundaries"] = [*at.meta.get("boundaries", []), boundary]
        rem_steps = count_steps(current.thinking[cut:])
        # The remainder is the rest of the main path (its spans are already counted): no re-tokenizing.
        rem_tokens = sum(n.token_count for n in path.after(at) if n.origin != "environment")
        rem_value = cfg.gamma**rem_steps
        budget = max(1, math.ceil(cfg.budget_slack * rem_tokens)) if cfg.token_budget else cfg.max_tokens
        # Seeded by row and exploration only, so a row is revised alike in any batch, shard or resumed run.
        seed = derive_seed(cfg.seed, index, len(explorations) + 1)
        search, held = _search(place, current, current_size, cfg, protocol)
        results: list[Rollout] = yield from rollouts(
            at, cfg, budget, seed, boundary, ban=_ban(place, cfg, protocol), search=search
        )
        n_rollouts += len(results)
        spent += sum(r.tokens for r in results)

        graded = [
            grade(r, k, cfg, verifier, gold, close, held + r.retrievals if search else None)
            for k, r in enumerate(results)
        ]
        records = [rec for rec, _ in graded]
        for rec in records:
            owners.update({i: rec.nodes for i in rec.nodes})
        candidates: dict[int, tuple[Trace, Size]] = {}
        size_of = _sizer(current, cut, [split for _, split in graded], tree, protocol, candidates)
        best, why = choose(records, rem_value, current_size, size_of, cfg.gamma)
        record = Exploration(
            exploration=len(explorations),
            boundary=boundary,
            cut=cut,
            node=at.id,
            prefix_tokens=sum(n.token_count for n in path.up_to(at) if n.origin != "environment"),
            remainder_tokens=rem_tokens,
            remainder_steps=rem_steps,
            remainder_value=rem_value,
            budget=min(cfg.max_tokens, budget),
            rollouts=records,
            accepted=best is not None,
            reason=why,
            cut_kind=place.kind,
            remainder_retrievals=current_size["retrievals"] - held if search else None,
        )
        explorations.append(record)
        if best is None:
            boundary += 1
            continue
        r, (cont, _), (candidate, size) = results[best], graded[best][1], candidates[best]  # type: ignore[misc]
        for n in r.nodes:
            n.accepted = True
        fewer = search is not None and size["retrievals"] < current_size["retrievals"]
        record.kind = "overretrieval" if fewer else _kind(current.thinking[:cut], cont, gold, verifier)
        revisions.append(
            Revision(
                boundary=boundary,
                thought=boundary,
                steps_before=rem_steps,
                steps_after=count_steps(cont),
                tokens_before=rem_tokens,
                tokens_after=r.tokens,
                kind=record.kind,
                cut_kind=place.kind,
                retrievals_before=current_size["retrievals"] if search else None,
                retrievals_after=size["retrievals"] if search else None,
            )
        )
        current, current_size = candidate, size
        for n in path.after(at):
            if not _is_original(n):  # accepted at an earlier cut, now cut short
                n.meta["superseded"] = True
        path.nodes = path.up_to(at) + r.nodes
        # The next cut is the first of the revised trace at or after this one (at a switch: the end of the
        # extended thought, same index, new place).
        places = cuts(current, protocol)

    for n in path.nodes:
        n.accepted = n.accepted or _is_original(n)
    tree.meta["explorations"] = [e.to_dict() for e in explorations]
    stats = {
        **{f"{k}_before": v for k, v in before.items()},
        **{f"{k}_after": v for k, v in current_size.items()},
        "rollouts": n_rollouts,
        "tokens_spent": spent,
        "boundaries_explored": len(explorations),
        "accepted": len(revisions),
        "first_accepted_thought": revisions[0].thought if revisions else None,
    }
    if protocol is not None:
        stats["retrievals_removed"] = before["retrievals"] - current_size["retrievals"]
    status: Status = "revised" if revisions else "unchanged"
    reason = (
        f"{len(revisions)} revision(s) accepted" if revisions else "no rollout beat the original remainder"
    )
    if reference == "self":
        reason += " (graded against the trace's own answer: no gold)"
    return RevisionResult(
        index, status, reason, trace, current, tree, stats, revisions, explorations, reference
    )


def _prompt(trace: Trace, backend: Backend, cfg: RetroSearchConfig, protocol: TagProtocol | None) -> str:
    """The revision prompt: the trace's own format, or for a search trace the protocol's (its instructions)."""
    if protocol is None:
        return cfg.prompt.render(trace.question or "", backend)
    chat = None
    if cfg.prompt.use_chat_template and hasattr(backend, "apply_chat_template"):
        chat = backend.apply_chat_template
    try:
        return protocol.render_prompt(trace.question or "", chat=chat)
    except ValueError:  # the tokenizer has no chat template: a base model reads the raw prompt
        return protocol.render_prompt(trace.question or "")


def _ban(place: Cut, cfg: RetroSearchConfig, protocol: TagProtocol | None) -> tuple[str, ...]:
    """What the first step may not write: the switch words, or at a query the protocol's query tags."""
    if place.kind == "switch" or protocol is None:
        return cfg.first_step_ban
    return tuple(v for q in protocol.queries for v in (q.open, " " + q.open))


def _search(
    place: Cut, current: Trace, size: Size, cfg: RetroSearchConfig, protocol: TagProtocol | None
) -> tuple[Search | None, int]:
    """How a rollout from `place` may search, and the retrievals of the prefix it keeps.

    A rollout may make as many retrievals as the remainder did (one more could not be kept) and no more than
    `cfg.max_retrievals` in the whole trace.
    """
    if protocol is None:
        return None, 0
    held = sum(r.answered and r.env_end <= place.offset for r in find_retrievals(current.thinking, protocol))
    allowed = max(0, min(size["retrievals"], cfg.max_retrievals) - held)
    return Search(protocol, allowed, cfg.top_k), held


def _is_original(n: Node) -> bool:
    """Whether `n` is part of the input trace (its text, or its documents)."""
    return n.origin == "original" or (n.origin == "environment" and bool(n.meta.get("original")))


def _sizer(
    current: Trace,
    cut: int,
    splits: list[tuple[str, str] | None],
    tree: SearchTree,
    protocol: TagProtocol | None,
    out: dict[int, tuple[Trace, Size]],
) -> Callable[[int], Size]:
    """`size_of(k)` for `choose`: the size of the trace rollout `k` would make (kept in `out` for the winner)."""

    def size_of(k: int) -> Size:
        # Measured on whole texts, so "no longer" holds exactly.
        trace = current.replace_at(cut, *splits[k])  # type: ignore[misc]
        out[k] = (trace, _measure(trace, tree, protocol))
        return out[k][1]

    return size_of


def _original_chain(tree: SearchTree, trace: Trace, closing: str, protocol: TagProtocol | None) -> list[Node]:
    """The input trace as a chain under the root: one node per thought, its documents spans as environment
    nodes of their own (so that they are masked and drawn as the environment's), then the closing."""
    ends = [len(trace.thinking_before(i)) for i in range(trace.num_thoughts)]
    spans = environment_spans(trace.thinking, protocol) if protocol is not None else []
    marks = sorted({0, *ends, *(x for span in spans for x in span)})
    nodes, parent = [], tree.root
    for a, b in zip(marks, marks[1:]):
        k = next(i for i, e in enumerate(ends) if a < e)
        text = trace.thinking[a:b]
        if any(s <= a < e for s, e in spans):
            parent = tree.add_environment(parent, text, meta={"original": True, "thought": k})
        else:
            parent = tree.add(
                parent, text, "original", meta={"thought": k, "keyword": trace.thoughts[k].keyword}
            )
        nodes.append(parent)
    nodes.append(tree.add(parent, closing, "original", meta={"closing": True}))
    return nodes


def _measure(trace: Trace, tree: SearchTree, protocol: TagProtocol | None = None) -> Size:
    """Sizes of `trace` (see `Size`); the documents of a search trace are not counted as its tokens."""
    own = model_text(trace.thinking, protocol) if protocol is not None else trace.thinking
    thinking = tree.count_tokens(own)
    size = {
        "thinking_tokens": thinking,
        "total_tokens": thinking + tree.count_tokens(trace.solution or ""),
        "steps": trace.num_steps,
        "thoughts": trace.num_thoughts,
    }
    if protocol is not None:
        spans = environment_spans(trace.thinking, protocol)
        size["retrievals"] = len(spans)
        size["document_tokens"] = sum(tree.count_tokens(trace.thinking[s:e]) for s, e in spans)
    return size


def _kind(prefix: str, cont: str, gold: str, verifier: Verifier) -> Kind:
    """Heuristic: the cut pruned over-thinking if the answer was already stated in the last step before it."""
    last_step = prefix.rsplit("\n\n", 1)[-1]
    if last_boxed(last_step) is not None and verifier(last_step, gold).correct:
        return "overthinking"
    stripped = gold.strip()
    if stripped and stripped in last_step:
        return "overthinking"
    return "underthinking"
