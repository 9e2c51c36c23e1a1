"""Retro-Search: revise a correct reasoning trace by rolling out the untaken path at each thought switch."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from retrosearch.backends.base import Backend
from retrosearch.config import check_choices, option
from retrosearch.engine import Engine, Generate, ProgramError
from retrosearch.text import count_steps, last_boxed, split_think
from retrosearch.trace import DEFAULT_KEYWORDS, Trace
from retrosearch.tree import Node, SearchTree
from retrosearch.verify import Verifier, get_verifier

Status = Literal["revised", "unchanged", "skipped", "error"]


@dataclass
class PromptFormat:
    """How the revision model is prompted: its chat template, then its think tag, then the thinking so far.

    A weak model revising a strong model's traces reads them in *its own* format; the revised trace is written
    back in the trace's format.
    """

    use_chat_template: bool = option(
        True, "Wrap the question with the backend's chat template (when it has one; else the raw template)."
    )
    system_prompt: str | None = option(None, "System message for the chat template.")
    question_template: str = option("{question}", "Text of the user turn; `{question}` is replaced.")
    raw_template: str = option(
        "{question}\n", "Prompt used without a chat template; `{question}` is the user turn's text."
    )
    think_open: str = option(
        "<think>\n", "Text that opens the thinking (appended unless the template ends with it)."
    )
    think_close: str = option("</think>", "Tag that closes the thinking in the revision model's output.")

    def render(self, question: str, backend: Any) -> str:
        user = self.question_template.format(question=question)
        prompt = None
        if self.use_chat_template and hasattr(backend, "apply_chat_template"):
            messages = [{"role": "user", "content": user}]
            if self.system_prompt:
                messages.insert(0, {"role": "system", "content": self.system_prompt})
            try:
                prompt = backend.apply_chat_template(messages)
            except ValueError:  # the tokenizer has no chat template: a base model reads the raw prompt
                prompt = None
        if prompt is None:
            prompt = self.raw_template.format(question=user)
        if not prompt.endswith(self.think_open):
            # R1-distill templates already end with "<think>\n"; others need the tag.
            prompt += self.think_open
        return prompt


@dataclass
class RetroSearchConfig:
    """Settings of `revise` (every field is also a `retrosearch revise` flag)."""

    keywords: tuple[str, ...] = option(DEFAULT_KEYWORDS, "Transition keywords that start a new thought.")
    banned_words: tuple[str, ...] | None = option(
        None,
        "Words banned in the first step of a rollout (default: each keyword, bare and with a leading space).",
    )
    gamma: float = option(0.9, "Discount per thinking step: value = gamma ** steps * reward.")
    n_rollouts: int = option(4, "Rollouts sampled at each thought switch.")
    temperature: float = option(0.6, "Sampling temperature of rollouts.")
    top_p: float = option(0.95, "Nucleus sampling mass of rollouts.")
    max_new_tokens: int = option(4096, "Hard cap on the tokens of one rollout.")
    token_budget: bool = option(
        True, "Stop a rollout once it is longer than the remainder it would replace (times budget_slack)."
    )
    budget_slack: float = option(
        1.0,
        "Multiplier on the budget. At >= 1.0 the budget never changes which revision is accepted, since a "
        "rollout longer than the remainder is never accepted.",
    )
    max_boundaries: int | None = option(
        None, "Partial revision: explore at most this many switches per trace."
    )
    boundary_stride: int = option(1, "Partial revision: explore every k-th switch only.")
    first_step_max_tokens: int = option(256, "Cap on the first (banned-word) step of a rollout.")
    verifier: str = option(
        "math", "Answer grader: math | exact | choice.", choices=("math", "exact", "choice")
    )
    require_gold: bool = option(
        False, "Skip traces without a gold answer (default: the trace's own final answer is the reference)."
    )
    seed: int = option(0, "Seed of the rollouts (with the example index and the switch).")
    prompt: PromptFormat = field(
        default_factory=PromptFormat, metadata={"help": "Revision prompt.", "cli": False}
    )

    def __post_init__(self) -> None:
        if isinstance(self.prompt, dict):
            self.prompt = PromptFormat(**self.prompt)
        self.keywords = tuple(self.keywords)
        if not self.keywords:
            raise ValueError("RetroSearchConfig.keywords must not be empty")
        if not 0 < self.gamma <= 1:
            raise ValueError(f"RetroSearchConfig.gamma must be in (0, 1], got {self.gamma}")
        if self.n_rollouts < 1:
            raise ValueError(f"RetroSearchConfig.n_rollouts must be >= 1, got {self.n_rollouts}")
        if self.max_new_tokens < 1 or self.first_step_max_tokens < 1:
            raise ValueError("RetroSearchConfig.max_new_tokens and first_step_max_tokens must be >= 1")
        if self.budget_slack <= 0:
            raise ValueError(f"RetroSearchConfig.budget_slack must be > 0, got {self.budget_slack}")
        if self.boundary_stride < 1:
            raise ValueError(f"RetroSearchConfig.boundary_stride must be >= 1, got {self.boundary_stride}")
        if self.max_boundaries is not None and self.max_boundaries < 0:
            raise ValueError(f"RetroSearchConfig.max_boundaries must be >= 0, got {self.max_boundaries}")
        check_choices(self)

    @property
    def first_step_ban(self) -> tuple[str, ...]:
        if self.banned_words is not None:
            return tuple(self.banned_words)
        out: list[str] = []
        for k in self.keywords:
            for v in (k, " " + k):
                if v not in out:
                    out.append(v)
        return tuple(out)


@dataclass
class Revision:
    """One accepted replacement of a trace's remainder."""

    boundary: int
    thought: int
    steps_before: int
    steps_after: int
    tokens_before: int
    tokens_after: int
    kind: Literal["overthinking", "underthinking"]


@dataclass
class RevisionResult:
    """What `revise` returns for one input, in input order.

    Attributes:
        index: Position of the input.
        status: `"revised"` (at least one shorter path accepted), `"unchanged"` (searched, nothing better),
            `"skipped"` (not revised: e.g. incorrect, truncated — `reason` says why) or `"error"` (bad input or
            a failure; `reason` names the field and what was expected).
        original: The parsed input trace (`None` when it could not be parsed).
        revised: The revised trace (the original when not revised).
        tree: The search tree (original path, every rollout, accepted branches flagged).
        stats: Numbers: thinking tokens/steps/thoughts before and after, rollouts, tokens spent, boundaries
            explored.
        revisions: The accepted replacements, in order.
    """

    index: int
    status: Status
    reason: str = ""
    original: Trace | None = None
    revised: Trace | None = None
    tree: SearchTree | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    revisions: list[Revision] = field(default_factory=list)

    def to_record(self, *, with_tree: bool = True) -> dict[str, Any]:
        """A JSON-serialisable record (the batch CLI writes one per line)."""
        rec: dict[str, Any] = {
            "index": self.index,
            "status": self.status,
            "reason": self.reason,
            "stats": self.stats,
            "revisions": [dataclasses.asdict(r) for r in self.revisions],
        }
        if self.revised is not None:
            rec["revised"] = self.revised.render()
        if self.tree is not None and with_tree:
            rec["tree"] = self.tree.to_dict()
        return rec


# --------------------------------------------------------------------------- the per-trace program
@dataclass
class _Rollout:
    nodes: list[Node]
    text: str
    tokens: int
    finish: str


def _seed(base: int, *parts: Any) -> int:
    h = hashlib.sha256("|".join(map(str, (base, *parts))).encode()).digest()
    return int.from_bytes(h[:4], "little")


def split_output(text: str, close: str) -> tuple[str, str] | None:
    """(thinking continuation, solution) of a rollout, or None when it never closed the thinking."""
    thinking, solution = split_think(text, close, open="")
    return None if solution is None else (thinking.rstrip(), solution.strip())


_BLANK_RETRIES = 3


def _rollout(start: Node, cfg: RetroSearchConfig, budget: int, seed: int, boundary: int) -> Iterator[Any]:
    """Sub-program: `cfg.n_rollouts` continuations from `start`, the switch words banned in the first step.

    The first step is generated with the ban and a blank-line stop; since the cut is before the separator, a
    sample that stopped on the bare separator is asked again, still banned, for the step's text (up to
    `_BLANK_RETRIES` times). The rest runs free under the token budget. Returns `list[_Rollout]`.
    """
    ban, sep = cfg.first_step_ban, ("\n\n",)
    first_cap = min(cfg.first_step_max_tokens, budget)
    common = dict(temperature=cfg.temperature, top_p=cfg.top_p)
    firsts: list[Node] = yield Generate(
        start,
        n=cfg.n_rollouts,
        max_tokens=first_cap,
        stop=sep,
        banned_words=ban,
        seed=seed,
        meta={"boundary": boundary, "phase": "first_step"},
        **common,
    )
    chains = [[f] for f in firsts]
    # A sample that stopped on a bare separator has not written its first step yet: ask again, still banned
    # (a few times, since a model may emit several blank lines in a row).
    for attempt in range(_BLANK_RETRIES):
        again = [k for k, c in enumerate(chains) if c[-1].finish_reason == "stop" and not c[-1].text.strip()]
        if not again:
            break
        more: list[list[Node]] = yield [
            Generate(
                chains[k][-1],
                n=1,
                max_tokens=first_cap,
                stop=sep,
                banned_words=ban,
                seed=seed + 1 + k + attempt * cfg.n_rollouts,
                meta={"boundary": boundary, "phase": "first_step"},
                **common,
            )
            for k in again
        ]
        for k, (node,) in zip(again, more):
            chains[k].append(node)
    cont: list[int] = []
    for k, chain in enumerate(chains):
        used = sum(n.token_count for n in chain)
        # Still blank after the retries: a degenerate sample, not continued (it could only switch or stall).
        if chain[-1].finish_reason == "stop" and chain[-1].text.strip() and used < budget:
            cont.append(k)
    if cont:
        rest: list[list[Node]] = yield [
            Generate(
                chains[k][-1],
                n=1,
                max_tokens=min(cfg.max_new_tokens, budget) - sum(n.token_count for n in chains[k]),
                seed=seed + 1000 + k,
                meta={"boundary": boundary, "phase": "continuation"},
                **common,
            )
            for k in cont
        ]
        for k, (node,) in zip(cont, rest):
            chains[k].append(node)
    out = []
    for chain in chains:
        finish = chain[-1].finish_reason or "eos"
        tokens = sum(n.token_count for n in chain)
        if tokens >= budget and finish == "stop":
            finish = "length"  # the budget ran out between phases
        out.append(_Rollout(chain, "".join(n.text for n in chain), tokens, finish))
    return out


class _MainPath:
    """The current trace as a chain of tree nodes, so a rollout can branch at any thinking offset."""

    def __init__(self, root: Node, nodes: list[Node]):
        self.root = root
        self.nodes = nodes  # after the root, in order

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
                new = tree.split(node, offset - pos)
                self.nodes.insert(k + 1, new)
                return node
            pos = end
        raise ValueError(f"thinking offset {offset} is past the end of the main path ({pos})")


def revise_program(
    trace: Trace, backend: Backend, cfg: RetroSearchConfig, verifier: Verifier, *, index: int = 0
) -> Iterator[Any]:
    """The per-trace Retro-Search program (a generator for `Engine`); returns a `RevisionResult`.

    For each thought switch, from the first: roll out `n` continuations from the end of the thought (before the
    blank-line separator) with the switch words banned in the first new step; grade each; value =
    `gamma ** thinking_steps * reward`. If the best correct rollout has a higher value than the trace's own
    remainder and is no longer in tokens, it replaces the remainder and the search goes on at the end of the
    (now longer) thought; otherwise it moves on to the next switch.
    """
    fmt = cfg.prompt
    gold = trace.gold
    if gold is None:
        if cfg.require_gold:
            return RevisionResult(index, "skipped", "no gold answer and require_gold is set", trace, trace)
        gold = trace.answer
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
            index, "skipped", f"the original answer is not correct: {verdict.reason}", trace, trace
        )

    tree = SearchTree(
        fmt.render(trace.question or "", backend),
        tokenizer=backend,
        meta={"index": index, "gold": gold, "format": trace.format},
    )
    closing = "\n" + fmt.think_close + "\n\n" + (trace.solution or "")
    path = _MainPath(tree.root, _original_chain(tree, trace, closing))
    before = _measure(trace, tree)
    current, revisions, explored, boundary, rollouts, spent = trace, [], 0, 0, 0, 0
    current_size = before
    seen_switches = 0

    while boundary < current.num_thoughts - 1:
        if cfg.max_boundaries is not None and explored >= cfg.max_boundaries:
            break
        seen_switches += 1
        if (seen_switches - 1) % cfg.boundary_stride:
            boundary += 1
            continue
        explored += 1
        cut = len(current.thinking_before(boundary))
        at = path.node_ending_at(cut)
        at.meta.setdefault("boundaries", []).append(boundary)
        remainder_text = current.thinking_after(boundary)
        rem_steps = count_steps(remainder_text)
        # The remainder is the rest of the main path (its spans are already counted): no re-tokenizing.
        rem_tokens = sum(n.token_count for n in path.nodes[path.nodes.index(at) + 1 :])
        rem_value = cfg.gamma**rem_steps
        budget = max(1, math.ceil(cfg.budget_slack * rem_tokens)) if cfg.token_budget else cfg.max_new_tokens
        results: list[_Rollout] = yield from _rollout(
            at, cfg, budget, _seed(cfg.seed, index, explored), boundary
        )
        rollouts += len(results)
        spent += sum(r.tokens for r in results)
        ranked: list[tuple[float, int, _Rollout, tuple[str, str]]] = []
        for r in results:
            split = split_output(r.text, fmt.think_close) if r.finish in ("stop", "eos") else None
            value, correct = 0.0, False
            if split is not None:
                correct = verifier(split[1], gold).correct
                value = cfg.gamma ** count_steps(split[0]) * float(correct)
            for n in r.nodes:
                n.correct, n.value = correct, value
            if correct and value > rem_value:
                ranked.append((value, r.tokens, r, split))  # type: ignore[arg-type]
        # The best candidate has the highest value, then the fewest tokens, among those whose revised trace is
        # no longer than the current one (checked on whole texts, so the guarantee holds exactly).
        best: tuple[float, int, _Rollout, str, str, Trace, dict[str, int]] | None = None
        for value, tokens, r, (cont, solution) in sorted(ranked, key=lambda x: (-x[0], x[1])):
            candidate = current.replace_remainder(boundary, cont, solution)
            size = _measure(candidate, tree)
            if _no_longer(size, current_size):
                best = (value, tokens, r, cont, solution, candidate, size)
                break
        if best is not None:
            value, tokens, r, cont, solution, candidate, size = best
            for n in r.nodes:
                n.accepted = True
            revisions.append(
                Revision(
                    boundary=boundary,
                    thought=boundary,
                    steps_before=rem_steps,
                    steps_after=count_steps(cont),
                    tokens_before=rem_tokens,
                    tokens_after=tokens,
                    kind=_kind(current.thinking_before(boundary), cont, gold, verifier),
                )
            )
            current, current_size = candidate, size
            for n in path.nodes[path.nodes.index(at) + 1 :]:
                if n.origin == "rollout":  # accepted at an earlier switch, now cut short
                    n.meta["superseded"] = True
            path.nodes = path.nodes[: path.nodes.index(at) + 1] + r.nodes
            # The next switch is at the end of the extended thought: same index, new place.
        else:
            boundary += 1

    for n in path.nodes:
        n.accepted = n.accepted or n.origin == "original"
    after = current_size
    stats = {
        **{f"{k}_before": v for k, v in before.items()},
        **{f"{k}_after": v for k, v in after.items()},
        "rollouts": rollouts,
        "tokens_spent": spent,
        "boundaries_explored": explored,
        "accepted": len(revisions),
        "first_accepted_thought": revisions[0].thought if revisions else None,
    }
    status: Status = "revised" if revisions else "unchanged"
    reason = (
        f"{len(revisions)} revision(s) accepted" if revisions else "no rollout beat the original remainder"
    )
    return RevisionResult(index, status, reason, trace, current, tree, stats, revisions)


def _original_chain(tree: SearchTree, trace: Trace, closing: str) -> list[Node]:
    nodes, parent = [], tree.root
    for k, thought in enumerate(trace.thoughts):
        sep = trace.thoughts[k - 1].steps[-1].sep if k else ""
        parent = tree.add(
            parent, sep + thought.text, "original", meta={"thought": k, "keyword": thought.keyword}
        )
        nodes.append(parent)
    nodes.append(tree.add(parent, closing, "original", meta={"closing": True}))
    return nodes


def _no_longer(a: dict[str, int], b: dict[str, int]) -> bool:
    """Neither the thinking nor the whole trace (thinking + solution) measured by `a` is longer than by `b`."""
    return a["thinking_tokens"] <= b["thinking_tokens"] and a["total_tokens"] <= b["total_tokens"]


def _measure(trace: Trace, tree: SearchTree) -> dict[str, int]:
    thinking = tree.count_tokens(trace.thinking)
    return {
        "thinking_tokens": thinking,
        "total_tokens": thinking + tree.count_tokens(trace.solution or ""),
        "steps": trace.num_steps,
        "thoughts": trace.num_thoughts,
    }


def _kind(prefix: str, cont: str, gold: str, verifier: Verifier) -> Literal["overthinking", "underthinking"]:
    """Heuristic: the cut pruned over-thinking if the answer was already stated in the last step before it."""
    last_step = prefix.rsplit("\n\n", 1)[-1]
    if last_boxed(last_step) is not None and verifier(last_step, gold).correct:
        return "overthinking"
    stripped = gold.strip()
    if stripped and stripped in last_step:
        return "overthinking"
    return "underthinking"


# --------------------------------------------------------------------------- public entry points
TraceLike = Any  # str | dict | Trace


def _as_items(traces: Any) -> tuple[Iterable[Any], bool]:
    if isinstance(traces, (str, dict, Trace)):
        return [traces], True
    return traces, False


def revise_iter(
    traces: Iterable[Any],
    backend: Backend,
    config: RetroSearchConfig | None = None,
    *,
    verifier: Verifier | str | None = None,
    engine: Engine | None = None,
    indexed: bool = False,
) -> Iterator[RevisionResult]:
    """Revise `traces`, yielding each `RevisionResult` as soon as it is done (not in input order).

    Args:
        traces: Trace-likes (see `revise`); with `indexed=True`, `(index, trace_like)` pairs instead, where the
            index numbers the result and seeds its rollouts (so a resumed or sharded job revises a row exactly
            as an uninterrupted one), and a trace-like may be an exception raised upstream (reported as the
            row's error).
        backend, config, verifier, engine: As in `revise`.

    Inputs that cannot be parsed give an `"error"` result naming the row and field; the batch goes on.
    """
    cfg = config or RetroSearchConfig()
    ver = get_verifier(verifier if verifier is not None else cfg.verifier)
    eng = engine or Engine(backend)
    index_of: dict[int, int] = {}
    parsed: dict[int, Trace] = {}

    def programs() -> Iterator[Any]:
        for k, item in enumerate(traces):
            i, item = item if indexed else (k, item)
            index_of[k] = i
            try:
                if isinstance(item, BaseException):
                    raise item
                trace = item if isinstance(item, Trace) else Trace.parse(item, keywords=cfg.keywords)
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
) -> RevisionResult | list[RevisionResult]:
    """Revise reasoning traces with Retro-Search.

    Args:
        traces: One trace (a string, an OpenThoughts/flat row `dict`, or a `Trace`) or many (a list, any
            iterable, or a `datasets.Dataset`).
        backend: The revision model (`ScriptedBackend`, `TransformersBackend`, `VLLMBackend`, `OpenAIBackend`).
        config: Search settings (`RetroSearchConfig()` by default).
        verifier: Answer grader (overrides `config.verifier`): a name or a callable.
        engine: An `Engine` to reuse (its stats accumulate); a new one by default.

    Returns:
        One `RevisionResult` for one input, else a list in input order. A revised trace is always correct
        and never longer (in thinking tokens of the revision model) than the original.
    """
    items, single = _as_items(traces)
    results = sorted(
        revise_iter(items, backend, config, verifier=verifier, engine=engine), key=lambda r: r.index
    )
    return results[0] if single else results


__all__ = [
    "PromptFormat",
    "RetroSearchConfig",
    "Revision",
    "RevisionResult",
    "revise",
    "revise_iter",
    "revise_program",
    "split_output",
]
