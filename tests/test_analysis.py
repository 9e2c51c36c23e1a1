"""`retrosearch.analysis`: tables, tree reading, drawing and plots on revisions whose right answers are known."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pd = pytest.importorskip("pandas")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from retrosearch import analysis  # noqa: E402
from retrosearch.backends import ScriptedBackend  # noqa: E402
from retrosearch.retro import PromptFormat, RetroSearchConfig, revise  # noqa: E402
from retrosearch.retro.batch import run_batch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RAW = PromptFormat(use_chat_template=False, raw_template="Q: {question}\n")

from scripted_examples import (  # noqa: E402
    OVERTHINKING,
    OVERTHINKING_MODEL,
    TWICE,
    TWICE_MODEL,
    UNDERTHINKING,
    UNDERTHINKING_MODEL,
    random_case,
)

# Without the "add 12" keys the only rollouts (after "22 + 110 = 132.") answer 133: nothing is kept.
WRONG_MODEL = {k: v for k, v in UNDERTHINKING_MODEL.items() if "add 12" not in k}


def count_tokens(text: str) -> int:
    """Tokens of `text` for the scripted model (the unit of every count in a tree built with it)."""
    return len(ScriptedBackend({}).tokenize(text))


def run(trace: str, model: dict, gold: str | None = None, n: int = 2):
    cfg = RetroSearchConfig(prompt=RAW, n=n)
    return revise({"question": "q", "response": trace, "gold": gold}, ScriptedBackend(model), cfg)


@pytest.fixture(scope="module")
def over():
    return run(OVERTHINKING, OVERTHINKING_MODEL, gold="42")


@pytest.fixture(scope="module")
def twice():
    return run(TWICE, TWICE_MODEL, gold="5", n=1)


@pytest.fixture(scope="module")
def mix():
    """Revised (over-thinking), revised (under-thinking), unchanged, skipped (wrong gold), error (no response)."""
    out = [
        run(OVERTHINKING, OVERTHINKING_MODEL, gold="42"),
        run(UNDERTHINKING, UNDERTHINKING_MODEL, gold="132"),
        run(UNDERTHINKING, WRONG_MODEL, gold="132"),
        run(OVERTHINKING, OVERTHINKING_MODEL, gold="41"),
        revise({"question": "q"}, ScriptedBackend({}), RetroSearchConfig(prompt=RAW)),
    ]
    for k, r in enumerate(out):
        r.index = k
    return out


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_importing_the_module_loads_no_heavy_library():
    code = "import sys, retrosearch.analysis; print(sorted({'pandas', 'matplotlib', 'networkx', 'torch'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# --------------------------------------------------------------------------- tables
def test_trace_table_of_the_overthinking_trace(over):
    tt = analysis.trace_table(over)
    assert len(tt) == 1
    row = tt.iloc[0]
    assert (row["status"], row["thoughts_before"], row["thoughts_after"]) == ("revised", 3, 1)
    assert (row["steps_before"], row["steps_after"]) == (4, 2)
    assert (row["rollouts"], row["boundaries_explored"], row["accepted"], row["first_accepted_thought"]) == (
        2,
        1,
        1,
        0,
    )
    # The kept thinking is the first thought.
    kept, cut = (
        "We need 6 * 7.\n\n6 * 7 = 42.",
        "\n\nWait, let me double-check. 7 * 6 = 42. Yes.\n\nHmm, also 6+6+6+6+6+6+6 = 42.",
    )
    assert row["thinking_tokens_after"] == count_tokens(kept)
    assert (
        row["saved_tokens"]
        == row["thinking_tokens_before"] - row["thinking_tokens_after"]
        == count_tokens(cut)
    )
    assert row["saved_share"] == pytest.approx(count_tokens(cut) / row["thinking_tokens_before"])
    assert (row["overthinking"], row["underthinking"]) == (1, 0)
    # Both rollouts close the thinking in 6 tokens and answer in 12.
    assert row["tokens_spent"] == 2 * count_tokens("\n</think>\n\nThe answer is \\boxed{42}.")


def test_boundary_table_of_the_overthinking_trace(over):
    bt = analysis.boundary_table([over])
    assert len(bt) == 1
    row = bt.iloc[0]
    assert (row["exploration"], row["boundary"], row["thought"]) == (0, 0, 0)
    assert (row["rollouts"], row["correct_rollouts"], bool(row["accepted"]), row["kind"]) == (
        2,
        2,
        True,
        "overthinking",
    )
    closing = "\n</think>\n\nThe answer is \\boxed{42}."
    remainder = "\n\nWait, let me double-check. 7 * 6 = 42. Yes.\n\nHmm, also 6+6+6+6+6+6+6 = 42." + closing
    assert row["prefix_tokens"] == count_tokens("We need 6 * 7.\n\n6 * 7 = 42.")
    assert row["remainder_tokens"] == count_tokens(remainder) == over.revisions[0].tokens_before
    assert row["rollout_tokens"] == [count_tokens(closing)] * 2
    assert row["accepted_tokens"] == count_tokens(closing) == over.revisions[0].tokens_after
    assert row["saved_tokens"] == row["remainder_tokens"] - row["accepted_tokens"]
    assert row["position"] == pytest.approx(
        row["prefix_tokens"] / (row["prefix_tokens"] + row["remainder_tokens"])
    )


def test_underthinking_cut_is_labelled_underthinking(mix):
    bt = analysis.boundary_table(mix[1])
    assert bt["kind"].tolist() == ["underthinking"]
    assert bt["remainder_tokens"].tolist() == [mix[1].revisions[0].tokens_before]


def test_two_revisions_at_the_same_switch_are_two_rows_with_their_own_remainders(twice):
    assert [(r.boundary, r.kind) for r in twice.revisions] == [(0, "underthinking"), (0, "overthinking")]
    bt = analysis.boundary_table(twice)
    assert bt["exploration"].tolist() == [0, 1]
    assert bt["boundary"].tolist() == [0, 0]
    assert bt["kind"].tolist() == ["underthinking", "overthinking"]
    # Each exploration competed with the remainder as it stood then (the second one inside the first rollout).
    assert bt["remainder_tokens"].tolist() == [r.tokens_before for r in twice.revisions]
    assert bt["accepted_tokens"].tolist() == [r.tokens_after for r in twice.revisions]
    assert bt["remainder_tokens"].iloc[1] == count_tokens(
        "\n\nWait, check 5.\n</think>\n\nThe answer is \\boxed{5}."
    )
    assert bt["prefix_tokens"].iloc[1] > bt["prefix_tokens"].iloc[0]


def test_blank_first_steps_are_retried_under_the_ban_and_never_open_a_switch():
    # The model writes blank lines before its next step, and that step would be a switch ("Hmm, ..."): the
    # ban holds for the first real step however many blank lines come first, so nothing is accepted.
    trace = (
        "<think>\nWe add one and zero.\n\nWait, zero is nothing so it stays the same as before.\n\n"
        "Hmm, adding zero changes nothing at all here.\n</think>\n\nThe answer is \\boxed{1}."
    )
    model = {
        "one and zero.": "\n\n",
        "one and zero.\n\n": "\n\n",
        "one and zero.\n\n\n\n": "Hmm, so 1.\n</think>\n\nThe answer is \\boxed{1}.",
    }
    res = run(trace, model, gold="1", n=1)
    assert res.status == "unchanged" and res.revisions == []
    bt = analysis.boundary_table(res)
    assert bt["boundary"].tolist() == [0, 1] and not bt["accepted"].any()
    first = [n for n in res.tree if n.meta.get("boundary") == 0]
    assert [n.text for n in first] == ["\n\n", "\n\n", ""]  # two blank steps, then the banned switch
    assert all(n.meta["phase"] == "first_step" for n in first)


def test_a_model_with_another_think_tag_is_read_from_the_records():
    # The revision model closes its thinking with "</reasoning>": the tables and the drawing take "closed" and
    # the outcome from the search's records, not from a tag of their own.
    fmt = PromptFormat(use_chat_template=False, raw_template="Q: {question}\n", think_close="</reasoning>")

    def model(prompt, ctx):
        if prompt.endswith("6 * 7 = 42."):
            return f"\n</reasoning> The answer is \\boxed{{{41 + ctx.sample}}}."
        return None

    cfg = RetroSearchConfig(prompt=fmt, n=2)
    res = revise({"question": "q", "response": OVERTHINKING, "gold": "42"}, ScriptedBackend(model), cfg)
    assert res.status == "revised"
    rl = analysis.rollout_lengths(res)
    assert rl["outcome"].tolist() == ["wrong", "accepted"] and rl["verdict"].tolist() == [
        "incorrect",
        "correct",
    ]
    faces = _collection(analysis.draw_tree(res), "nodes").get_facecolors()
    assert _count_color(faces, analysis.NODE_COLORS["rollout_wrong"]) == 1
    assert _count_color(faces, analysis.NODE_COLORS["rollout_correct"]) == 1


def test_tables_agree_with_the_search_counters_on_random_traces():
    """Random traces and rollouts that may switch again (several revisions per trace, split nodes)."""
    seen_multi = seen_split = 0
    for case in range(60):
        trace, gold, model = random_case(case)
        cfg = RetroSearchConfig(prompt=RAW, n=3, seed=case)
        res = revise({"question": "q", "response": trace, "gold": gold}, ScriptedBackend(model), cfg)
        seen_multi += len(res.revisions) > 1
        seen_split += any(n.meta.get("split") for n in res.tree)
        ex = analysis.explorations(res)
        assert ex == analysis.explorations(res.tree.to_networkx()), case  # the tree carries them too
        assert len(analysis.boundary_table(res)) == len(ex), case
        assert len(ex) == res.stats["boundaries_explored"], case
        assert sum(len(e["rollouts"]) for e in ex) == res.stats["rollouts"], case
        assert sum(r["tokens"] for e in ex for r in e["rollouts"]) == res.stats["tokens_spent"], case
        kept = [
            (
                e["boundary"],
                e["remainder_tokens"],
                next(r["tokens"] for r in e["rollouts"] if r["accepted"]),
                e["kind"],
            )
            for e in ex
            if e["accepted"]
        ]
        assert kept == [(v.boundary, v.tokens_before, v.tokens_after, v.kind) for v in res.revisions], case
    assert seen_multi and seen_split  # the cases this test is for did occur


def test_nothing_kept_gives_rows_without_kind(mix):
    bt = analysis.boundary_table(mix[2])
    assert bt["boundary"].tolist() == [0, 1] and not bt["accepted"].any()
    # At switch 0 nothing was asked (no "add 12" key: the script's fallback answer); at switch 1 the only
    # continuation answers 133.
    assert bt["correct_rollouts"].tolist() == [0, 0]
    assert bt["kind"].isna().all() and bt["accepted_tokens"].isna().all()


def test_rollout_lengths_one_row_per_rollout_with_outcomes(over, mix):
    rl = analysis.rollout_lengths(over)
    assert rl["outcome"].tolist() == ["accepted", "correct"]
    assert rl["tokens"].tolist() == [count_tokens("\n</think>\n\nThe answer is \\boxed{42}.")] * 2
    rl = analysis.rollout_lengths(mix)
    searched = [r for r in mix if r.status in ("revised", "unchanged")]
    assert len(rl) == sum(r.stats["rollouts"] for r in searched)
    assert rl.groupby("index")["tokens"].sum().tolist() == [r.stats["tokens_spent"] for r in searched]
    # The unchanged trace: at switch 0 the script has nothing to say (an empty rollout that never closes its
    # thinking); at switch 1 both rollouts close it and answer 133.
    assert rl.loc[rl["index"] == 2, "outcome"].tolist() == ["unfinished", "unfinished", "wrong", "wrong"]


def test_summary_of_a_mixed_run(mix):
    s = analysis.summary(mix)
    assert len(s) == 1
    row = s.iloc[0]
    assert (row["traces"], row["revised"], row["unchanged"], row["skipped"], row["errors"]) == (5, 2, 1, 1, 1)
    assert row["revised_share"] == pytest.approx(2 / 3)
    searched = mix[:3]
    before = sum(r.stats["thinking_tokens_before"] for r in searched)
    after = sum(r.stats["thinking_tokens_after"] for r in searched)
    assert row["thinking_tokens_before"] == pytest.approx(before / 3)
    assert row["thinking_tokens_after"] == pytest.approx(after / 3)
    shares = [1 - r.stats["thinking_tokens_after"] / r.stats["thinking_tokens_before"] for r in searched]
    assert row["mean_cut_pct"] == pytest.approx(100 * sum(shares) / 3)
    assert row["total_cut_pct"] == pytest.approx(100 * (before - after) / before)
    # Explored switches: 1 (over) + 1 (under) + 2 (unchanged); 2 kept.
    assert (row["explored"], row["accepted"]) == (4, 2) and row["acceptance_rate"] == 0.5
    spent = sum(r.stats["tokens_spent"] for r in searched)
    assert row["spent_per_saved"] == pytest.approx(spent / (before - after))
    assert (row["overthinking"], row["underthinking"], row["overthinking_share"]) == (1, 1, 0.5)
    assert row["mean_first_accepted_thought"] == 0.0


def test_summary_without_any_saving_reports_infinite_cost(mix):
    row = analysis.summary([mix[2]]).iloc[0]
    assert row["revised_share"] == 0 and row["spent_per_saved"] == math.inf
    assert math.isnan(row["overthinking_share"])


def test_trace_table_keeps_skipped_and_error_rows_with_missing_numbers(mix):
    tt = analysis.trace_table(mix)
    assert tt["status"].tolist() == ["revised", "revised", "unchanged", "skipped", "error"]
    assert tt.loc[3:, "thinking_tokens_before"].isna().all() and tt.loc[3:, "accepted"].isna().all()
    assert "not correct" in tt.loc[3, "reason"] and "response" in tt.loc[4, "reason"]
    assert tt.loc[2, "saved_tokens"] == 0 and tt.loc[2, "first_accepted_thought"] is pd.NA


def test_acceptance_by_thought_counts_explored_and_kept_switches(mix):
    ab = analysis.acceptance_by_thought(mix)
    assert ab.index.tolist() == [0, 1]
    assert ab["explored"].tolist() == [3, 1]
    assert ab["accepted"].tolist() == [2, 0]
    assert ab["acceptance_rate"].tolist() == pytest.approx([2 / 3, 0.0])
    assert ab["overthinking"].tolist() == [1, 0] and ab["underthinking"].tolist() == [1, 0]
    by_pos = analysis.acceptance_by_thought(mix, by="position", bins=4)
    assert len(by_pos) == 4 and by_pos["explored"].sum() == 4 and by_pos["accepted"].sum() == 2
    with pytest.raises(ValueError, match="by must be"):
        analysis.acceptance_by_thought(mix, by="depth")


# --------------------------------------------------------------------------- loading
def _write_input(path: Path) -> None:
    rows = [
        {"question": "q", "response": OVERTHINKING, "gold": "42"},
        {"question": "q", "response": UNDERTHINKING, "gold": "132"},
        {"question": "q", "response": OVERTHINKING, "gold": "41"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")


def _comparable(df):
    return df.drop(columns=["row_id", "reason"], errors="ignore").reset_index(drop=True)


def test_journal_round_trip_with_trees_gives_the_same_tables(tmp_path):
    _write_input(tmp_path / "in.jsonl")
    model = {**OVERTHINKING_MODEL, **UNDERTHINKING_MODEL}
    cfg = RetroSearchConfig(prompt=RAW, n=2)
    run_batch(
        tmp_path / "in.jsonl",
        tmp_path / "out" / "revisions.jsonl",
        ScriptedBackend(model),
        cfg,
        save_trees=True,
        progress=False,
    )
    loaded = analysis.load_results(tmp_path / "out" / "revisions.jsonl")
    assert [r.status for r in loaded] == ["revised", "revised", "skipped", "error"]
    assert [r.row_id for r in loaded] == [f"in.jsonl:{k}" for k in (1, 2, 3, 4)]
    memory = revise(
        [json.loads(line) for line in (tmp_path / "in.jsonl").read_text().splitlines()[:3]],
        ScriptedBackend(model),
        cfg,
    )
    pd.testing.assert_frame_equal(
        _comparable(analysis.trace_table(loaded)).iloc[:3], _comparable(analysis.trace_table(memory))
    )
    pd.testing.assert_frame_equal(
        _comparable(analysis.boundary_table(loaded)), _comparable(analysis.boundary_table(memory))
    )
    # A folder holding the journal loads the same; so do the records themselves.
    assert analysis.trace_table(tmp_path / "out").equals(analysis.trace_table(loaded))
    records = [json.loads(line) for line in (tmp_path / "out" / "revisions.jsonl").read_text().splitlines()]
    assert analysis.trace_table(records).equals(analysis.trace_table(loaded))
    # `RevisionResult.to_record()` output, through JSON.
    again = analysis.load_results([json.loads(json.dumps(r.to_record())) for r in memory])
    pd.testing.assert_frame_equal(analysis.boundary_table(again), analysis.boundary_table(memory))


def test_journal_without_trees_gives_every_table_from_the_exploration_records(tmp_path):
    # Every journal line carries its exploration records: the per-switch tables need no --save-trees (only
    # drawing a tree does), and they are the same as from a journal with trees.
    _write_input(tmp_path / "in.jsonl")
    for name, trees in (("j.jsonl", False), ("t.jsonl", True)):
        run_batch(
            tmp_path / "in.jsonl",
            tmp_path / name,
            ScriptedBackend(OVERTHINKING_MODEL),
            RetroSearchConfig(prompt=RAW, n=1),
            save_trees=trees,
            progress=False,
        )
    loaded = analysis.load_results(tmp_path / "j.jsonl")
    assert all(r.tree is None for r in loaded)
    assert analysis.summary(loaded).iloc[0]["revised"] == 1
    bt = analysis.boundary_table(loaded)
    assert len(bt) == analysis.trace_table(loaded)["boundaries_explored"].sum() > 0
    pd.testing.assert_frame_equal(bt, analysis.boundary_table(tmp_path / "t.jsonl"))
    with pytest.raises(ValueError, match="no search tree"):
        analysis.draw_tree(loaded[0])


def test_results_without_exploration_records_are_refused_with_what_to_do(over):
    # A journal line of an older version: stats say switches were explored, but no records came with it.
    rec = over.to_record(with_tree=False)
    del rec["explorations"]
    with pytest.raises(ValueError, match="revise the traces again"):
        analysis.boundary_table([rec])
    with pytest.warns(UserWarning, match="1 of 2 searched results have no exploration records"):
        assert len(analysis.rollout_lengths([rec, {**over.to_record(), "index": 1}])) == 2


def test_a_torn_last_line_is_left_out_and_a_bad_line_before_it_is_named(tmp_path, over):
    # Journal records start with their row id (so a line cut off mid-write is known for one).
    good = json.dumps({"row_id": "a", **over.to_record()})
    (tmp_path / "torn.jsonl").write_text(good + "\n" + good[:40])
    assert len(analysis.load_results(tmp_path / "torn.jsonl")) == 1
    (tmp_path / "bad.jsonl").write_text(good + "\n{oops\n" + good + "\n")
    with pytest.raises(ValueError, match="line 2"):
        analysis.load_results(tmp_path / "bad.jsonl")
    (tmp_path / "norev.jsonl").write_text(
        json.dumps({"row_id": "a", "status": "revised", "revisions": [{"x": 1}]}) + "\n"
    )
    with pytest.raises(ValueError, match="revisions"):
        analysis.load_results(tmp_path / "norev.jsonl")


def test_folders_without_or_with_several_journals_are_refused(tmp_path, over):
    with pytest.raises(ValueError, match="no journal"):
        analysis.load_results(tmp_path)
    line = json.dumps({**over.to_record(with_tree=False), "row_id": "a"}) + "\n"
    (tmp_path / "a.jsonl").write_text(line)
    (tmp_path / "b.jsonl").write_text(line)
    with pytest.raises(ValueError, match="several journals"):
        analysis.load_results(tmp_path)
    (tmp_path / "revisions.jsonl").write_text(line)
    assert len(analysis.load_results(tmp_path)) == 1
    with pytest.raises(ValueError, match="neither"):
        analysis.load_results(tmp_path / "missing.jsonl")
    with pytest.raises(TypeError, match="item 0"):
        analysis.load_results([17])


# --------------------------------------------------------------------------- the tree drawing
def _collection(ax, label):
    (c,) = [c for c in ax.collections if c.get_label() == label]
    return c


def _count_color(colors, color):
    target = to_rgba(color)
    return sum(tuple(round(v, 4) for v in c) == tuple(round(v, 4) for v in target) for c in colors)


def test_draw_tree_highlights_the_kept_path_of_the_overthinking_trace(over):
    ax = analysis.draw_tree(over.tree)
    g = over.tree.to_networkx()
    nodes, edges = _collection(ax, "nodes"), _collection(ax, "edges")
    assert len(nodes.get_offsets()) == g.number_of_nodes() == 9
    assert len(edges.get_segments()) == g.number_of_edges() == 8
    # Kept: the first thought, then one rollout (first step closing the thinking + the answer).
    assert _count_color(edges.get_colors(), analysis.ACCEPTED_COLOR) == 3
    assert _count_color(nodes.get_edgecolors(), analysis.ACCEPTED_COLOR) == 3
    faces = nodes.get_facecolors()
    assert _count_color(faces, analysis.NODE_COLORS["original"]) == 4
    assert _count_color(faces, analysis.NODE_COLORS["rollout_correct"]) == 4
    assert _count_color(faces, analysis.NODE_COLORS["prompt"]) == 1
    # One label per node: its token count.
    labels = sorted(t.get_text() for t in ax.texts)
    assert len(labels) == 9 and f"prompt {over.tree.root.token_count}" in labels


def test_kept_path_spells_the_revised_trace(over, twice, mix):
    for res in (over, twice, *mix[1:3]):
        g = res.tree.to_networkx()
        text = "".join(g.nodes[n]["text"] for n in analysis.kept_path(g)[1:])
        assert "<think>\n" + text == res.revised.render()


def test_draw_tree_marks_a_rollout_kept_then_cut_apart_from_the_kept_path(twice):
    ax = analysis.draw_tree(twice)  # a RevisionResult works too
    edges = _collection(ax, "edges")
    g = twice.tree.to_networkx()
    kept = analysis.kept_path(g)
    assert _count_color(edges.get_colors(), analysis.ACCEPTED_COLOR) == len(kept) - 1 == 5
    # The first kept rollout's tail (after "So it is 5.": the separator and "Wait, check 5. ...") was cut.
    assert _count_color(edges.get_colors(), analysis.SUPERSEDED_COLOR) == 2


def test_draw_tree_colours_rollouts_by_outcome_and_keeps_the_original_when_nothing_won(mix):
    ax = analysis.draw_tree(mix[2])
    nodes, edges = _collection(ax, "nodes"), _collection(ax, "edges")
    faces = nodes.get_facecolors()
    # Two one-node empty rollouts (unfinished) and two three-node rollouts answering 133 (wrong).
    assert _count_color(faces, analysis.NODE_COLORS["rollout_unfinished"]) == 2
    assert _count_color(faces, analysis.NODE_COLORS["rollout_wrong"]) == 6
    # Nothing was accepted: the kept path is the original (3 thoughts + closing).
    assert _count_color(edges.get_colors(), analysis.ACCEPTED_COLOR) == 4


def test_tree_layout_puts_the_original_on_a_line_and_branches_below(over):
    g = over.tree.to_networkx()
    pos = analysis.tree_layout(g)
    originals = [n for n in g.nodes if g.nodes[n]["origin"] in ("prompt", "original")]
    assert {pos[n][1] for n in originals} == {0.0}
    assert all(pos[n][1] < 0 for n in g.nodes if g.nodes[n]["origin"] == "rollout")
    # x is the cumulative token count (prompt excluded); the kept rollout takes the lane next to the line.
    for n in g.nodes:
        path = over.tree.path(n)[1:]
        assert pos[n][0] == sum(p.token_count for p in path)
    kept_rollouts = [n for n in g.nodes if g.nodes[n]["origin"] == "rollout" and g.nodes[n]["accepted"]]
    assert {pos[n][1] for n in kept_rollouts} == {-1.0}
    assert analysis.tree_layout(g, x="depth")[max(g.nodes)][0] == over.tree.depth(max(g.nodes))


# --------------------------------------------------------------------------- plots
def test_plot_lengths_one_point_per_searched_trace_and_the_diagonal(mix):
    ax = analysis.plot_lengths(mix)
    points = sum(len(c.get_offsets()) for c in ax.collections)
    assert points == 3
    (diag,) = [line for line in ax.get_lines() if line.get_label() == "no change"]
    xs, ys = diag.get_data()
    assert list(xs) == list(ys)


def test_plot_acceptance_by_thought_bars_stack_to_the_rate(mix):
    ax = analysis.plot_acceptance_by_thought(mix)
    heights = {}
    for patch in ax.patches:
        x = round(patch.get_x() + patch.get_width() / 2)
        heights[x] = heights.get(x, 0.0) + patch.get_height()
    assert heights == pytest.approx({0: 2 / 3, 1: 0.0})


def test_plot_spent_vs_saved_and_rollout_lengths(mix):
    ax = analysis.plot_spent_vs_saved(mix)
    assert sum(len(c.get_offsets()) for c in ax.collections) == 3
    searched = mix[:3]
    saved = sum(r.stats["thinking_tokens_before"] - r.stats["thinking_tokens_after"] for r in searched)
    spent = sum(r.stats["tokens_spent"] for r in searched)
    assert f"{spent / saved:.1f} spent per token saved" in ax.get_title()
    ax = analysis.plot_rollout_lengths(mix)
    assert sum(p.get_height() for p in ax.patches) == pytest.approx(len(analysis.rollout_lengths(mix)))


# --------------------------------------------------------------------------- the simulated world
def _simworld():
    spec = importlib.util.spec_from_file_location("simworld", ROOT / "benchmarks" / "simworld.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tables_agree_with_the_search_counters_on_the_simulated_world():
    sim = _simworld()
    cfg = RetroSearchConfig(
        prompt=PromptFormat(use_chat_template=False, raw_template="{question}\n"), n=3, seed=3
    )
    results = revise(sim.make_traces(12, seed=5), sim.world_backend(), cfg)
    bt, tt = analysis.boundary_table(results), analysis.trace_table(results)
    assert len(bt) == tt["boundaries_explored"].sum()
    assert bt.groupby("index")["rollouts"].sum().tolist() == tt["rollouts"].tolist()
    assert bt["rollout_tokens"].map(sum).groupby(bt["index"]).sum().tolist() == tt["tokens_spent"].tolist()
    kept = bt[bt["accepted"]]
    revisions = [v for r in results for v in r.revisions]
    assert kept["remainder_tokens"].tolist() == [v.tokens_before for v in revisions]
    assert kept["accepted_tokens"].tolist() == [v.tokens_after for v in revisions]
    assert kept["kind"].tolist() == [v.kind for v in revisions]
    # The kept path spells the revised trace (up to whitespace: the revision trims a rollout's thinking).
    for r in results:
        g = r.tree.to_networkx()
        kept_text = "".join(g.nodes[n]["text"] for n in analysis.kept_path(g)[1:])
        assert kept_text.split() == r.revised.render()[len("<think>\n") :].split()
