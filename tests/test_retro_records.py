"""The search says what it explored: one record per explored switch, in the result, its record and its tree."""

from __future__ import annotations

import json

from scripted_examples import (
    OVERTHINKING,
    OVERTHINKING_MODEL,
    TWICE,
    TWICE_MODEL,
    UNDERTHINKING,
    UNDERTHINKING_MODEL,
    random_case,
)

from retrosearch.backends import ScriptedBackend
from retrosearch.retro import Exploration, PromptFormat, RetroSearchConfig, RevisionResult, revise
from retrosearch.retro.results import NO_CORRECT

RAW = PromptFormat(use_chat_template=False, raw_template="Q: {question}\n")


def run(trace, model, gold, n=2, **cfg):
    config = RetroSearchConfig(prompt=RAW, n=n, **cfg)
    return revise({"question": "q", "response": trace, "gold": gold}, ScriptedBackend(model), config)


def tokens(text: str) -> int:
    return len(ScriptedBackend({}).tokenize(text))


def test_the_overthinking_switch_is_recorded_with_what_was_kept_and_why():
    res = run(OVERTHINKING, OVERTHINKING_MODEL, "42")
    (e,) = res.explorations
    prefix = "We need 6 * 7.\n\n6 * 7 = 42."
    close = "\n</think>\n\nThe answer is \\boxed{42}."
    assert (e.exploration, e.boundary, e.cut, e.node) == (0, 0, len(prefix), 1)
    assert e.prefix_tokens == tokens(prefix)
    assert (
        e.remainder_tokens
        == res.revisions[0].tokens_before
        == res.tree.count_tokens(
            "\n\nWait, let me double-check. 7 * 6 = 42. Yes.\n\nHmm, also 6+6+6+6+6+6+6 = 42." + close
        )
    )
    assert (e.remainder_steps, e.remainder_value, e.budget) == (2, 0.9**2, e.remainder_tokens)
    assert e.accepted and e.kind == "overthinking" and e.reason.startswith("rollout 0 kept")
    first, second = e.rollouts
    assert (first.sample, first.tokens, first.steps, first.finish_reason) == (0, tokens(close), 0, "eos")
    assert (first.closed, first.verdict, first.correct, first.value) == (True, "correct", True, 1.0)
    assert first.accepted and first.note == "accepted"
    assert not second.accepted and second.note.startswith("passed")  # as good, sampled later
    assert e.accepted_rollout is first and [res.tree[i].text for i in first.nodes] == [
        "\n</think>\n\n",
        close[11:],
    ]


def test_rollouts_that_cannot_win_say_why():
    # Without the "add 12" keys, the script has nothing to say at switch 0 (an empty rollout); at switch 1 the
    # rollouts close their thinking and then write nothing (no key for it): no answer to grade.
    wrong = {k: v for k, v in UNDERTHINKING_MODEL.items() if "add 12" not in k}
    res = run(UNDERTHINKING, wrong, "132")
    assert [(e.boundary, e.accepted, e.reason) for e in res.explorations] == [
        (0, False, NO_CORRECT),
        (1, False, NO_CORRECT),
    ]
    empty, answered = res.explorations[0].rollouts[0], res.explorations[1].rollouts[0]
    assert (empty.closed, empty.verdict, empty.steps, empty.note) == (
        False,
        None,
        None,
        "never closed its thinking",
    )
    assert (answered.closed, answered.verdict, answered.value) == (True, "unparseable", 0.0)
    assert answered.note == "wrong answer (unparseable)"


def test_a_switch_explored_again_inside_a_kept_rollout_lists_the_split_tail():
    res = run(TWICE, TWICE_MODEL, "5", n=1)
    first, second = res.explorations
    assert (first.boundary, second.boundary) == (0, 0) and first.accepted and second.accepted
    assert second.prefix_tokens > first.prefix_tokens and second.cut > first.cut
    # The second cut falls inside the first kept rollout: its node was split, and the tail is listed in order.
    kept = first.accepted_rollout.nodes
    tails = [i for i in kept if res.tree[i].meta.get("split")]
    assert len(tails) == 1 and kept[kept.index(tails[0]) - 1] == second.node
    assert (
        "".join(res.tree[i].text for i in kept)
        == "\n\nSo it is 5.\n\nWait, check 5.\n</think>\n\nThe answer is \\boxed{5}."
    )


def test_records_agree_with_the_counters_and_cover_every_rollout_node_once():
    for case in range(30):
        trace, gold, model = random_case(case)
        res = run(trace, model, gold, n=3, seed=case)
        ex = res.explorations
        assert len(ex) == res.stats["boundaries_explored"], case
        assert sum(len(e.rollouts) for e in ex) == res.stats["rollouts"], case
        assert sum(r.tokens for e in ex for r in e.rollouts) == res.stats["tokens_spent"], case
        kept = [(e.boundary, e.remainder_tokens, e.accepted_rollout.tokens, e.kind) for e in ex if e.accepted]
        assert kept == [(v.boundary, v.tokens_before, v.tokens_after, v.kind) for v in res.revisions], case
        listed = [i for e in ex for r in e.rollouts for i in r.nodes]
        assert sorted(listed) == [n.id for n in res.tree if n.origin == "rollout"], case
        for e in ex:
            assert sum(r.accepted for r in e.rollouts) == e.accepted, case
            for r in e.rollouts:
                assert all(
                    res.tree[i].correct == r.correct and res.tree[i].value == r.value for i in r.nodes
                ), case


def test_records_travel_in_the_record_and_in_the_tree():
    res = run(TWICE, TWICE_MODEL, "5", n=1)
    rec = json.loads(json.dumps(res.to_record()))
    assert (
        rec["explorations"] == [e.to_dict() for e in res.explorations] == rec["tree"]["meta"]["explorations"]
    )
    back = RevisionResult.from_record(rec)
    assert back.explorations == res.explorations and back.reference == "gold"
    # Without the tree, the record still carries them; a saved tree alone carries them too.
    slim = RevisionResult.from_record(json.loads(json.dumps(res.to_record(with_tree=False))))
    assert slim.tree is None and slim.explorations == res.explorations
    tree_only = {k: v for k, v in rec.items() if k != "explorations"}
    assert RevisionResult.from_record(tree_only).explorations == res.explorations
    assert [Exploration.from_dict(d) for d in rec["tree"]["meta"]["explorations"]] == res.explorations
