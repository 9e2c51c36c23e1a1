"""SearchTree: one node type, paths, masks, statistics, networkx and JSON round trip."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from retrosearch.text import count_steps
from retrosearch.trace import Trace
from retrosearch.tree import SearchTree

GOLDEN = Path(__file__).parent / "golden" / "small_tree.json"


def small_tree() -> SearchTree:
    """prompt -> original thought -> (original remainder | two rollouts, one accepted) plus a tool span."""
    t = SearchTree("Q: 2+2?\n<think>\n", tokenizer=lambda s: [ord(c) for c in s], meta={"index": 3})
    a = t.add(t.root, "We add.\n\n2+2=4.", "original", meta={"thought": 0})
    t.add(a, "\n\nWait, check: 4.\n</think>\n\n\\boxed{4}", "original", meta={"thought": 1})
    r1 = t.add(
        a,
        "\n</think>\n\n\\boxed{4}",
        "rollout",
        value=1.0,
        correct=True,
        accepted=True,
        logprobs=[-0.5] * 20,
        finish_reason="eos",
    )
    t.add(a, "\n\nHmm, 5.\n</think>\n\n\\boxed{5}", "rollout", value=0.0, correct=False, finish_reason="eos")
    t.add(r1, "\n[tool says 4]", "environment")
    return t


def test_paths_text_ids_and_masks():
    t = small_tree()
    leaf = t.nodes[5]
    assert [n.id for n in t.path(leaf)] == [0, 1, 3, 5]
    assert t.text(leaf) == "Q: 2+2?\n<think>\nWe add.\n\n2+2=4.\n</think>\n\n\\boxed{4}\n[tool says 4]"
    assert t.text(leaf, start=t.nodes[1]) == "\n</think>\n\n\\boxed{4}\n[tool says 4]"
    ids = t.token_ids(leaf)
    assert "".join(map(chr, ids)) == t.text(leaf)
    mask = t.env_mask(leaf)
    assert len(mask) == len(ids) and mask.count(0) == len("\n[tool says 4]")
    lps = t.logprobs(leaf, start=t.nodes[1])
    assert lps[:20] == [-0.5] * 20 and set(lps[20:]) == {0.0}
    with pytest.raises(ValueError, match="ancestor"):
        t.text(leaf, start=t.nodes[2])


def test_logprobs_are_zero_for_prompt_and_environment_and_required_of_the_model():
    t = small_tree()
    # Node 4 is a rollout written without log-probs: reading them is an error, not zeros.
    with pytest.raises(ValueError, match="node 4 .*no log-probs"):
        t.logprobs(t.nodes[4], start=t.nodes[1])
    with pytest.raises(ValueError, match="node 1 \\(original"):
        t.logprobs(t.nodes[3])  # an input trace's span has no log-probs either
    assert t.logprobs(t.nodes[5], start=t.nodes[1]) == [-0.5] * 20 + [0.0] * len("\n[tool says 4]")
    assert t.logprobs(t.root) == [0.0] * t.root.token_count
    empty = t.add(t.root, "", "rollout", finish_reason="error")
    assert t.logprobs(empty) == [0.0] * t.root.token_count  # no tokens, nothing missing


@pytest.mark.parametrize(
    "text, steps",
    [("a\n\xa0\nb", 2), ("a\n\n\n\nb\n \nc", 3), ("one step", 1), ("a\n\u2003\n\u3000b\n\nc", 3)],
)
def test_the_tree_and_trace_count_steps_alike(text, steps):
    t = SearchTree("p")
    assert t.add(t.root, text, "original").step_count == steps
    assert Trace(thinking=text).num_steps == steps


def test_counts_and_statistics():
    t = small_tree()
    assert t.nodes[1].step_count == 2 and t.nodes[1].token_count == len("We add.\n\n2+2=4.")
    assert count_steps("a\n\n\n\nb\n \nc") == 3 and count_steps("\n\n") == 0
    s = t.stats()
    assert s["nodes"] == 6 and s["leaves"] == 3 and s["depth"] == 3
    assert s["max_branching"] == 3 and s["mean_branching"] == pytest.approx((1 + 3 + 1) / 3)
    assert s["tokens_by_origin"]["environment"] == len("\n[tool says 4]")
    assert s["accepted"] == 1


def test_without_a_tokenizer_counts_are_approximate_and_ids_absent():
    t = SearchTree("Hello there, world!")
    assert t.root.token_ids is None and t.root.token_count == 5  # Hello there , world !
    with pytest.raises(ValueError, match="no token ids"):
        t.token_ids(t.root)


def test_networkx_export_keeps_attributes_and_sibling_order():
    g = small_tree().to_networkx()
    assert g.number_of_nodes() == 6 and g.number_of_edges() == 5
    assert g.graph["index"] == 3
    assert (
        g.nodes[3]["accepted"] and g.nodes[3]["origin"] == "rollout" and g.nodes[5]["origin"] == "environment"
    )
    assert [g.edges[1, c]["order"] for c in (2, 3, 4)] == [0, 1, 2]


def test_json_round_trip_matches_the_golden_file():
    t = small_tree()
    d = t.to_dict()
    assert SearchTree.from_dict(json.loads(json.dumps(d))).to_dict() == d
    assert SearchTree.from_json(t.to_json()).to_dict() == d
    if os.environ.get("RETROSEARCH_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(d, indent=1) + "\n")
    assert d == json.loads(GOLDEN.read_text())


def test_bad_input_is_rejected_with_reasons():
    t = small_tree()
    with pytest.raises(ValueError, match="origin"):
        t.add(t.root, "x", "model")
    with pytest.raises(IndexError):
        t.add(99, "x", "rollout")
    with pytest.raises(TypeError, match="str"):
        t.add(t.root, 5, "rollout")
    with pytest.raises(ValueError, match="logprobs"):
        t.add(t.root, "abc", "rollout", logprobs=[-1.0])
    with pytest.raises(ValueError, match="nodes"):
        SearchTree.from_dict({"meta": {}})
    with pytest.raises(ValueError, match="lacks"):
        SearchTree.from_dict({"nodes": [{"id": 0, "text": "p"}]})
