"""The search-rollout program: G samples per prompt that query a retriever, on the shared engine and tree."""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from retrosearch.config import check_choices, option
from retrosearch.rl.protocols import PROTOCOL_NAMES, ParsedQuery, TagProtocol, get_protocol
from retrosearch.text import encode
from retrosearch.tree import Node, SearchTree
from retrosearch.types import LOGPROBS_MODES, Call, Generate

#: How a rollout is prompted: the protocol's search loop, or a baseline that does not search (`closed_book`), or
#: one that retrieves with the question once and puts the passages in the prompt (`naive_rag`).
MODES: tuple[str, ...] = ("search", "closed_book", "naive_rag")

#: How a rollout ended. `answer`: the model closed an answer; `eos`: it stopped without one; `length`: a token cap
#: (truncated); `max_retrievals` / `invalid_query`: the protocol's rule for one search too many / a bad query;
#: `error`: the backend failed for this rollout.
FINISH_REASONS: tuple[str, ...] = ("answer", "eos", "length", "max_retrievals", "invalid_query", "error")

_CLOSED_BOOK = (
    "Answer the question from your own knowledge. Think first within {think_open} {think_close} tags, then give "
    "the final answer within {answer_open} {answer_close} tags, in a few words."
)
_NAIVE_RAG = (
    "Answer the question with the help of the documents below. Think first within {think_open} {think_close} "
    "tags, then give the final answer within {answer_open} {answer_close} tags, in a few words.\n\n"
    "Documents:\n{documents}"
)


@dataclass
class SearchRolloutConfig:
    """Settings of the search rollouts (GRPO-like names where TRL has them). Validated when built."""

    protocol: str = option("r1-searcher", "Tag protocol.", choices=PROTOCOL_NAMES)
    num_generations: int = option(1, "Rollouts per prompt (G): one tree, G branches from its root.")
    max_completion_length: int = option(
        4096,
        "Most completion tokens per rollout, sampled and document tokens together; reaching it ends the rollout "
        "as truncated (a documents block is appended whole, so the last one may go past it).",
    )
    max_tokens_per_turn: int = option(512, "Most new tokens per generation segment (R1-Searcher: 512).")
    temperature: float = option(1.0, "Sampling temperature (0: greedy).")
    top_p: float = option(0.95, "Nucleus sampling mass.")
    max_retrievals: int = option(
        8, "Most retrievals per rollout; one more query gets the protocol's fallback."
    )
    top_k: int = option(3, "Documents per query (R1-Searcher: 3 in training, 5 at evaluation).")
    stop_at_answer: bool = option(True, "End a rollout at the answer's closing tag (as R1-Searcher does).")
    use_chat_template: bool = option(
        False,
        "Put the instructions and question in the backend's chat template, then the think tag (instruct "
        "models); off: the protocol's raw prompt (R1-Searcher: '... User:q Assistant: <think>').",
    )
    seed: int | None = option(
        None, "Base seed; each prompt, turn and branch gets its own seed derived from it (None: unseeded)."
    )
    logprobs: bool = option(True, "Return the log-prob of every sampled token.")
    logprobs_mode: str = option(
        "processed", "processed (after temperature/top-p) or raw log-probs.", choices=LOGPROBS_MODES
    )

    def __post_init__(self) -> None:
        check_choices(self)
        for name in ("num_generations", "max_completion_length", "max_tokens_per_turn", "top_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"SearchRolloutConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_retrievals < 0:
            raise ValueError(f"SearchRolloutConfig.max_retrievals must be >= 0, got {self.max_retrievals}")
        if self.temperature < 0:
            raise ValueError(f"SearchRolloutConfig.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SearchRolloutConfig.top_p must be in (0, 1], got {self.top_p}")


@dataclass
class SearchRollout:
    """One finished rollout (a branch of its group's tree), in the form a trainer and a grader read.

    Attributes:
        prompt_ids: Token ids of the prompt, tokenized as a whole.
        completion_ids: Every id after the prompt: sampled ids and document ids, in order (exact: never the
            joined text re-tokenized).
        env_mask: Per completion id: 1 sampled by the model, 0 added by the environment (documents, notes).
        logprobs: Per completion id: the sampled token's log-prob, 0.0 on environment ids (`None` when not asked).
        text: The completion's text (what a trainer decodes from `completion_ids`).
        queries: The queries sent to the retriever, in order.
        retrievals: How many retrievals were made.
        answer: The final answer (the last answer tag's content, or the protocol's fallback answer).
        finish_reason: One of `FINISH_REASONS`.
        node: Id of the branch's last node in the group's tree.
        passage_ids: Ids of the passages returned for each query.
        invalid_queries: Malformed or empty queries the model wrote.
        error: Why the backend failed, when `finish_reason == "error"`.
    """

    prompt_ids: list[int]
    completion_ids: list[int]
    env_mask: list[int]
    logprobs: list[float] | None
    text: str
    queries: list[str]
    retrievals: int
    answer: str | None
    finish_reason: str
    node: int
    passage_ids: list[list[str]] = field(default_factory=list)
    invalid_queries: int = 0
    error: str | None = None

    @property
    def truncated(self) -> bool:
        """Whether a token cap ended the rollout."""
        return self.finish_reason == "length"


@dataclass
class SearchGroup:
    """The rollouts of one prompt and the tree that holds them (one root, G branches)."""

    question: str
    prompt: str
    mode: str
    protocol: str
    rollouts: list[SearchRollout]
    tree: SearchTree

    @property
    def prompt_ids(self) -> list[int]:
        return list(self.tree.root.token_ids or [])


@dataclass
class _Branch:
    index: int
    leaf: Node
    length: int = 0
    queries: list[str] = field(default_factory=list)
    passage_ids: list[list[str]] = field(default_factory=list)
    calls: Counter = field(default_factory=Counter)
    invalid: int = 0
    may_search: bool = True
    finish: str | None = None
    fallback: bool = False
    error: str | None = None


def mode_instructions(protocol: TagProtocol, mode: str, documents: str = "") -> str | None:
    """The instructions of a rollout `mode` (`None`: the protocol's own)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    tags = {
        "think_open": protocol.think_open,
        "think_close": protocol.think_close,
        "answer_open": protocol.answer_open,
        "answer_close": protocol.answer_close,
    }
    if mode == "closed_book":
        return _CLOSED_BOOK.format(**tags)
    if mode == "naive_rag":
        return _NAIVE_RAG.format(documents=documents, **tags)
    return None


def _seed(base: int | None, *parts: int) -> int | None:
    if base is None:
        return None
    h = base
    for p in parts:
        h = (h * 1_000_003 + p) % (2**31 - 1)
    return h


def search_rollout(
    question: str,
    backend: Any,
    cfg: SearchRolloutConfig,
    *,
    mode: str = "search",
    index: int = 0,
    meta: dict[str, Any] | None = None,
) -> Generator[Any, Any, SearchGroup]:
    """The per-prompt program: `cfg.num_generations` rollouts of `question`, run by an `Engine` with a retriever.

    Each segment stops at the protocol's query close tag (kept); the query is extracted, the queries of the
    group's branches go out as `Call(tool, query)` (the engine batches a wave's calls into one tool call), the
    top-k passages come back as an environment node (tokenized on its own) and the branch generates on. The
    protocol's rules handle an empty or malformed query and one search too many.

    Args:
        question: The question.
        backend: Tokenizes the prompt and environment spans (`tokenize`) and, with `use_chat_template`, formats
            the prompt (`apply_chat_template`); generation itself goes through the engine.
        cfg: The rollout settings.
        mode: `search`, `closed_book` (no retrieval) or `naive_rag` (one retrieval with the question first, its
            passages in the prompt).
        index: The prompt's index in its batch (seeds differ per prompt).
        meta: Stored in the tree's `meta` (gold answer, example id, ...).

    Returns:
        The `SearchGroup` (the engine hands it back as the program's result).
    """
    protocol = get_protocol(cfg.protocol)
    instructions = mode_instructions(protocol, mode)
    if mode == "naive_rag":
        passages = yield Call(protocol.queries[0].tool, question)
        instructions = mode_instructions(
            protocol, mode, protocol.format_passages(list(passages)[: cfg.top_k])
        )
    chat = backend.apply_chat_template if cfg.use_chat_template else None
    prompt = protocol.render_prompt(question, instructions=instructions, chat=chat)
    tree_meta = {
        "question": question,
        "mode": mode,
        "protocol": protocol.name,
        "index": index,
        **(meta or {}),
    }
    tree = SearchTree(prompt, tokenizer=backend, prompt_ids=encode(prompt, backend), meta=tree_meta)
    searching = mode == "search"

    def request(node: Node, b: _Branch | None, turn: int, branch: int, n: int = 1) -> Generate:
        used = b.length if b is not None else 0
        return Generate(
            node,
            n=n,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_tokens=min(cfg.max_tokens_per_turn, cfg.max_completion_length - used),
            stop=protocol.stops(
                search=searching and (b is None or b.may_search), at_answer=cfg.stop_at_answer
            ),
            seed=_seed(cfg.seed, index, turn, branch),
            logprobs=cfg.logprobs,
            logprobs_mode=cfg.logprobs_mode,
            meta={"turn": turn, "branch": branch},
        )

    first = yield request(tree.root, None, 0, 0, n=cfg.num_generations)
    branches = [_Branch(j, node, node.token_count) for j, node in enumerate(first)]
    for b in branches:
        b.leaf.meta["branch"] = b.index
    turn = 0
    while True:
        turn += 1
        wants: list[tuple[_Branch, ParsedQuery]] = []
        notes: list[tuple[_Branch, str, dict[str, Any]]] = []
        for b in branches:
            if b.finish is None:
                _step(b, protocol, cfg, searching, wants, notes)
        if wants:
            results = yield [Call(pq.tag.tool, pq.query) for _, pq in wants]
            for (b, pq), found in zip(wants, results):
                found = list(found)[: cfg.top_k]
                b.queries.append(pq.query)  # type: ignore[arg-type]
                b.calls[pq.tag.tool] += 1
                b.passage_ids.append([str(getattr(p, "id", "")) for p in found])
                notes.append((b, protocol.format_documents(found), {"tool": pq.tag.tool, "query": pq.query}))
        todo: list[tuple[_Branch, Generate]] = []
        for b, text, note in notes:
            env = tree.add_environment(b.leaf, text, meta=note)
            b.leaf, b.length = env, b.length + env.token_count
            if b.length >= cfg.max_completion_length:
                b.finish = "length"
                continue
            todo.append((b, request(env, b, turn, b.index)))
        if not todo:
            break
        nodes = yield [g for _, g in todo]
        for (b, _), (node,) in zip(todo, nodes):
            b.leaf, b.length = node, b.length + node.token_count
    return SearchGroup(
        question=question,
        prompt=prompt,
        mode=mode,
        protocol=protocol.name,
        rollouts=[_finish(tree, b, protocol, cfg) for b in branches],
        tree=tree,
    )


def _step(
    b: _Branch,
    protocol: TagProtocol,
    cfg: SearchRolloutConfig,
    searching: bool,
    wants: list[tuple[_Branch, ParsedQuery]],
    notes: list[tuple[_Branch, str, dict[str, Any]]],
) -> None:
    """Decide what a branch does after its last segment: end, query, or read a note and go on."""
    node = b.leaf
    if node.finish_reason == "error":
        b.finish, b.error = "error", str(node.meta.get("error", "backend error"))
        return
    parsed = protocol.ending_query(node.text) if searching and b.may_search else None
    if parsed is None:
        if node.finish_reason == "length" or b.length >= cfg.max_completion_length:
            b.finish = "length"
        else:
            b.finish = "eos"  # or "answer": `_finish` looks for one in the whole completion
        return
    turns_used = sum(b.calls.values()) + b.invalid
    if parsed.query is None:
        b.invalid += 1
        if protocol.on_invalid_query == "retry" and turns_used < cfg.max_retrievals:
            notes.append((b, protocol.invalid_query_message, {"invalid_query": parsed.problem}))
        else:
            b.finish, b.fallback = "invalid_query", True
        return
    limit = parsed.tag.max_calls
    if turns_used >= cfg.max_retrievals or (limit is not None and b.calls[parsed.tag.tool] >= limit):
        if protocol.on_max_retrievals == "answer":
            b.may_search = False
            notes.append((b, protocol.max_retrievals_message, {"max_retrievals": True}))
        else:
            b.finish, b.fallback = "max_retrievals", True
        return
    wants.append((b, parsed))


def _finish(tree: SearchTree, b: _Branch, protocol: TagProtocol, cfg: SearchRolloutConfig) -> SearchRollout:
    root = tree.root
    # The tree refuses a model span without log-probs when they were asked for (the contract).
    logprobs = tree.logprobs(b.leaf, start=root) if cfg.logprobs else None
    text = tree.text(b.leaf, start=root)
    answer = protocol.fallback_answer if b.fallback else protocol.extract_answer(text)
    finish = b.finish or "eos"
    if finish == "eos" and answer is not None:
        finish = "answer"
    b.leaf.meta["finish"] = finish
    return SearchRollout(
        prompt_ids=list(root.token_ids or []),
        completion_ids=tree.token_ids(b.leaf, start=root),
        env_mask=tree.env_mask(b.leaf, start=root),
        logprobs=logprobs,
        text=text,
        queries=list(b.queries),
        retrievals=sum(b.calls.values()),
        answer=answer,
        finish_reason=finish,
        node=b.leaf.id,
        passage_ids=b.passage_ids,
        invalid_queries=b.invalid,
        error=b.error,
    )


def retrieval_tool(retriever: Any, k: int):
    """An engine tool over `retriever`: `queries -> passages per query`, one `retrieve(queries, k)` per wave."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")

    def retrieve(queries: Sequence[str]) -> list[list[Any]]:
        out = retriever.retrieve(list(queries), k)
        if len(out) != len(queries):
            raise RuntimeError(f"the retriever answered {len(out)} queries of {len(queries)}")
        return out

    return retrieve


def rollout_fields(rollouts: Sequence[SearchRollout]) -> dict[str, list[Any]]:
    """Rollouts as TRL's `rollout_func` returns them: ids, log-probs, `env_mask`, and extra fields for rewards.

    The extra fields (`retrievals`, `queries`, `final_answer`, `finish_reason`, `completion_text`) reach the
    reward functions as keyword arguments (named so that they do not shadow a dataset's `answer` column).
    """
    return {
        "prompt_ids": [r.prompt_ids for r in rollouts],
        "completion_ids": [r.completion_ids for r in rollouts],
        "logprobs": [r.logprobs for r in rollouts] if all(r.logprobs is not None for r in rollouts) else None,
        "env_mask": [r.env_mask for r in rollouts],
        "retrievals": [r.retrievals for r in rollouts],
        "queries": [r.queries for r in rollouts],
        "final_answer": [r.answer for r in rollouts],
        "finish_reason": [r.finish_reason for r in rollouts],
        "completion_text": [r.text for r in rollouts],
    }
