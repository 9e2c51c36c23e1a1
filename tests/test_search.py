"""Retro-Search `revise`: known revisions with a scripted model, invariants, partial revision, bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scripted_examples import OVERTHINKING, OVERTHINKING_MODEL, UNDERTHINKING, UNDERTHINKING_MODEL

from retrosearch.backends import ScriptedBackend
from retrosearch.engine import Engine
from retrosearch.retro import PromptFormat, RetroSearchConfig, revise
from retrosearch.trace import Trace
from retrosearch.verify import get_verifier

GOLDEN = Path(__file__).parent / "golden"
RAW = PromptFormat(use_chat_template=False, raw_template="Q: {question}\n")


def run(trace, model, gold=None, **cfg):
    backend = ScriptedBackend(model)
    config = RetroSearchConfig(prompt=RAW, n=cfg.pop("n", 2), **cfg)
    row = {"question": "q", "response": trace, "gold": gold} if isinstance(trace, str) else trace
    return revise(row, backend, config)


def test_overthinking_trace_is_cut_right_after_the_answer():
    res = run(OVERTHINKING, OVERTHINKING_MODEL, gold="42")
    assert res.status == "revised"
    assert (
        res.revised.render()
        == "<think>\nWe need 6 * 7.\n\n6 * 7 = 42.\n</think>\n\nThe answer is \\boxed{42}."
    )
    assert [(r.boundary, r.steps_before, r.steps_after, r.kind) for r in res.revisions] == [
        (0, 2, 0, "overthinking")
    ]
    assert res.stats["thoughts_before"] == 3 and res.stats["thoughts_after"] == 1
    assert res.stats["thinking_tokens_after"] < res.stats["thinking_tokens_before"]
    assert res.stats["rollouts"] == 2 and res.stats["boundaries_explored"] == 1


def test_underthinking_trace_finishes_the_abandoned_line():
    res = run(UNDERTHINKING, UNDERTHINKING_MODEL, gold="132")
    assert res.status == "revised"
    assert res.revised.render() == (
        "<think>\nCompute 12 * 11.\n\nUse 12 * 10 = 120, then add 12.\n\n120 + 12 = 132.\n\nSo it is 132."
        "\n</think>\n\n\\boxed{132}"
    )
    (rev,) = res.revisions
    assert (rev.boundary, rev.steps_before, rev.steps_after, rev.kind) == (0, 3, 2, "underthinking")


def test_a_wrong_rollout_is_never_accepted():
    # At the second switch (after "22 + 110 = 132.") the only rollout ends at 133: the remainder stays.
    trace = Trace.parse({"question": "q", "response": UNDERTHINKING, "gold": "132"})
    res = run(trace, {k: v for k, v in UNDERTHINKING_MODEL.items() if "add 12" not in k})
    assert res.status == "unchanged" and res.revised.render() == UNDERTHINKING
    assert res.stats["boundaries_explored"] == 2
    wrong = [n for n in res.tree if n.origin == "rollout" and "133" in n.text]
    assert wrong and all(n.correct is False and n.value == 0.0 and not n.accepted for n in wrong)


def test_incorrect_and_truncated_traces_are_returned_unchanged_with_the_reason():
    wrong = run(OVERTHINKING, OVERTHINKING_MODEL, gold="41")
    assert wrong.status == "skipped" and "not correct" in wrong.reason
    assert wrong.revised.render() == OVERTHINKING and wrong.tree is None
    cut = run("<think>\nWe need 6 * 7.\n\nWait, 6 * 7 =", OVERTHINKING_MODEL, gold="42")
    assert cut.status == "skipped" and "truncated" in cut.reason


def test_bad_rows_get_an_error_result_and_the_batch_goes_on():
    backend = ScriptedBackend(OVERTHINKING_MODEL)
    out = revise(
        [{"question": "q", "response": OVERTHINKING, "gold": "42"}, {"question": "q"}, 17, OVERTHINKING],
        backend,
        RetroSearchConfig(prompt=RAW, n=1, reference="self"),  # the last row has no gold answer
    )
    assert [r.status for r in out] == ["revised", "error", "error", "revised"]
    assert [r.reference for r in out] == ["gold", None, None, "self"]
    assert [r.index for r in out] == [0, 1, 2, 3]
    assert "row 1" in out[1].reason and "response" in out[1].reason
    assert "row 2" in out[2].reason


def test_partial_revision_explores_only_the_allowed_switches():
    trace = {"question": "q", "response": UNDERTHINKING, "gold": "132"}
    none = run(trace, UNDERTHINKING_MODEL, max_boundaries=0)
    assert none.status == "unchanged" and none.stats["rollouts"] == 0
    stride = run(
        trace, {k: v for k, v in UNDERTHINKING_MODEL.items() if "add 12" not in k}, boundary_stride=2
    )
    assert stride.stats["boundaries_explored"] == 1  # switches 0 and 1 exist; only switch 0 is explored


def test_token_budget_cuts_rollouts_that_could_not_win():
    # Every rollout rambles for 200 words before answering: none can beat the 2-step remainder.
    model = {
        "6 * 7 = 42.": "\n\n",
        "6 * 7 = 42.\n\n": "So it is fine.\n\n",
        "fine.\n\n": " ".join(["more"] * 200) + "\n</think>\n\n\\boxed{42}",
    }
    with_budget = run(OVERTHINKING, model, gold="42", n=2, seed=1)
    without = run(OVERTHINKING, model, gold="42", n=2, seed=1, token_budget=False)
    assert with_budget.status == without.status == "unchanged"
    assert with_budget.stats["tokens_spent"] < without.stats["tokens_spent"] / 2


def test_runs_repeat_exactly_with_a_seed_and_the_tree_matches_the_golden_file():
    model = {
        "6 * 7 = 42.": ["\n\nWait, again.", "\n</think>\n\nThe answer is \\boxed{42}.", "\n\nIndeed 42.\n\n"],
        "6 * 7 = 42.\n\n": ["Wait, again.", "Indeed 42.\n\n"],
        "Indeed 42.\n\n": "Done.\n</think>\n\nSo \\boxed{42}.",
        "</think>\n\n": "The answer is \\boxed{42}.",
    }
    a = run(OVERTHINKING, model, gold="42", n=3, seed=4)
    b = run(OVERTHINKING, model, gold="42", n=3, seed=4)
    assert a.tree.to_dict() == b.tree.to_dict()
    assert a.revised.render() == b.revised.render()
    # Seed 4 samples each kind of first step: a bare separator (then "Indeed 42."), and a close, which wins.
    assert a.status == "revised" and a.revised.solution == "The answer is \\boxed{42}."
    golden = GOLDEN / "overthinking_tree.json"
    got = a.tree.to_dict()
    if os.environ.get("RETROSEARCH_UPDATE_GOLDEN"):
        golden.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n")
    assert golden.exists(), f"{golden} is missing: run with RETROSEARCH_UPDATE_GOLDEN=1 once and review it"
    assert got == json.loads(golden.read_text())


def test_one_backend_call_per_wave_across_traces():
    backend = ScriptedBackend(OVERTHINKING_MODEL)
    engine = Engine(backend)
    cfg = RetroSearchConfig(prompt=RAW, n=2, reference="self")
    out = revise([OVERTHINKING] * 20, backend, cfg, engine=engine)
    assert all(r.status == "revised" for r in out)
    # The first step (it closes the thinking) and the continuation: 2 waves for all 20 traces.
    assert engine.stats.backend_calls == 2


def test_openthoughts_row_is_revised_and_written_back_as_an_openthoughts_row():
    row = {
        "system": "sys",
        "conversations": [
            {"from": "user", "value": "What is 6 * 7?"},
            {
                "from": "assistant",
                "value": "<|begin_of_thought|>\n\nWe need 6 * 7.\n\n6 * 7 = 42.\n\nWait, "
                "let me double-check. 7 * 6 = 42. Yes.\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\n"
                "\\boxed{42}\n\n<|end_of_solution|>",
            },
        ],
    }
    cfg = RetroSearchConfig(prompt=RAW, n=1, reference="self")  # the row has no gold answer
    res = revise(row, ScriptedBackend(OVERTHINKING_MODEL), cfg)
    assert res.status == "revised" and res.reference == "self"
    out = res.revised.to_row()
    assert out["system"] == "sys" and out["conversations"][0] == row["conversations"][0]
    assert out["conversations"][1]["value"] == (
        "<|begin_of_thought|>\n\nWe need 6 * 7.\n\n6 * 7 = 42.\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\n"
        "The answer is \\boxed{42}\n\n<|end_of_solution|>"
    ).replace("The answer is \\boxed{42}", "The answer is \\boxed{42}.")


def test_config_rejects_bad_values_with_the_field_name():
    with pytest.raises(ValueError, match="gamma"):
        RetroSearchConfig(gamma=0)
    with pytest.raises(ValueError, match="verifier"):
        RetroSearchConfig(verifier="fuzzy")
    with pytest.raises(ValueError, match=r"RetroSearchConfig\.n \(n_rollouts\)"):
        RetroSearchConfig(n=0)


# ------------------------------------------------------------------ property: correct and never longer
WORDS = st.sampled_from(["so", "x", "is", "add", "two", "then", "ok", "yes", "we", "get"])
STEP = st.lists(WORDS, min_size=1, max_size=6).map(" ".join)
OPENERS = st.sampled_from(["Wait, ", "Alternatively, ", "Hmm, ", ""])


@st.composite
def traces_and_models(draw):
    n_steps = draw(st.integers(2, 9))
    steps = [draw(OPENERS) + draw(STEP) + "." for _ in range(n_steps)]
    steps[0] = steps[0].replace("Wait, ", "").replace("Alternatively, ", "").replace("Hmm, ", "")
    answer = draw(st.integers(0, 99))
    trace = "<think>\n" + "\n\n".join(steps) + f"\n</think>\n\n\\boxed{{{answer}}}"
    options = draw(st.lists(st.tuples(st.integers(0, 4), st.booleans(), STEP), min_size=1, max_size=4))

    def model(prompt, ctx):
        outs = []
        for n_extra, right, filler in options:
            body = "".join(f"\n\n{filler} {k}." for k in range(n_extra))
            outs.append(body + f"\n</think>\n\n\\boxed{{{answer if right else answer + 1}}}")
        return outs

    return trace, str(answer), model


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traces_and_models(), st.integers(0, 3))
def test_property_revised_trace_is_correct_and_never_longer(case, seed):
    trace, gold, model = case
    res = run({"question": "q", "response": trace, "gold": gold}, model, n=3, seed=seed)
    assert res.status in ("revised", "unchanged")
    assert get_verifier("math")(res.revised.solution, gold).correct
    assert res.stats["thinking_tokens_after"] <= res.stats["thinking_tokens_before"]
    assert res.stats["total_tokens_after"] <= res.stats["total_tokens_before"]
    assert res.revised.render().startswith("<think>\n")
    if res.status == "revised":
        assert res.stats["steps_after"] < res.stats["steps_before"] or (
            res.stats["thinking_tokens_after"] < res.stats["thinking_tokens_before"]
        )


def test_a_datasets_dataset_is_revised_row_by_row_in_order():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(
        [
            {"question": "q", "response": OVERTHINKING, "gold": "42"},
            {"question": "q", "response": UNDERTHINKING, "gold": "132"},
        ]
    )
    backend = ScriptedBackend({**OVERTHINKING_MODEL, **UNDERTHINKING_MODEL})
    out = revise(ds, backend, RetroSearchConfig(prompt=RAW, n=1))
    assert [r.index for r in out] == [0, 1] and [r.status for r in out] == ["revised", "revised"]
    assert out[1].revised.answer == "132"
