"""Tag protocols as data: how a search-augmented model writes queries, reads documents and gives its answer."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from retrosearch.rl.retrievers.base import Passage

#: What a rollout may do when its model asks for one search too many: end at once with the fallback answer
#: (`"stop"`), or append `max_retrievals_message` and let the model answer without searching (`"answer"`).
ON_MAX_RETRIEVALS = ("stop", "answer")
#: What a rollout does with an empty or malformed query: end with the fallback answer (`"stop"`), or append
#: `invalid_query_message` and let the model go on (`"retry"`; retries count against `max_retrievals`).
ON_INVALID_QUERY = ("stop", "retry")


@dataclass(frozen=True)
class QueryTag:
    """A tag pair the model writes to call a tool: generation stops at `close` (kept in the text).

    Attributes:
        tool: Name of the engine tool the query goes to (`Engine(tools={...})`).
        open: Opening tag.
        close: Closing tag (a stop string).
        max_calls: Most calls of this tool per rollout (`None`: only the rollout's `max_retrievals` limits it).
    """

    tool: str
    open: str
    close: str
    max_calls: int | None = None


@dataclass(frozen=True)
class ParsedQuery:
    """The query a segment ends with: `query` is `None` when it is malformed (`problem` says why)."""

    tag: QueryTag
    query: str | None
    problem: str | None = None


@dataclass(frozen=True)
class TagProtocol:
    """One search-agent format: its tags, documents block, prompt, and rules for the rollout's edge cases.

    Attributes:
        name: The protocol's name (`get_protocol` key).
        queries: The query tags, one per tool; the first is the text search.
        docs_open: Tag opening a documents block.
        docs_close: Tag closing it.
        docs_prefix: Text before the passages (starts the environment span, right after the query's close tag).
        docs_suffix: Text after the passages (ends the environment span; the model writes on after it).
        doc_template: One passage: `{index}` (1-based), `{title}`, `{text}`, `{id}`.
        no_docs: Passages text when the retriever found nothing.
        strip_docs: Strip the joined passages before wrapping them (Search-R1 does).
        answer_open: Tag opening the final answer.
        answer_close: Tag closing it.
        think_open: Tag opening the reasoning.
        think_close: Tag closing it.
        think_in_prompt: The prompt ends with `think_open` (the completion only closes it).
        single_think: The completion holds exactly one reasoning block (else one or more, none nested).
        other_tags: More tag pairs the model may write (balanced, never inside the answer), e.g. internal knowledge.
        instructions: What the model is told about the format (the system / first part of the user turn).
        raw_template: The prompt without a chat template: `{instructions}`, `{question}`, `{think}`.
        query_drop: Substrings removed from a query before it is sent (R1-Searcher drops quotes and ellipses).
        on_invalid_query: `"stop"` or `"retry"` (see `ON_INVALID_QUERY`).
        invalid_query_message: Environment text appended on `"retry"`.
        on_max_retrievals: `"stop"` or `"answer"` (see `ON_MAX_RETRIEVALS`).
        max_retrievals_message: Environment text appended on `"answer"` (after the unanswered query's close tag).
        fallback_answer: The final answer of a rollout ended by one of these rules (`None`: no answer).
    """

    name: str
    queries: tuple[QueryTag, ...]
    docs_open: str
    docs_close: str
    docs_prefix: str
    docs_suffix: str
    doc_template: str
    instructions: str
    no_docs: str = "None"
    strip_docs: bool = False
    answer_open: str = "<answer>"
    answer_close: str = "</answer>"
    think_open: str = "<think>"
    think_close: str = "</think>"
    think_in_prompt: bool = True
    single_think: bool = True
    other_tags: tuple[tuple[str, str], ...] = ()
    raw_template: str = "{instructions}\n\nUser:{question}\nAssistant: {think}"
    query_drop: tuple[str, ...] = ()
    on_invalid_query: str = "stop"
    invalid_query_message: str = ""
    on_max_retrievals: str = "stop"
    max_retrievals_message: str = ""
    fallback_answer: str | None = "I don't know."
    _answer_re: re.Pattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.queries:
            raise ValueError(f"protocol {self.name!r}: needs at least one query tag")
        if self.on_invalid_query not in ON_INVALID_QUERY:
            raise ValueError(
                f"protocol {self.name!r}: on_invalid_query must be one of {ON_INVALID_QUERY}, "
                f"got {self.on_invalid_query!r}"
            )
        if self.on_max_retrievals not in ON_MAX_RETRIEVALS:
            raise ValueError(
                f"protocol {self.name!r}: on_max_retrievals must be one of {ON_MAX_RETRIEVALS}, "
                f"got {self.on_max_retrievals!r}"
            )
        pattern = re.escape(self.answer_open) + r"(.*?)" + re.escape(self.answer_close)
        object.__setattr__(self, "_answer_re", re.compile(pattern, re.DOTALL))

    # ------------------------------------------------------------------ tags
    @property
    def tags(self) -> tuple[str, ...]:
        """Every tag of the protocol (what may not appear inside an answer)."""
        out = [t for q in self.queries for t in (q.open, q.close)]
        out += [self.docs_open, self.docs_close, self.answer_open, self.answer_close]
        out += [self.think_open, self.think_close] + [t for pair in self.other_tags for t in pair]
        return tuple(dict.fromkeys(out))

    def stops(self, *, search: bool = True, at_answer: bool = True) -> tuple[str, ...]:
        """Stop strings of one generation segment: the query close tags (when searching), the answer's close."""
        out = [q.close for q in self.queries] if search else []
        return tuple(out + ([self.answer_close] if at_answer else []))

    # ---------------------------------------------------------------- reading
    def ending_query(self, segment: str) -> ParsedQuery | None:
        """The query `segment` ends with (its last tag pair), or `None` when it does not end with a close tag.

        The query is the text between the last opening tag and the close tag of the same segment, with the
        protocol's `query_drop` removed, tabs made spaces and the ends stripped. It is malformed when the segment
        has no opening tag, or empty after cleaning.
        """
        tag = next((q for q in self.queries if segment.endswith(q.close)), None)
        if tag is None:
            return None
        body = segment[: len(segment) - len(tag.close)]
        start = body.rfind(tag.open)
        if start < 0:
            return ParsedQuery(tag, None, f"no {tag.open} before {tag.close}")
        query = body[start + len(tag.open) :]
        for s in self.query_drop:
            query = query.replace(s, "")
        query = query.replace("\t", " ").strip()
        if not query:
            return ParsedQuery(tag, None, "empty query")
        return ParsedQuery(tag, query)

    def extract_answer(self, text: str | None) -> str | None:
        """The content of the last complete answer tag pair in `text`, stripped (`None` when there is none)."""
        if not text:
            return None
        found = self._answer_re.findall(text)
        return found[-1].strip() if found else None

    def answers(self, text: str) -> list[str]:
        """Contents of every complete answer tag pair in `text` (unstripped)."""
        return self._answer_re.findall(text)

    # ---------------------------------------------------------------- writing
    def format_passages(self, passages: Sequence[Any]) -> str:
        """The passages part of a documents block (`no_docs` when empty); strings are taken as passage texts."""
        parts = []
        for i, p in enumerate(passages, start=1):
            if isinstance(p, Passage):
                parts.append(self.doc_template.format(index=i, title=p.title, text=p.text, id=p.id))
            else:
                parts.append(self.doc_template.format(index=i, title="", text=str(p), id=""))
        body = "".join(parts)
        if self.strip_docs:
            body = body.strip()
        return body if body else self.no_docs

    def format_documents(self, passages: Sequence[Any]) -> str:
        """The environment span appended after a query: prefix, passages, suffix."""
        return self.docs_prefix + self.format_passages(passages) + self.docs_suffix

    def render_prompt(
        self,
        question: str,
        *,
        instructions: str | None = None,
        chat: Callable[[list[dict[str, str]]], str] | None = None,
    ) -> str:
        """The prompt for `question`: the raw template, or `chat` (a chat-template function) plus the think tag.

        Args:
            question: The question.
            instructions: Replaces the protocol's own instructions (the closed-book and naive-RAG baselines).
            chat: `messages -> prompt text` (e.g. a backend's `apply_chat_template`); the instructions and the
                question become one user turn.
        """
        text = self.instructions if instructions is None else instructions
        think = self.think_open if self.think_in_prompt else ""
        if chat is not None:
            user = f"{text}\n\nQuestion: {question}" if text else question
            return chat([{"role": "user", "content": user}]) + think
        return self.raw_template.format(instructions=text, question=question, think=think)


# ------------------------------------------------------------------------------------------------ instances
_R1_INSTRUCTIONS = (
    "The User asks a question, and the Assistant answers it. The Assistant first thinks about the reasoning "
    "process in the mind and then gives the User the final answer. The reasoning process and the final answer "
    'are enclosed within <think> </think> and <answer> </answer> tags, respectively, i.e., "<think> reasoning '
    'process here </think><answer> final answer here </answer>". During the thinking process, the Assistant can '
    'search for uncertain knowledge if necessary, in the format "<|begin_of_query|> search query (only keywords, '
    'such as "keyword_1 keyword_2 ...")<|end_of_query|>". A query must involve only a single triple. The search '
    'system then gives the Assistant the retrieved documents in the format "<|begin_of_documents|> ...search '
    'results... <|end_of_documents|>". The final answer is short: a few words, no explanation.'
)

#: R1-Searcher (RUCAIBox): one query tag pair, numbered `Title: … Text: …` passages, an empty or malformed query
#: or one search too many ends the rollout with "I don't know." (its evaluation script's rule).
R1_SEARCHER = TagProtocol(
    name="r1-searcher",
    queries=(QueryTag("retrieve", "<|begin_of_query|>", "<|end_of_query|>"),),
    docs_open="<|begin_of_documents|>",
    docs_close="<|end_of_documents|>",
    docs_prefix="\n\n<|begin_of_documents|>\n",
    docs_suffix="<|end_of_documents|>\n\n",
    doc_template="({index})Title: {title} Text: {text}\n",
    instructions=_R1_INSTRUCTIONS,
    query_drop=('"', "'", "..."),
)

_SEARCH_R1_INSTRUCTIONS = (
    "Answer the given question. You must conduct reasoning inside <think> and </think> first every time you get "
    "new information. After reasoning, if you find you lack some knowledge, you can call a search engine by "
    "<search> query </search>, and it will return the top searched results between <information> and "
    "</information>. You can search as many times as you want. If you find no further external knowledge "
    "needed, you can directly provide the answer inside <answer> and </answer>, without detailed illustrations. "
    "For example, <answer> Beijing </answer>."
)

#: Search-R1 (verl): `Doc i(Title: …) text` passages in `<information>`, several think blocks, a malformed query
#: is answered with a correction and the model tries again; one search too many is not answered (the rollout
#: ends, as Search-R1's last turn runs without search).
SEARCH_R1 = TagProtocol(
    name="search-r1",
    queries=(QueryTag("retrieve", "<search>", "</search>"),),
    docs_open="<information>",
    docs_close="</information>",
    docs_prefix="\n\n<information>",
    docs_suffix="</information>\n\n",
    doc_template="Doc {index}(Title: {title}) {text}\n",
    no_docs="",
    strip_docs=True,
    think_in_prompt=False,
    single_think=False,
    instructions=_SEARCH_R1_INSTRUCTIONS,
    raw_template="{instructions} Question: {question}\n{think}",
    on_invalid_query="retry",
    invalid_query_message=(
        "\nMy previous action is invalid. To search, I should put the query between <search> and </search>; "
        "to give the final answer, I should put it between <answer> and </answer>. Let me try again.\n"
    ),
    fallback_answer=None,
)

_R1PP_INSTRUCTIONS = (
    "The User asks a question, and the Assistant answers it. The Assistant first thinks about the reasoning "
    "process in the mind and then gives the User the final answer, within <think> </think> and <answer> "
    "</answer> tags. While thinking, the Assistant first recalls what it already knows: it writes such "
    "knowledge within <internal> </internal> tags. Only when its own knowledge is not enough, it searches, "
    'in the format "<external> search query (only keywords) </external>", and the search system gives it the '
    'retrieved documents in the format "<document> ...search results... </document>". Searching costs: the '
    "Assistant searches only when needed. The final answer is short: a few words, no explanation."
)

#: R1-Searcher++ (no code released; tags chosen here): recalled knowledge in `<internal>…</internal>` (no tool,
#: no stop), a search in `<external>…</external>`, the passages in `<document>…</document>` (R1-Searcher's
#: numbering); one search too many is answered with a note in a documents block, and the model answers from
#: what it knows.
R1_SEARCHER_PLUS = TagProtocol(
    name="r1-searcher++",
    queries=(QueryTag("retrieve", "<external>", "</external>"),),
    docs_open="<document>",
    docs_close="</document>",
    docs_prefix="\n\n<document>\n",
    docs_suffix="</document>\n\n",
    doc_template="({index})Title: {title} Text: {text}\n",
    other_tags=(("<internal>", "</internal>"),),
    instructions=_R1PP_INSTRUCTIONS,
    query_drop=('"', "'", "..."),
    on_max_retrievals="answer",
    max_retrievals_message=(
        "\n\n<document>\nNo more searches are allowed: answer from the knowledge you already have.\n</document>\n\n"
    ),
)

_DEEPMM_INSTRUCTIONS = (
    "Answer the question about the image. Reason within <reason> </reason> tags. To search the web for text, "
    "write <text_search> query </text_search>; to search for images like a region of the image, write "
    "<img_search> the region (a referring expression, or [whole image]) </img_search>. The results come back "
    "between <information> and </information>. Image search may be used once. Give the final answer within "
    "<answer> </answer> tags, in a few words."
)

#: DeepMMSearch-R1 (no code released): text search (tool `retrieve`) and image search (tool `image_search`, at
#: most once; the multimodal work provides the tool), results in `<information>`, reasoning in `<reason>`.
DEEPMMSEARCH_R1 = TagProtocol(
    name="deepmmsearch-r1",
    queries=(
        QueryTag("retrieve", "<text_search>", "</text_search>"),
        QueryTag("image_search", "<img_search>", "</img_search>", max_calls=1),
    ),
    docs_open="<information>",
    docs_close="</information>",
    docs_prefix="\n\n<information>\n",
    docs_suffix="</information>\n\n",
    doc_template="({index})Title: {title} Text: {text}\n",
    think_open="<reason>",
    think_close="</reason>",
    think_in_prompt=False,
    single_think=False,
    instructions=_DEEPMM_INSTRUCTIONS,
    raw_template="{instructions}\n\nQuestion: {question}\n{think}",
    on_max_retrievals="answer",
    max_retrievals_message=(
        "\n\n<information>\nNo more tool calls are allowed: answer with what you have found.\n</information>\n\n"
    ),
)

#: Protocols by name; `get_protocol` reads this.
PROTOCOLS: dict[str, TagProtocol] = {
    p.name: p for p in (R1_SEARCHER, SEARCH_R1, R1_SEARCHER_PLUS, DEEPMMSEARCH_R1)
}
PROTOCOL_NAMES: tuple[str, ...] = tuple(PROTOCOLS)


def get_protocol(protocol: str | TagProtocol) -> TagProtocol:
    """A protocol by name (`r1-searcher`, `search-r1`, `r1-searcher++`, `deepmmsearch-r1`), or the one given."""
    if isinstance(protocol, TagProtocol):
        return protocol
    try:
        return PROTOCOLS[protocol]
    except KeyError:
        raise ValueError(f"unknown tag protocol {protocol!r}; choose one of {list(PROTOCOL_NAMES)}") from None
