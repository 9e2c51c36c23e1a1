"""Retro-Search settings that used to break: a small token cap, gamma = 1, no gold answer, the stride, the
acceptance rule and the verifier names."""

from __future__ import annotations

import pytest
from scripted_examples import OVERTHINKING, OVERTHINKING_MODEL, TWICE, TWICE_MODEL

from retrosearch.backends import ScriptedBackend
from retrosearch.retro import PromptFormat, RetroSearchConfig, revise
from retrosearch.retro.program import choose
from retrosearch.retro.results import NO_BETTER_VALUE, NO_CORRECT, NO_SHORTER, RolloutRecord
from retrosearch.verify import VERIFIERS

RAW = PromptFormat(use_chat_template=False, raw_template="Q: {question}\n")
CLOSE = "\n</think>\n\nThe answer is \\boxed{42}."
# After the answer the model writes two short checks before closing: as many steps as the original's
# remainder, in fewer tokens.
TWO_SHORT_CHECKS = {
    "6 * 7 = 42.": "\n\n",
    "6 * 7 = 42.\n\n": "Fine.\n\n",
    "Fine.\n\n": "Good." + CLOSE,
}


def run(trace, model, gold="42", **cfg):
    config = RetroSearchConfig(prompt=RAW, **{"n": 1, **cfg})
    return revise({"question": "q", "response": trace, "gold": gold}, ScriptedBackend(model), config)


# --------------------------------------------------------------------------- the token cap
def test_a_cap_smaller_than_a_first_step_needs_ends_the_rollout_instead_of_failing_the_row():
    # The first step is a bare blank line (1 token), asked again for "So 42.\n\n" (5 tokens): 6 tokens before
    # the continuation, over a cap of 5. The continuation used to be asked for 5 - 6 = -1 tokens.
    model = {"6 * 7 = 42.": "\n\n", "6 * 7 = 42.\n\n": "So 42.\n\n", "So 42.\n\n": CLOSE}
    res = run(OVERTHINKING, model, max_tokens=5, first_step_max_tokens=5)
    assert res.status == "unchanged", res.reason
    (ro,) = res.explorations[0].rollouts
    assert ro.tokens <= 5 and ro.finish_reason == "length" and ro.note == "cut by the token budget or cap"
    assert all(n.token_count <= 5 for n in res.tree if n.origin == "rollout")


def test_the_cap_holds_for_first_step_and_continuation_together():
    # Closing the thinking takes 6 tokens and the answer 12: 18 in all.
    assert run(OVERTHINKING, OVERTHINKING_MODEL, max_tokens=18, first_step_max_tokens=18).status == "revised"
    res = run(OVERTHINKING, OVERTHINKING_MODEL, max_tokens=17, first_step_max_tokens=17)
    assert res.status == "unchanged"
    assert [r.tokens for r in res.explorations[0].rollouts] == [17]


def test_config_refuses_a_first_step_cap_above_the_rollout_cap():
    with pytest.raises(ValueError, match="first_step_max_tokens.*max_tokens"):
        RetroSearchConfig(max_tokens=100)  # the first step's default cap is 256
    assert RetroSearchConfig(max_tokens=100, first_step_max_tokens=100).max_tokens == 100


# --------------------------------------------------------------------------- gamma = 1
def test_gamma_one_breaks_the_tie_on_length():
    # The rollout has as many steps as the remainder: at gamma < 1 its value only ties, so it is not kept; at
    # gamma = 1 every correct continuation ties, and the shorter one in tokens wins.
    strict = run(OVERTHINKING, TWO_SHORT_CHECKS)
    assert strict.status == "unchanged" and strict.explorations[0].reason == NO_BETTER_VALUE
    tie = run(OVERTHINKING, TWO_SHORT_CHECKS, gamma=1.0)
    assert tie.status == "revised"
    assert tie.revised.thinking.endswith("6 * 7 = 42.\n\nFine.\n\nGood.")
    assert tie.stats["thinking_tokens_after"] < tie.stats["thinking_tokens_before"]
    # The answer right away: gamma = 1 keeps it as gamma = 0.9 does.
    assert run(OVERTHINKING, OVERTHINKING_MODEL, gamma=1.0).revised.render() == (
        run(OVERTHINKING, OVERTHINKING_MODEL).revised.render()
    )


def _rec(sample, value, tokens, correct=True):
    return RolloutRecord(
        sample, [], tokens, 1, "eos", True, "correct" if correct else "incorrect", correct, value
    )


def test_choose_at_gamma_one_keeps_the_shortest_and_refuses_a_tie_that_is_not_shorter():
    current = {"thinking_tokens": 50, "total_tokens": 60}
    recs = [_rec(0, 1.0, 30), _rec(1, 1.0, 20), _rec(2, 1.0, 40)]
    sizes = [{"thinking_tokens": t, "total_tokens": t + 10} for t in (45, 40, 50)]
    best, why = choose(recs, 1.0, current, sizes.__getitem__, 1.0)
    assert best == 1 and recs[1].accepted and "kept" in why
    assert "not shorter" in recs[2].note


# --------------------------------------------------------------------------- the acceptance rule
def test_choose_takes_the_best_valued_rollout_that_is_no_longer_in_tokens():
    current = {"thinking_tokens": 50, "total_tokens": 60}
    recs = [_rec(0, 0.9, 70), _rec(1, 0.81, 30), _rec(2, 0.81, 25), _rec(3, 0.0, 5, correct=False)]
    sizes = [
        {"thinking_tokens": 55, "total_tokens": 65},  # the best value, but longer: refused
        {"thinking_tokens": 40, "total_tokens": 50},
        {"thinking_tokens": 35, "total_tokens": 45},  # same value as 1, fewer tokens: kept
        None,
    ]
    best, _ = choose(recs, 0.729, current, sizes.__getitem__, 0.9)
    assert best == 2 and [r.accepted for r in recs] == [False, False, True, False]
    assert recs[0].note == "its revised trace would be longer in tokens"
    # Longer in the whole trace only (a shorter thinking, a longer solution) is refused too.
    recs = [_rec(0, 0.9, 30)]
    assert choose(recs, 0.729, current, lambda k: {"thinking_tokens": 40, "total_tokens": 61}, 0.9) == (
        None,
        NO_SHORTER,
    )


def test_choose_says_why_nothing_was_kept():
    current = {"thinking_tokens": 50, "total_tokens": 60}
    small = {"thinking_tokens": 10, "total_tokens": 20}
    assert choose([_rec(0, 0.0, 5, correct=False)], 0.5, current, lambda k: small, 0.9) == (None, NO_CORRECT)
    assert choose([_rec(0, 0.5, 5)], 0.5, current, lambda k: small, 0.9) == (None, NO_BETTER_VALUE)
    big = {"thinking_tokens": 51, "total_tokens": 61}
    assert choose([_rec(0, 0.9, 5)], 0.5, current, lambda k: big, 0.9) == (None, NO_SHORTER)


def test_a_higher_valued_rollout_that_is_longer_loses_to_a_lower_valued_one_that_is_not():
    # Without the token budget, one rollout answers in one long step (value 0.9) and one in two short ones
    # (0.81); both beat the remainder's 0.729 (three steps), only the second keeps the trace no longer.
    trace = (
        "<think>\nWe need 6 * 7.\n\n6 * 7 = 42.\n\nWait, check.\n\nHmm, ok.\n\nYes.\n</think>\n\n"
        "The answer is \\boxed{42}."
    )
    long_step = " ".join(["long"] * 40) + ".\n</think>\n\n"

    def model(prompt, ctx):
        if prompt.endswith("6 * 7 = 42."):
            return "\n\n"  # a blank first step: asked again, with seeds of both parities
        if prompt.endswith("6 * 7 = 42.\n\n"):
            return long_step if ctx.request.seed % 2 else "Fine.\n\n"
        if prompt.endswith("Fine.\n\n"):
            return "Good." + CLOSE
        return "The answer is \\boxed{42}." if prompt.endswith("</think>\n\n") else None

    res = run(trace, model, n=2, token_budget=False)
    first = res.explorations[0]
    one, two = sorted(first.rollouts, key=lambda r: r.steps)
    assert (one.steps, one.value, two.steps, two.value) == (1, 0.9, 2, pytest.approx(0.81))
    assert first.remainder_steps == 3 and not one.accepted and two.accepted
    assert one.note == "its revised trace would be longer in tokens"
    assert first.accepted and res.revisions[0].steps_after == 2


# --------------------------------------------------------------------------- the reference answer
def test_without_a_gold_answer_the_trace_is_skipped_unless_self_reference_is_asked_for():
    row = {"question": "q", "response": OVERTHINKING}
    backend = ScriptedBackend(OVERTHINKING_MODEL)
    skipped = revise(row, backend, RetroSearchConfig(prompt=RAW))
    assert skipped.status == "skipped" and "no gold answer" in skipped.reason and skipped.tree is None
    own = revise(row, backend, RetroSearchConfig(prompt=RAW, reference="self"))
    assert own.status == "revised" and own.reference == "self" and "own answer" in own.reason
    assert own.tree.meta["reference"] == "self" and own.to_record()["reference"] == "self"
    # A gold answer is used when there is one, whatever the setting.
    graded = revise({**row, "gold": "41"}, backend, RetroSearchConfig(prompt=RAW, reference="self"))
    assert graded.status == "skipped" and graded.reference == "gold" and "not correct" in graded.reason
    with pytest.raises(ValueError, match="reference"):
        RetroSearchConfig(reference="trace")


# --------------------------------------------------------------------------- the stride
def test_the_stride_does_not_count_the_re_exploration_after_an_acceptance():
    # TWICE is revised twice at switch 0: the second exploration is the same switch at its new place. With a
    # stride of 2 it used to be skipped (counted as the second switch).
    every = run(TWICE, TWICE_MODEL, gold="5")
    strided = run(TWICE, TWICE_MODEL, gold="5", boundary_stride=2)
    assert [r.boundary for r in every.revisions] == [0, 0]
    assert [(e.boundary, e.accepted) for e in strided.explorations] == [(0, True), (0, True)]
    assert strided.revised.render() == every.revised.render()


# --------------------------------------------------------------------------- verifiers
def test_the_verifier_choices_are_get_verifiers_names():
    for name in VERIFIERS:
        assert RetroSearchConfig(verifier=name).verifier == name
    with pytest.raises(ValueError, match="verifier"):
        RetroSearchConfig(verifier="fuzzy")


# --------------------------------------------------------------------------- vLLM's names, old spellings kept
def test_sampling_fields_take_vllms_names_and_the_old_spellings_still_work(tmp_path):
    import argparse

    from retrosearch.config import add_arguments, from_args, load_yaml, to_dict

    old = RetroSearchConfig(n_rollouts=3, max_new_tokens=300, first_step_max_tokens=100)
    assert (old.n, old.max_tokens) == (3, 300) and (old.n_rollouts, old.max_new_tokens) == (3, 300)
    assert {"n", "max_tokens"} <= set(to_dict(old)) and "n_rollouts" not in to_dict(old)
    parser = argparse.ArgumentParser()
    add_arguments(parser, RetroSearchConfig)
    for argv in (["--n-rollouts", "2", "--max-new-tokens", "500"], ["--n", "2", "--max-tokens", "500"]):
        cfg = from_args(RetroSearchConfig, parser.parse_args(argv))
        assert (cfg.n, cfg.max_tokens) == (2, 500)
    (tmp_path / "old.yaml").write_text("n_rollouts: 6\nmax_new_tokens: 1000\n")
    assert load_yaml(RetroSearchConfig, tmp_path / "old.yaml").n == 6
    with pytest.raises(ValueError, match=r"n \(n_rollouts\) must be >= 1"):
        RetroSearchConfig(n_rollouts=0)
