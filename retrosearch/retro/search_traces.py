"""Search traces for Retro-Search: where a trace queries, which of its text the environment wrote, and parsers."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from retrosearch.rl.protocols import TagProtocol, get_protocol
from retrosearch.trace import DEFAULT_KEYWORDS, Trace, TraceFormatError

CutKind = Literal["switch", "query"]

#: Fields of a search-rollout row: R1-Searcher's published outputs and `retrosearch rl evaluate` predictions.
TEXT_FIELD, QUESTION_FIELD, GOLD_FIELD = "gen_text_store", "question", "answer"


@dataclass(frozen=True)
class Retrieval:
    """One query a trace wrote, and the documents block the environment answered it with.

    Attributes:
        query: The query as the protocol reads it (`None`: malformed or empty).
        start: Offset of the query's opening tag.
        end: Offset just after its closing tag.
        env_end: Offset just after the documents span (`== end` when no documents followed: not a retrieval).
    """

    query: str | None
    start: int
    end: int
    env_end: int

    @property
    def answered(self) -> bool:
        """Whether documents came back (the query counts as a retrieval)."""
        return self.env_end > self.end


@dataclass(frozen=True)
class Cut:
    """A place to explore the untaken path: the end of a thought (a switch) or just before a query's tag.

    Attributes:
        kind: `"switch"` (the switch words are banned in the first step) or `"query"` (the query tag is).
        offset: Character offset of the cut in the thinking.
        thought: Index of the thought that ends at a switch, or that holds the query.
        query: Rank of the query among the trace's retrievals (`None` at a switch).
    """

    kind: CutKind
    offset: int
    thought: int
    query: int | None = None


def find_retrievals(text: str, protocol: TagProtocol | str) -> list[Retrieval]:
    """The queries of `text` in order, each with the documents span that follows it.

    The documents span is the environment's text: from the end of the query's closing tag (when only
    whitespace comes before the documents' opening tag) through the documents' closing tag and the protocol's
    `docs_suffix` after it, as far as the text has it.
    """
    p = get_protocol(protocol)
    found: list[Retrieval] = []
    pos = 0
    while True:
        hits = [(text.find(q.open, pos), q) for q in p.queries]
        hits = [(i, q) for i, q in hits if i >= 0]
        if not hits:
            return found
        start, tag = min(hits, key=lambda h: h[0])
        close = text.find(tag.close, start + len(tag.open))
        if close < 0:
            return found
        end = close + len(tag.close)
        parsed = p.ending_query(text[start:end])
        env_end = end
        rest = text[end:]
        gap = len(rest) - len(rest.lstrip())
        if rest[gap:].startswith(p.docs_open):
            shut = text.find(p.docs_close, end + gap + len(p.docs_open))
            if shut >= 0:
                env_end = shut + len(p.docs_close)
                tail = p.docs_suffix[p.docs_suffix.find(p.docs_close) + len(p.docs_close) :]
                while tail and not text.startswith(tail, env_end):
                    tail = tail[:-1]  # take as much of the suffix's trailing whitespace as is there
                env_end += len(tail)
        found.append(Retrieval(parsed.query if parsed else None, start, end, env_end))
        pos = env_end


def environment_spans(text: str, protocol: TagProtocol | str) -> list[tuple[int, int]]:
    """`(start, end)` offsets of the documents spans of `text` (what the environment wrote)."""
    return [(r.end, r.env_end) for r in find_retrievals(text, protocol) if r.answered]


def model_text(text: str, protocol: TagProtocol | str) -> str:
    """`text` without its documents spans: what the model itself wrote."""
    out, pos = [], 0
    for start, end in environment_spans(text, protocol):
        out.append(text[pos:start])
        pos = end
    out.append(text[pos:])
    return "".join(out)


def count_retrievals(text: str, protocol: TagProtocol | str) -> int:
    """How many queries of `text` were answered with documents."""
    return sum(r.answered for r in find_retrievals(text, protocol))


def cuts(trace: Trace, protocol: TagProtocol | str | None) -> list[Cut]:
    """The places to explore in `trace`, by offset: its switches, and (with a protocol) its queries.

    A switch inside a documents span is the environment's text, not the model's: it is left out.
    """
    ends = [len(trace.thinking_before(i)) for i in range(trace.num_thoughts)]
    found = [Cut("switch", ends[i], i) for i in range(trace.num_thoughts - 1)]
    if protocol is not None:
        spans = environment_spans(trace.thinking, protocol)
        found = [c for c in found if not any(s <= c.offset < e for s, e in spans)]
        answered = [r for r in find_retrievals(trace.thinking, protocol) if r.answered]
        for k, r in enumerate(answered):
            thought = next((i for i, e in enumerate(ends) if r.start <= e), len(ends) - 1)
            found.append(Cut("query", r.start, thought, k))
    return sorted(found, key=lambda c: (c.offset, c.kind != "query"))


# ------------------------------------------------------------------------------------------------ parsing
def _gold_text(gold: Any) -> str | None:
    """A gold answer as `Trace.gold` holds it: a list of aliases becomes a JSON list (the QA graders read it)."""
    if gold is None or isinstance(gold, str):
        return gold
    if isinstance(gold, (list, tuple)):
        return json.dumps([str(g) for g in gold], ensure_ascii=False)
    return str(gold)


def is_search_row(obj: Any) -> bool:
    """Whether `parse_search_trace` reads `obj`: a row with `gen_text_store`, or an rl `SearchRollout`."""
    if isinstance(obj, Mapping):
        return TEXT_FIELD in obj
    return hasattr(obj, "text") and hasattr(obj, "retrievals")


def parse_search_trace(
    obj: str | Mapping[str, Any] | Any,
    *,
    protocol: TagProtocol | str = "r1-searcher",
    question: str | None = None,
    gold: Any = None,
    keywords: tuple[str, ...] = DEFAULT_KEYWORDS,
) -> Trace:
    """A search rollout as a `Trace` whose thinking holds its queries and documents spans.

    Reads R1-Searcher's published outputs (`question`, `answer`, `pred_ans`, `gen_text_store`: the completion
    after the prompt's think tag), the rows `retrosearch rl evaluate` writes (same fields, `answer` a list of
    aliases), an rl `SearchRollout` (give `question` and `gold`) or the completion text itself. The other
    fields of a row go to `Trace.metadata` (with `protocol` and the `retrievals` counted), so `to_row` writes
    them back.

    Raises:
        TraceFormatError: a row without a string `gen_text_store`, or an object of another type.
    """
    p = get_protocol(protocol)
    meta: dict[str, Any] = {}
    if isinstance(obj, str):
        text = obj
    elif isinstance(obj, Mapping):
        text = obj.get(TEXT_FIELD)
        if not isinstance(text, str):
            raise TraceFormatError(
                f"{TEXT_FIELD}: expected the rollout text (a string), got {type(text).__name__}"
            )
        meta = {k: v for k, v in obj.items() if k not in (TEXT_FIELD, QUESTION_FIELD, GOLD_FIELD)}
        question = question if question is not None else obj.get(QUESTION_FIELD)
        gold = gold if gold is not None else obj.get(GOLD_FIELD)
    elif is_search_row(obj):  # an rl SearchRollout
        text = obj.text
        meta = {"queries": list(obj.queries), "finish_reason": obj.finish_reason}
    else:
        raise TraceFormatError(
            f"search trace: expected a gen_text_store row, a SearchRollout or a str, got {type(obj).__name__}"
        )
    trace = Trace.parse(text, question=question, gold=_gold_text(gold), keywords=keywords)
    meta.update(protocol=p.name, retrievals=count_retrievals(trace.thinking, p))
    return replace(trace, metadata=meta)


def search_group_traces(
    group: Any, *, gold: Any = None, keywords: tuple[str, ...] = DEFAULT_KEYWORDS
) -> list[Trace]:
    """The rollouts of an rl `SearchGroup` as traces (gold from `gold`, else the tree's `gold` / `answer`)."""
    meta = group.tree.meta
    if gold is None:
        gold = meta.get("gold", meta.get("answer", meta.get("golds")))
    return [
        parse_search_trace(r, protocol=group.protocol, question=group.question, gold=gold, keywords=keywords)
        for r in group.rollouts
    ]


def expand_groups(items: Iterable[Any], keywords: tuple[str, ...] = DEFAULT_KEYWORDS) -> Iterator[Any]:
    """`items` with each rl `SearchGroup` replaced by its rollouts' traces, in order."""
    for item in items:
        if hasattr(item, "rollouts") and hasattr(item, "tree") and hasattr(item, "protocol"):
            yield from search_group_traces(item, keywords=keywords)
        else:
            yield item
