"""The toy world: problems, traces and their habits, the shipped tokenizer and the shipped toy models."""

from __future__ import annotations

import random
import re
from fractions import Fraction

import pytest

import retrosearch.toy
from retrosearch.toy import (
    MODEL_NAMES,
    SWITCH_WORDS,
    Problem,
    ToyTrace,
    TraceConfig,
    detect_habits,
    evaluate_expression,
    habit_shares,
    make_dataset,
    make_problem,
    make_problems,
    make_trace,
    model_path,
)
from retrosearch.trace import DEFAULT_KEYWORDS, Trace, opening_keyword

BOXED = re.compile(r"\\boxed\{(-?\d+)\}")
HABITS = (
    "recheck",
    "abandoned",
    "slip",
    "slip_corrected",
    "n_rechecks",
    "n_abandoned",
    "n_switches",
    "n_steps",
)


# --------------------------------------------------------------------------------------------------- problems


def test_problem_expression_answer_and_precedence():
    p = Problem(17, (("+", 25), ("*", 3), ("-", 40)))
    assert p.expression == "(17 + 25) * 3 - 40"
    assert p.answer == 86
    assert p.values == [17, 42, 126, 86]
    assert p.question == "Compute (17 + 25) * 3 - 40."
    assert Problem(6, (("*", 4), ("+", 2), ("/", 2))).expression == "(6 * 4 + 2) / 2"
    assert Problem(6, (("*", 4), ("+", 2), ("/", 2))).answer == 13


def test_problem_rejects_inexact_division_and_unknown_operator():
    with pytest.raises(ValueError, match="exact division"):
        Problem(7, (("/", 2),))
    with pytest.raises(ValueError, match="operator"):
        Problem(7, (("^", 2),))


def test_random_problems_have_the_answer_of_their_expression_and_stay_in_range():
    rng = random.Random(0)
    cfg = TraceConfig()
    for _ in range(2000):
        p = make_problem(rng, cfg)
        assert evaluate_expression(p.expression) == Fraction(p.answer)
        assert cfg.min_ops <= len(p.ops) <= cfg.max_ops
        assert all(1 <= v <= cfg.max_value for v in p.values)


def test_train_and_test_splits_are_disjoint():
    test = {p.expression for p in make_problems(300, seed=5, split="test")}
    train = {t.problem.expression for t in make_dataset(3000, seed=5)}
    assert len(test) == 300
    assert not test & train


def test_config_rejects_bad_rates():
    with pytest.raises(ValueError, match="recheck_rate"):
        TraceConfig(recheck_rate=1.5)
    with pytest.raises(ValueError, match="min_ops"):
        TraceConfig(min_ops=3, max_ops=2)
    with pytest.raises(ValueError, match="max_repeats"):
        TraceConfig(max_repeats=0)


# ----------------------------------------------------------------------------------------------------- traces


def test_dataset_is_deterministic_per_seed():
    a = [t.text for t in make_dataset(200, seed=7)]
    b = [t.text for t in make_dataset(200, seed=7)]
    c = [t.text for t in make_dataset(200, seed=8)]
    assert a == b
    assert a != c


def test_trace_format_is_r1_style():
    for t in make_dataset(300, seed=1):
        assert t.text.startswith("<think>\n")
        think, sol = t.text[len("<think>\n") :].split("\n</think>\n\n")
        assert "\n\n\n" not in think and think.strip() == think
        assert len(BOXED.findall(sol)) == 1
        steps = think.split("\n\n")
        assert len(steps) == t.habits["n_steps"]
        # every thought switch, and nothing else, opens with a switch word: the thoughts of `Trace`
        openers = [opening_keyword(s) for s in steps[1:]]
        assert t.habits["n_switches"] == sum(k is not None for k in openers)
        assert {k for k in openers if k is not None} <= set(SWITCH_WORDS)
        assert Trace.parse(t.text).num_thoughts == t.habits["n_switches"] + 1


def test_switch_words_are_a_subset_of_the_default_keywords():
    assert SWITCH_WORDS and set(SWITCH_WORDS) <= set(DEFAULT_KEYWORDS)
    assert not hasattr(retrosearch.toy, "Trace")  # one public class named Trace: retrosearch.trace.Trace
    assert isinstance(make_dataset(1)[0], ToyTrace)


def test_default_world_switches_like_r1():
    """Most traces switch, many several times; re-checks and abandoned lines are both common."""
    traces = make_dataset(4000, seed=12)
    n_switches = [t.habits["n_switches"] for t in traces]
    assert sum(n > 0 for n in n_switches) / len(traces) > 0.8
    assert sum(n >= 2 for n in n_switches) / len(traces) > 0.5
    assert 1.8 < sum(n_switches) / len(traces) < 3.0
    shares = habit_shares([t.habits for t in traces])
    assert shares["recheck"] > 0.5 and shares["abandoned"] > 0.5
    cap = TraceConfig().max_repeats
    assert max(t.habits["n_rechecks"] for t in traces) == cap == max(t.habits["n_abandoned"] for t in traces)


def test_answers_are_right_except_in_wrong_traces():
    traces = make_dataset(3000, seed=2)
    n_wrong = 0
    for t in traces:
        boxed = int(BOXED.findall(t.text)[-1])
        if t.habits["wrong"]:
            n_wrong += 1
            assert boxed != t.problem.answer
        else:
            assert boxed == t.problem.answer == evaluate_expression(t.problem.expression)
    assert 0 < n_wrong < len(traces) * 0.1


@pytest.mark.parametrize(
    "cfg",
    [TraceConfig(), TraceConfig(recheck_rate=0.1, abandon_rate=0.6, slip_rate=0.25, wrong_rate=0.15)],
    ids=["default", "custom"],
)
def test_habit_rates_match_the_config(cfg):
    traces = make_dataset(6000, seed=11, cfg=cfg)
    shares = habit_shares([t.habits for t in traces])
    tol = 0.025  # ~3.5 binomial standard errors at n = 6000
    assert shares["wrong"] == pytest.approx(cfg.wrong_rate, abs=tol)
    assert shares["slip_corrected"] == pytest.approx(cfg.slip_rate, abs=tol)
    assert shares["abandoned"] == pytest.approx(cfg.abandon_rate, abs=tol)
    assert shares["recheck"] == pytest.approx(cfg.recheck_rate * (1 - cfg.wrong_rate), abs=tol)
    # and the text agrees: the detector sees the same shares
    detected = habit_shares([detect_habits(t.text, t.problem) for t in traces[:2000]])
    truth = habit_shares([t.habits for t in traces[:2000]])
    for k in ("recheck", "abandoned", "slip", "slip_corrected"):
        assert detected[k] == truth[k]


def test_zero_rates_give_clean_traces():
    cfg = TraceConfig(recheck_rate=0, abandon_rate=0, slip_rate=0, wrong_rate=0)
    for t in make_dataset(200, seed=3, cfg=cfg):
        assert t.habits["n_switches"] == 0
        assert t.habits["n_steps"] == len(t.problem.ops) + 2  # opening, one step per operation, conclusion


# ----------------------------------------------------------------------------------------------- detect_habits


def test_detect_habits_matches_the_generator_on_every_trace():
    rng = random.Random(4)
    cfg = TraceConfig(recheck_rate=0.5, abandon_rate=0.5, slip_rate=0.3, wrong_rate=0.1)
    for _ in range(3000):
        t = make_trace(make_problem(rng, cfg), rng, cfg)
        d = detect_habits(t.text, t.problem)
        assert {k: d[k] for k in HABITS} == {k: t.habits[k] for k in HABITS}, t.text
        assert d["correct"] is (not t.habits["wrong"])
        assert d["well_formed"] and not d["false_alarm"]


P = Problem(17, (("+", 25), ("*", 3), ("-", 40)))  # 42, 126, 86


def _trace(*steps: str, answer: int | None = 86) -> str:
    sol = "" if answer is None else f"\n</think>\n\nSo \\boxed{{{answer}}}."
    return "<think>\n" + "\n\n".join(steps) + sol


def test_detect_habits_on_hand_written_traces():
    clean = detect_habits(
        _trace("Go.", "17 + 25 = 42.", "42 * 3 = 126.", "126 - 40 = 86.", "So the answer is 86."), P
    )
    assert clean["correct"] and clean["well_formed"]
    assert not (clean["recheck"] or clean["abandoned"] or clean["slip"])

    recheck = detect_habits(
        _trace(
            "17 + 25 = 42.",
            "42 * 3 = 126.",
            "126 - 40 = 86.",
            "So the answer is 86.",
            "But wait, let me check.",
            "Yes, 86.",
        ),
        P,
    )
    assert recheck["recheck"] and recheck["n_rechecks"] == 1 and not recheck["abandoned"]

    abandoned = detect_habits(
        _trace(
            "17 + 25 = 42.",
            "Alternatively, start over.",
            "17 + 25 = 42.",
            "42 * 3 = 126.",
            "126 - 40 = 86.",
            "So the answer is 86.",
        ),
        P,
    )
    assert abandoned["abandoned"] and not abandoned["recheck"] and abandoned["n_switches"] == 1

    slip = detect_habits(
        _trace(
            "17 + 25 = 42.",
            "42 * 3 = 136.",
            "Wait, 42 * 3 is 126, not 136.",
            "126 - 40 = 86.",
            "So the answer is 86.",
        ),
        P,
    )
    assert slip["slip"] and slip["slip_corrected"] and not slip["abandoned"] and slip["correct"]

    # a re-check that redoes the slipped step right corrects it (and is not redundant: the answer changed)
    redo = detect_habits(
        _trace(
            "17 + 25 = 42.",
            "42 * 3 = 136.",
            "136 - 40 = 96.",
            "So the answer is 96.",
            "Wait, let me check.",
            "17 + 25 = 42.",
            "42 * 3 = 126.",
            "126 - 40 = 86.",
            "So the answer is 86.",
        ),
        P,
    )
    assert redo["slip"] and redo["slip_corrected"] and redo["correct"]
    assert not redo["recheck"] and redo["n_flags"] == 0

    # a correction flag on a step that was right is a false alarm, not a corrected slip
    alarm = detect_habits(_trace("17 + 25 = 42.", "Wait, 17 + 25 is 43, not 42.", "So the answer is 86."), P)
    assert alarm["false_alarm"] and not alarm["slip_corrected"] and alarm["n_flags"] == 1

    # a switch after a wrong step that does not fix it is not an abandoned (good) line
    bad_line = detect_habits(_trace("17 + 25 = 41.", "Hmm, let me start over.", "17 + 25 = 42."), P)
    assert bad_line["slip"] and not bad_line["abandoned"]

    # re-checking a wrong answer that then changes is not redundant
    fixed = detect_habits(
        _trace("17 + 25 = 42.", "So the answer is 80.", "Wait, let me check.", "So the answer is 86."), P
    )
    assert not fixed["recheck"]

    cut = detect_habits(_trace("17 + 25 = 42.", "42 * 3 = 1", answer=None), P)
    assert not cut["well_formed"] and cut["answer"] is None and not cut["correct"]

    # the generation prompt may have supplied "<think>\n": the text then starts with the first step
    assert detect_habits("17 + 25 = 42.\n\nSo the answer is 86.\n</think>\n\n\\boxed{86}", P)["correct"]


# ------------------------------------------------------------------------------------------- shipped assets


def test_model_path_names():
    assert model_path().name == "toy-base"
    with pytest.raises(ValueError, match="unknown toy model"):
        model_path("toy-huge")


@pytest.fixture(scope="module")
def tokenizer():
    transformers = pytest.importorskip("transformers")
    return transformers.AutoTokenizer.from_pretrained(model_path("toy-base"))


def test_tokenizer_round_trips_traces_byte_for_byte(tokenizer):
    for t in make_dataset(50, seed=9):
        for text in (t.text, t.problem.question):
            ids = tokenizer.encode(text, add_special_tokens=False)
            assert tokenizer.decode(ids) == text
            assert tokenizer.decode(ids, skip_special_tokens=True) == text  # <think> tags are not "special"


def test_tokenizer_has_one_token_per_digit_and_think_tokens(tokenizer):
    ids = tokenizer.encode("12345 + 6789 = 19134", add_special_tokens=False)
    toks = [tokenizer.decode([i]) for i in ids]
    assert [t for t in toks if any(c.isdigit() for c in t)] == list("12345678919134")
    for tok in tokenizer.get_vocab():
        assert sum(c.isdigit() for c in tokenizer.convert_tokens_to_string([tok])) <= 1, tok
    for tag in ("<think>", "</think>"):
        assert len(tokenizer.encode(tag, add_special_tokens=False)) == 1
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.pad_token_id != tokenizer.eos_token_id


def test_chat_template_opens_the_thinking(tokenizer):
    msgs = [{"role": "user", "content": "Compute 2 + 3."}]
    prompt = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    assert prompt == "<|im_start|>user\nCompute 2 + 3.<|im_end|>\n<|im_start|>assistant\n<think>\n"
    full = tokenizer.apply_chat_template(
        msgs + [{"role": "assistant", "content": "<think>\n2 + 3 = 5.\n</think>\n\n\\boxed{5}"}],
        tokenize=False,
    )
    assert full.startswith(prompt)  # TRL's prompt/completion split relies on this
    assert full.endswith("\\boxed{5}<|im_end|>\n")


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_shipped_model_is_small_and_loads_in_fp32(name):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    path = model_path(name)
    size = sum(f.stat().st_size for f in path.iterdir())
    assert size < 6_000_000
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    assert model.config.model_type == "llama"
    assert next(model.parameters()).dtype == torch.float32


def test_shipped_model_greedy_generates_well_formed_traces(tokenizer):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = transformers.AutoModelForCausalLM.from_pretrained(model_path()).eval()
    problems = make_problems(8, seed=0, split="test")
    prompts = [
        tokenizer.apply_chat_template(p.messages(), add_generation_prompt=True, tokenize=False)
        for p in problems
    ]
    tokenizer.padding_side = "left"
    try:
        enc = tokenizer(prompts, add_special_tokens=False, return_tensors="pt", padding=True)
    finally:
        tokenizer.padding_side = "right"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest, and far faster on a busy machine
    try:
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=300, do_sample=False)
    finally:
        torch.set_num_threads(threads)
    texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    results = [detect_habits("<think>\n" + t, p) for p, t in zip(problems, texts)]
    assert all(r["well_formed"] for r in results), texts
    # the shipped toy-base is right on ~80% of held-out problems under greedy decoding
    assert sum(r["correct"] for r in results) >= 4, texts
