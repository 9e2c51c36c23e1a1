"""What Retro-Search returns: the result per trace, its accepted revisions and one record per explored switch."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from retrosearch.trace import Trace
from retrosearch.tree import SearchTree

Status = Literal["revised", "unchanged", "skipped", "error"]
Kind = Literal["overthinking", "underthinking", "overretrieval"]
#: Where an exploration branched: at a thought switch, or just before a query (search traces).
CutKind = Literal["switch", "query"]

#: Why no rollout of an explored switch was kept, in the order the conditions are checked.
NO_CORRECT = "no correct rollout"
NO_BETTER_VALUE = "none beat the remainder's value"
NO_SHORTER = "none no longer in tokens"


@dataclass
class Revision:
    """One accepted replacement of a trace's remainder.

    Attributes:
        boundary: Index of the thought that ends at the switch (in the trace as revised so far).
        thought: The same index (kept for readers of older journals).
        steps_before / steps_after: Thinking steps of the remainder and of the kept rollout's thinking.
        tokens_before / tokens_after: Tokens of the remainder (closing and solution included) and of the kept
            rollout.
        kind: `"overthinking"` when the answer was already stated in the last step before the cut, else
            `"underthinking"` (a heuristic); `"overretrieval"` when a query was cut (a search not needed).
        cut_kind: `"switch"` or `"query"` (search traces).
        retrievals_before / retrievals_after: Retrievals of the trace before and after (search traces only).
    """

    boundary: int
    thought: int
    steps_before: int
    steps_after: int
    tokens_before: int
    tokens_after: int
    kind: Kind
    cut_kind: CutKind = "switch"
    retrievals_before: int | None = None
    retrievals_after: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (the search-only fields only when set)."""
        return _compact(self)


@dataclass
class RolloutRecord:
    """One rollout sampled at an explored switch, as the search judged it.

    Attributes:
        sample: Rank of the rollout at its switch (sampling order).
        nodes: Ids of its tree nodes, in order (a node split later to branch inside it has its tail listed too).
        tokens: Tokens generated (first step, blank-line retries and continuation).
        steps: Thinking steps before it closed its thinking (`None`: it never closed it).
        finish_reason: How its last request ended (`"length"`: stopped by the token budget or cap).
        closed: It closed its thinking (and so reached a solution to grade).
        verdict: The verifier's verdict (`"correct"`, `"incorrect"`, `"unparseable"`; `None`: not graded).
        correct: Whether the verdict is correct.
        value: `gamma ** steps * reward` (`0.0` when not correct).
        accepted: It replaced the remainder.
        note: Why it was or was not kept, in a few words.
        retrievals: Retrievals of the trace it would make (search traces only; its own are in the tree).
    """

    sample: int
    nodes: list[int]
    tokens: int
    steps: int | None
    finish_reason: str
    closed: bool
    verdict: str | None
    correct: bool
    value: float
    accepted: bool = False
    note: str = ""
    retrievals: int | None = None


@dataclass
class Exploration:
    """One explored thought switch: where the rollouts branched, what they had to beat, what came of it.

    Attributes:
        exploration: Rank of this exploration in its trace (a switch explored again after an acceptance gets a
            new rank and the same `boundary`).
        boundary: Index of the thought that ends at the switch, in the trace as revised so far.
        cut: Character offset of the cut in that trace's thinking.
        node: Id of the tree node the rollouts branch from.
        prefix_tokens: Tokens of the thinking before the cut.
        remainder_tokens / remainder_steps / remainder_value: The remainder the rollouts competed with (its
            tokens include the closing and the solution).
        budget: Most tokens one rollout could use (the token budget, capped by `max_tokens`).
        rollouts: The rollouts, in sampling order.
        accepted: A rollout replaced the remainder.
        reason: Why that rollout was kept, or why none was (`NO_CORRECT`, `NO_BETTER_VALUE`, `NO_SHORTER`).
        kind: The accepted revision's kind (`None` when nothing was kept).
        cut_kind: `"switch"` (the switch words banned in the first step) or `"query"` (the query tag banned).
        remainder_retrievals: Retrievals in the remainder (search traces only).
    """

    exploration: int
    boundary: int
    cut: int
    node: int
    prefix_tokens: int
    remainder_tokens: int
    remainder_steps: int
    remainder_value: float
    budget: int
    rollouts: list[RolloutRecord] = field(default_factory=list)
    accepted: bool = False
    reason: str = ""
    kind: Kind | None = None
    cut_kind: CutKind = "switch"
    remainder_retrievals: int | None = None

    @property
    def accepted_rollout(self) -> RolloutRecord | None:
        """The rollout that replaced the remainder, if any."""
        return next((r for r in self.rollouts if r.accepted), None)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (`from_dict` reads it back; the search-only fields only when set)."""
        d = _compact(self)
        d["rollouts"] = [_compact(r) for r in self.rollouts]  # asdict made them dicts: compact them too
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Exploration:
        """An `Exploration` from `to_dict()` output; raises `TypeError`/`KeyError` on a malformed dict."""
        d = dict(d)
        d["rollouts"] = [RolloutRecord(**r) for r in d.get("rollouts") or []]
        return cls(**d)


@dataclass
class RevisionResult:
    """What `revise` returns for one input, in input order.

    Attributes:
        index: Position of the input.
        status: `"revised"` (at least one shorter path accepted), `"unchanged"` (searched, nothing better),
            `"skipped"` (not revised: e.g. incorrect, truncated, no gold answer — `reason` says why) or
            `"error"` (bad input or a failure; `reason` names the field and what was expected).
        reason: One line saying why.
        original: The parsed input trace (`None` when it could not be parsed).
        revised: The revised trace (the original when not revised).
        tree: The search tree (original path, every rollout, accepted branches flagged); its `meta` holds the
            exploration records and the reference too, so a saved tree carries them.
        stats: Numbers: thinking tokens/steps/thoughts before and after, rollouts, tokens spent, boundaries
            explored.
        revisions: The accepted replacements, in order.
        explorations: One record per explored switch, in the order explored.
        reference: What the answers were graded against: `"gold"`, or `"self"` when the trace had no gold
            answer and `RetroSearchConfig.reference == "self"` made its own final answer the reference (`None`
            when nothing was graded).
    """

    index: int
    status: Status
    reason: str = ""
    original: Trace | None = None
    revised: Trace | None = None
    tree: SearchTree | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    revisions: list[Revision] = field(default_factory=list)
    explorations: list[Exploration] = field(default_factory=list)
    reference: str | None = None

    def to_record(self, *, with_tree: bool = True) -> dict[str, Any]:
        """A JSON-serialisable record (the batch CLI writes one per line); `from_record` reads it back."""
        rec: dict[str, Any] = {
            "index": self.index,
            "status": self.status,
            "reason": self.reason,
            "reference": self.reference,
            "stats": self.stats,
            "revisions": [r.to_dict() for r in self.revisions],
            "explorations": [e.to_dict() for e in self.explorations],
        }
        if self.revised is not None:
            rec["revised"] = self.revised.render()
        if self.tree is not None and with_tree:
            rec["tree"] = self.tree.to_dict()
        return rec

    @classmethod
    def from_record(cls, rec: dict[str, Any], *, index: int | None = None) -> RevisionResult:
        """A result from `to_record()` output or a batch journal line (the traces are not re-parsed).

        Exploration records come from the record, else from its tree's `meta`. Raises `ValueError` naming the
        part that is malformed.
        """
        if not isinstance(rec, dict) or "status" not in rec:
            raise ValueError("expected a dict with a 'status' (a journal record)")
        try:
            revisions = [Revision(**r) for r in rec.get("revisions") or []]
        except TypeError as e:
            raise ValueError(f"bad 'revisions' entry ({e})") from e
        tree = None
        if rec.get("tree") is not None:
            try:
                tree = SearchTree.from_dict(rec["tree"])
            except ValueError as e:
                raise ValueError(f"bad 'tree' ({e})") from e
        raw = rec.get("explorations")
        if raw is None and tree is not None:
            raw = tree.meta.get("explorations")
        try:
            explorations = [Exploration.from_dict(e) for e in raw or []]
        except (TypeError, KeyError) as e:
            raise ValueError(f"bad 'explorations' entry ({e})") from e
        return cls(
            index=int(rec.get("index", rec.get("seq", 0)) if index is None else index),
            status=rec["status"],
            reason=rec.get("reason", ""),
            tree=tree,
            stats=dict(rec.get("stats") or {}),
            revisions=revisions,
            explorations=explorations,
            reference=rec.get("reference"),
        )


#: Fields only search traces set: left out of a record at their defaults, so reasoning traces' records are as
#: they always were.
_SEARCH_ONLY = ("cut_kind", "retrievals", "retrievals_before", "retrievals_after", "remainder_retrievals")


def _compact(obj: Any) -> dict[str, Any]:
    defaults = {f.name: f.default for f in dataclasses.fields(obj)}
    d = dataclasses.asdict(obj)
    return {k: v for k, v in d.items() if k not in _SEARCH_ONLY or v != defaults[k]}
