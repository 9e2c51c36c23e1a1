"""The knowledge world: a seeded fictional world of people, places and organisations, its corpus and its questions.

Pure Python (no torch). Entities (countries, cities, companies, universities, people) are linked by relations
(born in, works for, studied at, based in, founded by, located in, city in, capital); every fact has a passage in
R1-Searcher's corpus format (`{id, title, text}`: the subject as title, the fact's canonical sentence and a filler
detail), and every entity a profile passage that answers no question (a distractor). Questions are 1-hop ("Where
was Mara Kellen born?") and 2-hop bridges ("In which country was Mara Kellen born?"), with answer aliases.

- **Split by entity**: a share of the entities that questions ask about is held out; a question is held out when
  its subject is, so no held-out question's subject is the subject of a train question.
- **Known facts**: a share of the entities is frequent; their facts appear several times in the pretraining text
  (`KnowledgeWorld.pretraining_text`), so a model trained on it can answer from memory. The facts of rare entities
  are only in the corpus. A question is `known` when every fact of its chain is.

`KnowledgeWorld.plan_hops` turns a question into the steps of a trajectory (recall, search, or read each fact),
and `knowledge_text` words them; the tags and the documents block come from the caller (the tag protocol).
"""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from retrosearch.toy import knowledge_text as kt
from retrosearch.toy.knowledge_text import SearchTags, completion_segments

#: Entity kinds, in the order they are made.
KINDS: tuple[str, ...] = ("country", "city", "company", "university", "person")
#: The kind of each relation's subject and object.
RELATION_KINDS: dict[str, tuple[str, str]] = {
    "born_in": ("person", "city"),
    "works_for": ("person", "company"),
    "studied_at": ("person", "university"),
    "based_in": ("company", "city"),
    "founded_by": ("company", "person"),
    "located_in": ("university", "city"),
    "in_country": ("city", "country"),
    "capital": ("country", "city"),
}
#: How a trajectory gets one fact: from memory, by searching for it, or by reading it in documents it was given.
HOW: tuple[str, ...] = ("recall", "search", "read")
SPLITS: tuple[str, ...] = ("train", "heldout")


@dataclass
class KnowledgeConfig:
    """Sizes and shares of the world (deterministic for `seed`)."""

    seed: int = 0
    countries: int = 8
    cities: int = 36
    companies: int = 48
    universities: int = 14
    people: int = 200
    heldout_share: float = field(default=0.2, metadata={"help": "Share of each kind's entities held out."})
    frequent_share: dict[str, float] = field(
        default_factory=lambda: {
            "country": 0.75,
            "city": 0.6,
            "company": 0.4,
            "university": 0.5,
            "person": 0.35,
        },
        metadata={
            "help": "Per kind, the share of frequent entities (their facts are in the pretraining text)."
        },
    )
    mentions: tuple[int, int] = field(
        default=(3, 8),
        metadata={"help": "Range of a known fact's mentions in one pass of the pretraining text."},
    )

    def __post_init__(self) -> None:
        if not 0 <= self.heldout_share < 1:
            raise ValueError(f"heldout_share must be in [0, 1), got {self.heldout_share}")
        if self.countries < 2 or self.cities < 2 * self.countries:
            raise ValueError("need at least 2 countries and 2 cities per country")
        if self.people < self.companies:
            raise ValueError("need at least one person per company (each company has its own founder)")


@dataclass(frozen=True)
class Entity:
    """A made-up entity: `aliases[0]` is its name; `frequent` ones are in the pretraining text."""

    id: str
    kind: str
    aliases: tuple[str, ...]
    frequent: bool
    split: str
    detail: str

    @property
    def name(self) -> str:
        return self.aliases[0]


@dataclass(frozen=True)
class Fact:
    """`subject --relation--> object` (entity ids), its passage id, and whether pretraining mentions it."""

    subject: str
    relation: str
    object: str
    passage: str
    known: bool


@dataclass(frozen=True)
class Question:
    """A question with its gold aliases; `chain` holds the `(subject, relation)` keys of the facts it needs."""

    id: str
    question: str
    answer: tuple[str, ...]
    hops: int
    split: str
    known: bool
    subject: str
    chain: tuple[tuple[str, str], ...]

    @property
    def relations(self) -> tuple[str, ...]:
        return tuple(r for _, r in self.chain)


@dataclass(frozen=True)
class Hop:
    """One step of a trajectory: `how` it got `relation` of `subject`, and the `object` it then believes."""

    relation: str
    subject: str
    object: str
    how: str
    correct: bool


class KnowledgeWorld:
    """The entities, facts, passages and questions of one seed (build with `make_world`)."""

    def __init__(
        self, config: KnowledgeConfig, entities: list[Entity], facts: list[Fact], passages, questions
    ):
        self.config = config
        self.entities: dict[str, Entity] = {e.id: e for e in entities}
        self.facts: dict[tuple[str, str], Fact] = {(f.subject, f.relation): f for f in facts}
        self.passages: list[dict[str, str]] = passages
        self.questions: list[Question] = questions
        self._by_kind: dict[str, list[str]] = {k: [e.id for e in entities if e.kind == k] for k in KINDS}

    # ------------------------------------------------------------------ lookups
    def name(self, entity: str) -> str:
        return self.entities[entity].name

    def fact(self, subject: str, relation: str) -> Fact:
        return self.facts[(subject, relation)]

    def of_kind(self, kind: str) -> list[str]:
        """Ids of the entities of `kind`, in order."""
        return list(self._by_kind[kind])

    def split_questions(self, split: str | None = None, hops: int | None = None) -> list[Question]:
        """The questions of `split` (`None`: all), optionally only those of `hops` hops."""
        return [q for q in self.questions if split in (None, q.split) and hops in (None, q.hops)]

    # ------------------------------------------------------------------ rows and files
    def corpus_rows(self) -> list[dict[str, str]]:
        """The passage corpus: `{id, title, text}` rows (R1-Searcher's document format)."""
        return [dict(p) for p in self.passages]

    def question_rows(self, split: str | None = None) -> list[dict]:
        """Question rows: `id`, `question`, `answer` (aliases), `hops`, `split`, `known`, `subject`,
        `relations`, `support` (the passage ids of the facts of its chain)."""
        return [
            {
                "id": q.id,
                "question": q.question,
                "answer": list(q.answer),
                "hops": q.hops,
                "split": q.split,
                "known": q.known,
                "subject": q.subject,
                "relations": list(q.relations),
                "support": [self.fact(s, r).passage for s, r in q.chain],
            }
            for q in self.split_questions(split)
        ]

    def write_corpus(self, path: str | Path) -> Path:
        """Write the corpus as jsonl (its folder is created)."""
        return _write_jsonl(path, self.corpus_rows())

    def write_questions(self, path: str | Path, split: str | None = None) -> Path:
        """Write the questions of `split` (`None`: all) as jsonl."""
        return _write_jsonl(path, self.question_rows(split))

    # ------------------------------------------------------------------ pretraining text
    def pretraining_text(self, rng: random.Random) -> list[str]:
        """One pass of "pretraining" lines: every known fact mentioned a few times, in varied wordings.

        A fact is mentioned `config.mentions` times (a range, drawn per fact); about half the mentions use its
        canonical statement. Frequent people also get a short biography line with their facts in random order.
        """
        lo, hi = self.config.mentions
        lines: list[str] = []
        for f in self.facts.values():
            if not f.known:
                continue
            rel = kt.RELATIONS[f.relation]
            s, o = self.name(f.subject), self.name(f.object)
            for _ in range(rng.randint(lo, hi)):
                form = rel.statement if rng.random() < 0.5 else rng.choice(rel.paraphrases)
                lines.append(form.format(s=s, o=o))
        for pid in self._by_kind["person"]:
            if self.entities[pid].frequent:
                own = [f for f in self.facts.values() if f.subject == pid]
                rng.shuffle(own)
                lines.append(
                    " ".join(kt.statement(f.relation, self.name(pid), self.name(f.object)) for f in own)
                )
        rng.shuffle(lines)
        return lines

    # ------------------------------------------------------------------ trajectories
    def plan_hops(
        self, question: Question, choose: Callable[[int, Fact], str], rng: random.Random
    ) -> list[Hop]:
        """The hops of a trajectory for `question`: `choose(i, fact)` says how hop `i` gets its fact.

        A recalled fact comes out right when it is known and as a wrong guess of the right kind (drawn with `rng`)
        when it is not; a searched or read fact is always right (the caller asks for "search" or "read" only when
        the documents hold it). A wrong bridge carries on: the next hop asks about the wrong entity.
        """
        hops: list[Hop] = []
        subject = self.fact(*question.chain[0]).subject
        right = True
        for i, (_, relation) in enumerate(question.chain):
            fact = self.fact(subject, relation)
            how = choose(i, fact)
            if how not in HOW:
                raise ValueError(f"choose returned {how!r}; expected one of {HOW}")
            obj = fact.object
            if how == "recall" and not fact.known:
                obj = rng.choice([e for e in self._by_kind[RELATION_KINDS[relation][1]] if e != fact.object])
            right = right and obj == fact.object
            hops.append(Hop(relation, subject, obj, how, right))
            subject = obj
        return hops

    def query(self, subject: str, relation: str) -> str:
        """The search keywords for `relation` of `subject` (every keyword is in the fact's passage)."""
        return kt.query_text(relation, self.name(subject))


# ------------------------------------------------------------------------------------------------ building
def make_world(config: KnowledgeConfig | int | None = None) -> KnowledgeWorld:
    """The world of a config (or a seed): the same config always gives the same world."""
    cfg = KnowledgeConfig(seed=config) if isinstance(config, int) else (config or KnowledgeConfig())
    rng = random.Random(cfg.seed)
    taken: set[str] = set()
    entities: list[Entity] = []

    def add(kind: str, names: list[tuple[str, ...]], details: Sequence[str]) -> list[str]:
        n = len(names)
        order = list(range(n))
        rng.shuffle(order)
        frequent = set(order[: round(cfg.frequent_share.get(kind, 0.0) * n)])
        rng.shuffle(order)
        heldout = set(order[: round(cfg.heldout_share * n)])
        ids = []
        for i, aliases in enumerate(names):
            eid = f"{kind}:{i}"
            split = "heldout" if i in heldout else "train"
            entities.append(Entity(eid, kind, aliases, i in frequent, split, rng.choice(details)))
            ids.append(eid)
        return ids

    rivers = kt.word_pool(rng, 12, (2,), taken)
    words = kt.word_pool(rng, cfg.countries, (2, 3), taken)
    countries = add(
        "country",
        [tuple(f.format(w=w) for f in rng.choice(kt.COUNTRY_FORMS)) for w in words],
        kt.DETAIL_WORDS["country"],
    )
    words = kt.word_pool(rng, cfg.cities, (2,), taken)
    city_names = [rng.choice(kt.CITY_FORMS).format(w=w) for w in words]
    cities = add("city", [(c, f"{c} City") for c in city_names], rivers)
    words = kt.word_pool(rng, cfg.companies, (2,), taken)
    companies = add(
        "company",
        [(n, f"{n} Company") for n in (f"{w} {rng.choice(kt.COMPANY_SUFFIXES)}" for w in words)],
        kt.DETAIL_WORDS["company"],
    )
    words = kt.word_pool(rng, cfg.universities, (2,), taken)
    universities = add(
        "university",
        [
            (f.format(w=w), f"the {f.format(w=w)}")
            for w, f in ((w, rng.choice(kt.UNIVERSITY_FORMS)) for w in words)
        ],
        kt.DETAIL_WORDS["university"],
    )
    firsts = kt.word_pool(rng, max(20, cfg.people // 4), (2,), taken)
    lasts = kt.word_pool(rng, max(40, cfg.people // 2), (2, 3), taken)
    pairs: list[tuple[str, str]] = []
    while len(pairs) < cfg.people:
        pair = (rng.choice(firsts), rng.choice(lasts))
        if pair not in pairs:
            pairs.append(pair)
    people = add("person", [(f"{a} {b}",) for a, b in pairs], kt.DETAIL_WORDS["person"])

    links: list[tuple[str, str, str]] = []
    homes = [countries[i % len(countries)] for i in range(len(cities))]
    rng.shuffle(homes)
    links += [(c, "in_country", k) for c, k in zip(cities, homes)]
    links += [(k, "capital", rng.choice([c for c, h in zip(cities, homes) if h == k])) for k in countries]
    founders = rng.sample(people, len(companies))
    for c, p in zip(companies, founders):
        links += [(c, "based_in", rng.choice(cities)), (c, "founded_by", p)]
    links += [(u, "located_in", rng.choice(cities)) for u in universities]
    for p in people:
        links += [(p, "born_in", rng.choice(cities)), (p, "works_for", rng.choice(companies))]
        links.append((p, "studied_at", rng.choice(universities)))

    by_id = {e.id: e for e in entities}
    texts: list[tuple[str, str, tuple[str, str, str] | None]] = []
    for s, r, o in links:
        ent = by_id[s]
        detail = rng.choice(kt.PASSAGE_DETAILS[ent.kind]).format(s=ent.name, d=ent.detail)
        texts.append((ent.name, f"{kt.statement(r, ent.name, by_id[o].name)} {detail}", (s, r, o)))
    for ent in entities:
        a, b = rng.sample(kt.PROFILE_WORDS, 2)
        text = kt.PROFILES[ent.kind].format(s=ent.name, a=a, b=b)
        if len(ent.aliases) > 1 and ent.kind == "country":
            text = f"{ent.name} is officially called the {ent.aliases[1]}. {text}"
        texts.append((ent.name, text, None))
    rng.shuffle(texts)
    passages, facts = [], []
    for i, (title, text, link) in enumerate(texts):
        pid = f"kw{i:05d}"
        passages.append({"id": pid, "title": title, "text": text})
        if link is not None:
            s, r, o = link
            facts.append(Fact(s, r, o, pid, by_id[s].frequent))
    world = KnowledgeWorld(cfg, entities, facts, passages, [])
    world.questions = _make_questions(world, rng)
    return world


def _make_questions(world: KnowledgeWorld, rng: random.Random) -> list[Question]:
    out: list[Question] = []

    def add(subject: str, chain: list[tuple[str, str]], template: str) -> None:
        ent = world.entities[subject]
        facts = []
        s = subject
        for _, r in chain:
            facts.append(world.fact(s, r))
            s = facts[-1].object
        answer = world.entities[facts[-1].object].aliases
        out.append(
            Question(
                id=f"kq{len(out):05d}",
                question=template.format(s=ent.name),
                answer=answer,
                hops=len(chain),
                split=ent.split,
                known=all(f.known for f in facts),
                subject=ent.name,
                chain=tuple((f.subject, f.relation) for f in facts),
            )
        )

    for f in list(world.facts.values()):
        add(f.subject, [(f.subject, f.relation)], rng.choice(kt.RELATIONS[f.relation].questions))
    for (r1, r2), template in kt.TWO_HOP_QUESTIONS.items():
        for subject in world.of_kind(RELATION_KINDS[r1][0]):
            add(subject, [(subject, r1), ("", r2)], template)
    return out


def _write_jsonl(path: str | Path, rows: Sequence[dict]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return p


def heldout_benchmark(seed: int = 0, directory: str | Path | None = None) -> dict[str, object]:
    """The `toy-heldout` benchmark: the world's held-out questions and its corpus, written as jsonl files.

    Args:
        seed: The world's seed (the shipped toy-searcher-base was trained on seed 0's world).
        directory: Where to write `heldout.jsonl` and `corpus.jsonl` (default: a folder in the system's temp
            directory, one per seed; rewritten each call, the content is the same for a seed).

    Returns:
        `{"name": "toy-heldout", "questions": Path, "corpus": Path, "retriever": "bm25", "n": int}`: the
        questions file (`question_rows`, in a seeded shuffled order) has `question` and `answer` (a list of
        aliases) fields; BM25 over the corpus is the default retriever.
    """
    world = make_world(seed)
    folder = (
        Path(directory)
        if directory is not None
        else Path(tempfile.gettempdir()) / f"retrosearch-toy-knowledge-{seed}"
    )
    rows = world.question_rows("heldout")
    random.Random(seed).shuffle(rows)  # a mix of hops and known facts in any first N rows (`--limit N`)
    questions = _write_jsonl(folder / "heldout.jsonl", rows)
    corpus = world.write_corpus(folder / "corpus.jsonl")
    n = len(world.split_questions("heldout"))
    return {"name": "toy-heldout", "questions": questions, "corpus": corpus, "retriever": "bm25", "n": n}


__all__ = [
    "HOW",
    "KINDS",
    "RELATION_KINDS",
    "SPLITS",
    "Entity",
    "Fact",
    "Hop",
    "KnowledgeConfig",
    "KnowledgeWorld",
    "Question",
    "SearchTags",
    "completion_segments",
    "heldout_benchmark",
    "make_world",
]
