"""Rewards: QA metrics, R1-Searcher's format check (each rule a named reason), stage-1 and stage-2 rewards."""

from __future__ import annotations

import pytest

from retrosearch.rl.rewards import (
    FORMAT_RULES,
    Stage1Reward,
    Stage2Reward,
    check_format,
    count_retrievals,
    cover_em,
    em,
    f1,
    stage1_reward,
    stage2_reward,
)

DOCS = "\n\n<|begin_of_documents|>\n(1)Title: Paris Text: Paris is the capital.\n<|end_of_documents|>\n\n"
GOOD = f"I search. <|begin_of_query|> capital France<|end_of_query|>{DOCS}So it is Paris.</think>\n\n<answer> Paris </answer>"


def test_qa_metrics_take_the_best_gold_alias() -> None:
    assert cover_em("It is the city of Paris.", ["Lyon", "paris"])
    assert not cover_em("Parisian", ["Paris"]) and not cover_em(None, ["Paris"])
    assert em("The Paris", ["paris"]) and not em("Paris, France", ["paris"])
    assert f1("Paris France", ["Paris"]) == pytest.approx(2 / 3)
    assert f1("Paris France", '["Lyon", "Paris France"]') == 1.0 and f1(None, ["x"]) == 0.0


def test_a_well_formed_r1_searcher_rollout_passes() -> None:
    check = check_format(GOOD)
    assert check.ok and check.reasons == () and bool(check)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # A query without its documents (or a documents block the model wrote itself).
        (GOOD.replace(DOCS, ""), "tag_balance"),
        (GOOD + DOCS, "tag_balance"),
        (GOOD + " <answer> Lyon </answer>", "one_answer"),
        (GOOD.replace("<answer> Paris </answer>", "Paris"), "one_answer"),
        (GOOD.replace("</answer>", "").replace("<answer>", "</answer><answer>"), "one_answer"),
        (GOOD.replace("<answer> Paris", "<answer> <|begin_of_query|> Paris"), "tags_in_answer"),
        (GOOD.replace(" Paris </answer>", " " + "very " * 10 + "Paris </answer>"), "answer_too_long"),
        (GOOD.replace("</think>", ""), "think_structure"),
        (GOOD.replace("I search.", "<think> I search."), "think_structure"),
        (
            GOOD.replace(
                "So it is Paris.</think>\n\n<answer> Paris </answer>", "<answer> Paris </answer></think>"
            ),
            "think_structure",
        ),
    ],
)
def test_each_broken_rule_is_named(text: str, reason: str) -> None:
    check = check_format(text)
    assert not check.ok and reason in check.reasons and set(check.reasons) <= set(FORMAT_RULES)


def test_ten_words_is_still_short_enough() -> None:
    ten = " ".join(["w"] * 10)
    assert check_format(GOOD.replace(" Paris </answer>", f" {ten} </answer>")).ok
    assert check_format(GOOD.replace(" Paris </answer>", f" {ten} x </answer>")).reasons == (
        "answer_too_long",
    )


def test_search_r1_allows_several_think_blocks() -> None:
    text = (
        "<think>a</think><search> q </search>\n\n<information>Doc 1(Title: T) x</information>\n\n"
        "<think>b</think><answer> x </answer>"
    )
    assert check_format(text, "search-r1").ok
    assert not check_format(text, "r1-searcher").ok
    assert check_format(text.replace("<think>b</think>", "<think>b"), "search-r1").reasons == (
        "think_structure",
    )


def test_stage1_rewards_retrieval_and_format() -> None:
    assert stage1_reward(GOOD, 1) == 1.0
    assert stage1_reward(GOOD.replace("</think>", ""), 1) == 0.5
    no_search = "So it is Paris.</think>\n\n<answer> Paris </answer>"
    assert stage1_reward(no_search, 0) == 0.5
    assert stage1_reward(GOOD, 1, retrieval_reward=0.3, format_reward=0.2) == pytest.approx(0.5)
    assert count_retrievals(GOOD) == 1


def test_stage2_is_f1_plus_the_format_penalty() -> None:
    assert stage2_reward(GOOD, ["Paris"]) == 1.0
    assert stage2_reward(GOOD.replace("Paris </answer>", "Paris France </answer>"), "Paris") == pytest.approx(
        2 / 3
    )
    broken = GOOD + " <answer> Lyon </answer>"
    assert stage2_reward(broken, ["Lyon"]) == pytest.approx(1.0 - 2.0)
    assert stage2_reward(broken, ["Lyon"], format_penalty=-1.0) == pytest.approx(0.0)


def test_trl_reward_functions_read_the_rollouts_extra_fields() -> None:
    stage1, stage2 = Stage1Reward(), Stage2Reward(format_penalty=-1.0)
    assert stage1.__name__ == "r1searcher_stage1" and stage2.__name__ == "r1searcher_stage2"
    bad = "no tags at all"
    # TRL's decoded completions are used when the rollout gives no text of its own.
    assert stage1([GOOD, bad]) == [1.0, 0.0]
    # `retrievals` from the rollout beats counting blocks; `completion_text` beats TRL's decoding.
    assert stage1(["ignored", "ignored"], completion_text=[GOOD, bad], retrievals=[0, 3]) == [0.5, 0.5]
    assert stage2([GOOD, bad], answer=["Paris", ["x", "no tags at all"]]) == [1.0, -1.0]
    # A fallback answer of the rollout is graded, not the text's.
    assert stage2([GOOD], answer=["I don't know"], final_answer=["I don't know."]) == [1.0]
    conversational = [[{"role": "assistant", "content": GOOD}]]
    assert stage2(conversational, answer=["Paris"]) == [1.0]
    with pytest.raises(KeyError, match="no 'answer' field"):
        stage2([GOOD])
    with pytest.raises(ValueError, match="2 values for 1 completions"):
        stage2([GOOD], answer=["a", "b"])
