"""Retro-Search on search traces: the untaken path at each query, with a scripted policy and a fake retriever."""

from __future__ import annotations

import json

import pytest

from retrosearch.backends import ScriptedBackend
from retrosearch.retro import RetroSearchConfig, revise
from retrosearch.retro.search_traces import (
    count_retrievals,
    cuts,
    environment_spans,
    find_retrievals,
    model_text,
    parse_search_trace,
)
from retrosearch.rl.protocols import R1_SEARCHER
from retrosearch.rl.retrievers.base import Passage
from retrosearch.tree import SearchTree

Q1 = "<|begin_of_query|> Film X director<|end_of_query|>"
Q2 = "<|begin_of_query|> Ann Lee birthplace<|end_of_query|>"
BOTH = "<|begin_of_query|> Film X director birthplace<|end_of_query|>"
QUESTION = "Where was the director of Film X born?"


def docs(text: str, title: str = "Film X") -> str:
    return R1_SEARCHER.format_documents([Passage("p", title, text)])


def search_trace(first_docs: str) -> str:
    """A correct rollout that retrieves twice: the director, then the director's birthplace."""
    return (
        " I need the director of Film X first. "
        + Q1
        + docs(first_docs)
        + "The director is Ann Lee. Now I need where Ann Lee was born, so I will search for it. "
        + Q2
        + docs("Ann Lee is a film director born in Taipei.", "Ann Lee")
        + "So Ann Lee, the director of Film X, was born in Taipei.</think>\n\n<answer> Taipei </answer>"
    )


#: The answer is already in the first documents: the second retrieval is not needed.
KNOWN = search_trace("Film X (1999) was directed by Ann Lee, who was born in Taipei.")
#: The first documents do not say where she was born: without the second retrieval the model guesses.
UNKNOWN = search_trace("Film X (1999) was directed by Ann Lee.")


def policy(prompt: str, ctx) -> str | list[str]:
    """Searches first (its favourite), else answers from what it has read: Taipei only if a document said so."""
    seen = prompt.split("Assistant: <think>")[-1]
    where = "Taipei" if "born in Taipei" in seen else "Paris"
    if prompt.endswith("</think>\n\n"):
        return f"<answer> {where} </answer>"
    if prompt.endswith("director of Film X first. "):
        return [Q1, "It is probably Bob Stone, born in Paris.</think>\n\n"]
    if prompt.endswith("so I will search for it. "):
        return [Q2, f"So she was born in {where}.</think>\n\n"]
    return None


def combined_policy(prompt: str, ctx) -> str | list[str] | None:
    """Banned from its first query, it writes a step, then asks for both facts in one query."""
    if prompt.endswith("director of Film X first. "):
        return [Q1, "I will ask for both at once.\n\n"]
    if prompt.endswith("both at once.\n\n"):
        return BOTH + " never written"
    if prompt.endswith("<|end_of_documents|>\n\n") and "born in Taipei" in prompt.split("both at once")[-1]:
        return "So it is Taipei.</think>\n\n<answer> Taipei </answer> never written"
    return policy(prompt, ctx)


class FakeRetriever:
    """Passages by exact query; records every batch of queries it is asked."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def retrieve(self, queries, k):
        self.calls.append(list(queries))
        table = {
            "Film X director birthplace": [Passage("b", "Film X", "Directed by Ann Lee, born in Taipei.")]
        }
        return [table.get(q, [])[:k] for q in queries]


def run(text: str, model=policy, **cfg):
    row = {"question": QUESTION, "answer": ["Taipei"], "gen_text_store": text}
    config = RetroSearchConfig(protocol="r1-searcher", n=1, temperature=0.0, **cfg)
    retriever = FakeRetriever()
    return revise(row, ScriptedBackend(model), config, retriever=retriever), retriever


# ------------------------------------------------------------------------------------------------ layout
def test_the_layout_of_a_search_trace_finds_queries_documents_and_cuts():
    trace = parse_search_trace({"question": QUESTION, "answer": ["Taipei"], "gen_text_store": KNOWN})
    assert trace.gold == '["Taipei"]' and trace.solution == "<answer> Taipei </answer>"
    assert trace.metadata == {"protocol": "r1-searcher", "retrievals": 2}
    found = find_retrievals(trace.thinking, R1_SEARCHER)
    assert [r.query for r in found] == ["Film X director", "Ann Lee birthplace"]
    spans = environment_spans(trace.thinking, R1_SEARCHER)
    assert [trace.thinking[s:e] for s, e in spans] == [
        docs("Film X (1999) was directed by Ann Lee, who was born in Taipei."),
        docs("Ann Lee is a film director born in Taipei.", "Ann Lee"),
    ]
    assert "<|begin_of_documents|>" not in model_text(trace.thinking, R1_SEARCHER)
    assert [
        (c.kind, trace.thinking[c.offset :].startswith("<|begin_of_query|>"))
        for c in cuts(trace, "r1-searcher")
    ] == [
        ("query", True),
        ("query", True),
    ]
    assert cuts(trace, None) == []  # no switch words, and queries are not cuts without a protocol
    # A query without documents (the rollout ended there) is not a retrieval.
    assert count_retrievals("a " + Q1 + " b", R1_SEARCHER) == 0


def test_a_switch_inside_documents_is_the_environments_not_a_cut():
    text = (
        " Look it up. " + Q1 + docs("Wait, this passage says 42.") + "So 42.</think>\n\n<answer> 42 </answer>"
    )
    text = text.replace("(1)Title", "\n(1)Title").replace("Text: Wait", "\n\nWait")
    trace = parse_search_trace(text)
    assert trace.num_thoughts == 2  # the trace splitter sees "Wait" open a step...
    assert [c.kind for c in cuts(trace, R1_SEARCHER)] == ["query"]  # ...but it is inside the documents


# ------------------------------------------------------------------------------------------------ revise
def test_the_second_retrieval_is_removed_when_the_first_documents_already_answer():
    res, retriever = run(KNOWN)
    assert res.status == "revised", res.reason
    cut = KNOWN.index(Q2)
    assert (
        res.revised.render()
        == KNOWN[:cut] + "So she was born in Taipei.</think>\n\n<answer> Taipei </answer>"
    )
    assert (
        res.stats["retrievals_before"],
        res.stats["retrievals_after"],
        res.stats["retrievals_removed"],
    ) == (2, 1, 1)
    assert res.stats["thinking_tokens_after"] < res.stats["thinking_tokens_before"]
    (rev,) = res.revisions
    assert (rev.cut_kind, rev.kind, rev.retrievals_before, rev.retrievals_after) == (
        "query",
        "overretrieval",
        2,
        1,
    )
    first, second = res.explorations
    assert (first.cut_kind, first.accepted, first.remainder_retrievals) == ("query", False, 2)
    assert first.reason == "no correct rollout" and first.rollouts[0].note.startswith("wrong answer")
    assert (second.cut_kind, second.accepted, second.remainder_retrievals) == ("query", True, 1)
    assert second.rollouts[0].retrievals == 1 and second.reason.startswith(
        "rollout 0 kept: 1 retrieval(s) instead of 2"
    )
    assert retriever.calls == []  # the rollouts answered without searching


def test_a_trace_whose_answer_needs_the_retrieval_stays_unchanged():
    res, _ = run(UNKNOWN)
    assert res.status == "unchanged" and res.revised.render() == UNKNOWN
    assert res.stats["retrievals_before"] == res.stats["retrievals_after"] == 2
    assert [e.reason for e in res.explorations] == ["no correct rollout", "no correct rollout"]
    paris = [n for n in res.tree if n.origin == "rollout" and "Paris" in n.text]
    assert paris and all(n.correct is False and not n.accepted for n in paris)


def test_the_tree_holds_the_untaken_path_at_each_query_and_documents_as_environment():
    res, _ = run(KNOWN)
    tree = SearchTree.from_dict(res.tree.to_dict())
    for e in res.explorations:
        prefix = tree.text(e.node, start=tree.root)
        rest = KNOWN.lstrip()[len(prefix) :]  # the trace's own text at the cut: its query comes next
        assert KNOWN.lstrip().startswith(prefix) and rest.startswith("<|begin_of_query|>")
        first = tree[e.rollouts[0].nodes[0]]
        assert first.parent == e.node and first.meta["phase"] == "first_step"
        assert "<|begin_of_query|>" not in first.text  # the untaken path: the query tag banned
    env = [n for n in tree if n.origin == "environment"]
    assert len(env) == 2 and all(
        n.meta["original"] and n.text.startswith("\n\n<|begin_of_documents|>") for n in env
    )
    kept = [n for n in tree if n.accepted]
    assert env[0] in kept and env[1] not in kept  # the second documents are on the replaced remainder
    assert tree.meta["protocol"] == "r1-searcher" and tree.meta["explorations"][1]["cut_kind"] == "query"


def test_a_rollout_that_searches_again_is_served_by_the_retriever_through_the_engine():
    res, retriever = run(UNKNOWN, combined_policy)
    assert retriever.calls == [["Film X director birthplace"]]
    assert res.status == "revised" and res.stats["retrievals_after"] == 1
    assert res.revised.render().count("<|begin_of_query|>") == 1 and BOTH in res.revised.render()
    (env,) = [n for n in res.tree if n.origin == "environment" and not n.meta.get("original")]
    assert env.meta["query"] == "Film X director birthplace" and env.accepted
    assert env.text == docs("Directed by Ann Lee, born in Taipei.")
    rollout_ids = res.explorations[0].rollouts[0].nodes
    assert env.id in rollout_ids and res.explorations[0].rollouts[0].retrievals == 1
    # The next query (the combined one) was explored too, and its untaken path guessed wrong.
    assert [e.cut_kind for e in res.explorations] == ["query", "query"] and not res.explorations[1].accepted


def test_a_rollout_may_not_search_more_than_the_remainder_did():
    one = (
        " Look it up. "
        + BOTH
        + docs("Directed by Ann Lee, born in Taipei.")
        + "Taipei.</think>\n\n<answer> Taipei </answer>"
    )

    def greedy(prompt, ctx):
        if prompt.endswith("Look it up. "):
            return [BOTH, "Let me search step by step.\n\n"]
        if prompt.endswith("step by step.\n\n"):
            return Q1
        if prompt.endswith("<|end_of_documents|>\n\n"):
            return Q2
        return None

    res, retriever = run(one, greedy, token_budget=False)  # only the retrieval budget cuts it
    (rec,) = res.explorations[0].rollouts
    assert rec.finish_reason == "max_retrievals" and not rec.accepted and res.status == "unchanged"
    assert retriever.calls == [["Film X director"]]  # its second query was never sent


def test_f1_grades_when_asked_and_cover_em_is_the_default():
    assert RetroSearchConfig(protocol="r1-searcher").verifier == "cover_em"
    assert RetroSearchConfig(protocol="r1-searcher", verifier="f1").verifier == "f1"
    res, _ = run(KNOWN, verifier="f1")
    assert res.status == "revised"
    with pytest.raises(ValueError, match="protocol"):
        RetroSearchConfig(protocol="bing")


def test_a_search_row_without_a_protocol_is_an_error_row():
    out = revise(
        [{"question": QUESTION, "answer": "Taipei", "gen_text_store": KNOWN}], ScriptedBackend(policy)
    )
    assert out[0].status == "error" and "protocol" in out[0].reason


def test_rl_search_groups_are_revised_rollout_by_rollout():
    from retrosearch.engine import Engine
    from retrosearch.rl.rollout import SearchRolloutConfig, retrieval_tool, search_rollout

    def searcher(prompt, ctx):
        if prompt.endswith("Assistant: <think>"):
            return " I need the director of Film X first. " + Q1
        if prompt.endswith("<|end_of_documents|>\n\n") and "so I will" not in prompt:
            return (
                "The director is Ann Lee. Now I need where Ann Lee was born, so I will search for it. " + Q2
            )
        return "So Ann Lee, the director of Film X, was born in Taipei.</think>\n\n<answer> Taipei </answer>"

    class Table:
        def retrieve(self, queries, k):
            return [
                [Passage("p", "Film X", "Film X (1999) was directed by Ann Lee, who was born in Taipei.")]
            ] * len(queries)

    backend = ScriptedBackend(searcher)
    engine = Engine(backend, tools={"retrieve": retrieval_tool(Table(), 1)})
    (group,) = engine.run(
        [search_rollout(QUESTION, backend, SearchRolloutConfig(top_k=1), meta={"gold": "Taipei"})]
    )
    assert group.rollouts[0].retrievals == 2
    (res,) = revise(
        group, ScriptedBackend(policy), RetroSearchConfig(protocol="r1-searcher", n=1), retriever=Table()
    )
    assert res.status == "revised" and res.stats["retrievals_removed"] == 1


# ------------------------------------------------------------------------------------------------ real data
def test_every_published_r1_searcher_rollout_parses_with_its_retrievals(shared_data):
    for path in sorted((shared_data / "qa" / "r1searcher" / "outputs").glob("*.jsonl")):
        rows = [json.loads(line) for line in path.open(encoding="utf-8")]
        for row in rows:
            trace = parse_search_trace(row)
            text = row["gen_text_store"]
            assert trace.render() == text, path.name
            # Every query of the published rollouts was answered with documents.
            assert trace.metadata["retrievals"] == text.count("<|begin_of_documents|>"), path.name
            assert model_text(trace.thinking, R1_SEARCHER).count("<|begin_of_documents|>") == 0
            assert trace.metadata["pred_ans"] == row["pred_ans"] and trace.question == row["question"]
        assert len(rows) in (125, 500)


# ------------------------------------------------------------------------------------------------ analysis
def test_the_tables_count_the_retrievals_removed_per_trace():
    from retrosearch import analysis

    results = [run(KNOWN)[0], run(UNKNOWN)[0]]
    tt = analysis.trace_table(results)
    assert tt["retrievals_before"].tolist() == [2, 2] and tt["retrievals_after"].tolist() == [1, 2]
    assert tt["retrievals_removed"].tolist() == [1, 0]
    bt = analysis.boundary_table(results)
    assert bt["cut_kind"].tolist() == ["query"] * 4
    assert bt["remainder_retrievals"].tolist() == [2, 1, 2, 1] and bt["accepted"].tolist() == [
        False,
        True,
        False,
        False,
    ]
    s = analysis.summary(results).iloc[0]
    assert (
        s["retrievals_before"],
        s["retrievals_after"],
        s["retrievals_removed"],
        s["traces_with_removal"],
    ) == (4, 3, 1, 1)


def test_the_before_after_plot_and_the_tree_drawing_show_the_queries():
    import matplotlib

    matplotlib.use("Agg")
    from retrosearch import analysis

    results = [run(KNOWN)[0], run(UNKNOWN)[0]]
    ax = analysis.plot_retrievals(results)
    heights = [p.get_height() for p in ax.patches]
    assert heights == [0, 0, 2, 0, 1, 1]  # before: two traces at 2; after: one at 1, one at 2
    assert ax.get_title() == "Retrievals before vs after: 1 of 4 removed (25%)"
    ax = analysis.draw_tree(results[0])
    (marks,) = [c for c in ax.collections if c.get_label() == "query cuts"]
    assert len(marks.get_offsets()) == 2
    assert sorted(t.get_text() for t in ax.texts if t.get_text().startswith("query")) == [
        "query cut",
        "query kept",
    ]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "documents" in labels and "untaken path at a query" in labels


def test_without_a_retriever_a_rollout_that_queries_ends_and_the_trace_is_still_searched():
    row = {"question": QUESTION, "answer": ["Taipei"], "gen_text_store": UNKNOWN}
    res = revise(row, ScriptedBackend(combined_policy), RetroSearchConfig(protocol="r1-searcher", n=1))
    assert res.status == "unchanged" and res.explorations[0].rollouts[0].finish_reason == "error"
