"""The knowledge world's wording: made-up names, and the sentences of its passages, questions, queries and thoughts.

Every relation has one canonical statement ("Mara Kellen was born in Dunmere."). It opens the fact's passage, is
the commonest form in the pretraining text, and is what a trajectory says when it recalls or reads the fact, so that
"I recall that Mara Kellen was born in" continues exactly as the pretraining sentence does.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retrosearch.toy.knowledge import Hop, KnowledgeWorld

_ONSETS = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "st", "th")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ou")
_CODAS = ("", "", "", "n", "r", "l", "s", "m", "k", "th", "nd")


def make_word(rng: random.Random, syllables: int) -> str:
    """A pronounceable made-up word of `syllables` syllables, capitalized (e.g. "Varnok")."""
    parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables)]
    return "".join(parts).capitalize()


def word_pool(rng: random.Random, n: int, syllables: tuple[int, ...], taken: set[str]) -> list[str]:
    """`n` distinct made-up words, none already in `taken` (which is updated), 4 to 9 letters long."""
    out: list[str] = []
    while len(out) < n:
        w = make_word(rng, rng.choice(syllables))
        if 4 <= len(w) <= 9 and w.lower() not in taken:
            taken.add(w.lower())
            out.append(w)
    return out


CITY_FORMS = ("{w}", "{w}", "{w}", "Port {w}", "{w} Falls", "New {w}")
COUNTRY_FORMS = (("{w}", "Republic of {w}"), ("{w}", "Kingdom of {w}"), ("{w}", "Federation of {w}"))
COMPANY_SUFFIXES = ("Systems", "Works", "Labs", "Dynamics", "Holdings", "Industries", "Group", "Foundry")
UNIVERSITY_FORMS = ("{w} Institute", "{w} University", "{w} College")


@dataclass(frozen=True)
class RelationText:
    """How one relation is written.

    Attributes:
        name: The relation's key.
        statement: The canonical sentence, `{s}` subject and `{o}` object names.
        paraphrases: Other sentences saying the same fact (pretraining text).
        questions: 1-hop question templates (`{s}`).
        need: What a thought says it must find ("where {s} was born").
        query: The search query's keywords (each word of it is in the fact's passage).
    """

    name: str
    statement: str
    paraphrases: tuple[str, ...]
    questions: tuple[str, ...]
    need: str
    query: str


RELATIONS: dict[str, RelationText] = {
    r.name: r
    for r in (
        RelationText(
            "born_in",
            "{s} was born in {o}.",
            (
                "The birthplace of {s} is {o}.",
                "{o} is where {s} was born.",
                "{s} was born in the city of {o}.",
            ),
            ("Where was {s} born?", "In which city was {s} born?"),
            "where {s} was born",
            "{s} born",
        ),
        RelationText(
            "works_for",
            "{s} works for {o}.",
            ("{s} is employed by {o}.", "{o} employs {s}.", "The employer of {s} is {o}."),
            ("Which company does {s} work for?", "Who is the employer of {s}?"),
            "which company {s} works for",
            "{s} works",
        ),
        RelationText(
            "studied_at",
            "{s} studied at {o}.",
            ("{s} is a graduate of {o}.", "{o} is where {s} studied.", "{s} went to {o}."),
            ("Where did {s} study?", "Which university did {s} attend?"),
            "where {s} studied",
            "{s} studied",
        ),
        RelationText(
            "based_in",
            "{s} is based in {o}.",
            (
                "{s} has its headquarters in {o}.",
                "{o} is the home of {s}.",
                "The head office of {s} is in {o}.",
            ),
            ("In which city is {s} based?", "Where is {s} headquartered?"),
            "where {s} is based",
            "{s} based",
        ),
        RelationText(
            "founded_by",
            "{s} was founded by {o}.",
            ("{o} founded {s}.", "The founder of {s} is {o}.", "{s} was started by {o}."),
            ("Who founded {s}?", "Who is the founder of {s}?"),
            "who founded {s}",
            "{s} founded",
        ),
        RelationText(
            "located_in",
            "{s} is located in {o}.",
            ("{s} stands in {o}.", "{o} is home to {s}.", "The campus of {s} is in {o}."),
            ("In which city is {s} located?", "Where is {s}?"),
            "where {s} is located",
            "{s} located",
        ),
        RelationText(
            "in_country",
            "{s} is a city in {o}.",
            ("{s} lies in {o}.", "{o} is the country of {s}.", "The city of {s} is in {o}."),
            ("In which country is {s}?", "Which country is {s} in?"),
            "which country {s} is in",
            "{s} city",
        ),
        RelationText(
            "capital",
            "The capital of {s} is {o}.",
            ("{o} is the capital of {s}.", "The capital city of {s} is {o}.", "{s} is governed from {o}."),
            ("What is the capital of {s}?", "Which city is the capital of {s}?"),
            "the capital of {s}",
            "{s} capital",
        ),
    )
}

#: 2-hop question templates, keyed by the two relations (subject --r1--> bridge --r2--> answer).
TWO_HOP_QUESTIONS: dict[tuple[str, str], str] = {
    ("born_in", "in_country"): "In which country was {s} born?",
    ("works_for", "based_in"): "In which city is the company that {s} works for based?",
    ("works_for", "founded_by"): "Who founded the company that {s} works for?",
    ("studied_at", "located_in"): "In which city is the university where {s} studied?",
    ("founded_by", "born_in"): "Where was the founder of {s} born?",
    ("based_in", "in_country"): "In which country is {s} based?",
}

#: The second sentence of a fact's passage: a filler detail of the subject (never the answer to a question).
PASSAGE_DETAILS: dict[str, tuple[str, ...]] = {
    "person": ("{s} is a {d}.", "{s} worked for years as a {d}.", "Friends describe {s} as a skilled {d}."),
    "company": ("{s} makes {d}.", "{s} is best known for its {d}.", "The main products of {s} are {d}."),
    "university": ("{s} is known for its {d} courses.", "{s} teaches {d} to many students."),
    "city": ("{s} lies on the {d} River.", "The {d} River runs through {s}."),
    "country": ("{s} is famous for its {d}.", "Visitors to {s} often admire its {d}."),
}
DETAIL_WORDS: dict[str, tuple[str, ...]] = {
    "person": ("painter", "builder", "teacher", "chemist", "pilot", "writer", "lawyer", "farmer", "doctor"),
    "company": ("turbines", "lamps", "engines", "textiles", "paper", "glass", "clocks", "bicycles", "ships"),
    "university": ("music", "law", "medicine", "physics", "history", "farming", "design", "languages"),
    "city": (),  # river names are made-up words
    "country": ("mountains", "lakes", "forests", "coasts", "festivals", "bridges", "gardens"),
}
#: Profile passages: one per entity, about nothing a question asks (distractors for the retriever).
PROFILES: dict[str, str] = {
    "person": "{s} enjoys {a} and {b} in free time.",
    "company": "{s} employs many people and sells {a} and {b}.",
    "university": "{s} has a large library and a well-known {a} department.",
    "city": "{s} has a busy market and an old {a}.",
    "country": "{s} has a long history and is known for its {a}.",
}
PROFILE_WORDS = (
    "chess",
    "sailing",
    "gardening",
    "cooking",
    "hiking",
    "painting",
    "music",
    "reading",
    "tower",
)

# ------------------------------------------------------------------------------------------------ thoughts
RECALL = "I recall that {fact}"
NEED_FIRST = "I need to find {need}."
NEED_NEXT = "Now I need to find {need}."
READ = "The documents say that {fact}"


def statement(relation: str, subject: str, obj: str) -> str:
    """The canonical sentence of a fact, with a lowercase-free first letter kept as written."""
    return RELATIONS[relation].statement.format(s=subject, o=obj)


def recall_text(relation: str, subject: str, obj: str) -> str:
    """A thought recalling a fact (right or wrong: `obj` is what the model believes)."""
    return RECALL.format(fact=_inline(statement(relation, subject, obj)))


def read_text(relation: str, subject: str, obj: str) -> str:
    """A thought reading a fact out of the documents."""
    return READ.format(fact=_inline(statement(relation, subject, obj)))


def need_text(relation: str, subject: str, first: bool) -> str:
    """A thought saying what must be searched for."""
    return (NEED_FIRST if first else NEED_NEXT).format(need=RELATIONS[relation].need.format(s=subject))


def query_text(relation: str, subject: str) -> str:
    """The keywords of a search for a fact."""
    return RELATIONS[relation].query.format(s=subject)


def _inline(sentence: str) -> str:
    # "The capital of ..." follows "that" in a thought: lowercase its article only
    return "the" + sentence[3:] if sentence.startswith("The ") else sentence


@dataclass(frozen=True)
class SearchTags:
    """The tags a completion is written with (the caller takes them from its tag protocol)."""

    query_open: str
    query_close: str
    think_close: str
    answer_open: str
    answer_close: str


def completion_segments(
    world: KnowledgeWorld, hops: Sequence[Hop], tags: SearchTags
) -> list[tuple[str, str]]:
    """A completion as segments: `("model", text)` written by the model, `("documents", query)` where the
    environment appends the documents of `query` (right after the model text that closed the query).

    Args:
        world: The `KnowledgeWorld` (its `name` and `query`).
        hops: The trajectory's `Hop`s (`KnowledgeWorld.plan_hops`).
        tags: The tags to write.

    The completion opens with a space (the prompt ends with the think tag) and ends with the answer's close tag.
    """
    segments: list[tuple[str, str]] = []
    text = ""
    for i, hop in enumerate(hops):
        s, o = world.name(hop.subject), world.name(hop.object)
        if hop.how == "search":
            query = world.query(hop.subject, hop.relation)
            text += (
                f" {need_text(hop.relation, s, first=i == 0)} {tags.query_open} {query} {tags.query_close}"
            )
            segments += [("model", text), ("documents", query)]
            text = read_text(hop.relation, s, o)
        else:
            thought = (recall_text if hop.how == "recall" else read_text)(hop.relation, s, o)
            text += f" {thought}" if text or not segments else thought
    answer = world.name(hops[-1].object)
    text += f" {tags.think_close}\n{tags.answer_open} {answer} {tags.answer_close}"
    segments.append(("model", text))
    return segments


__all__ = [
    "RELATIONS",
    "TWO_HOP_QUESTIONS",
    "RelationText",
    "SearchTags",
    "completion_segments",
    "make_word",
    "need_text",
    "query_text",
    "read_text",
    "recall_text",
    "statement",
    "word_pool",
]
