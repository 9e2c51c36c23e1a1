"""GRPO training glue without a model: the config, R1-Searcher++'s rewards, the rewrite, the rollout_func contract."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from _rl_train_fixtures import FakeRetriever, searching_policy

from retrosearch.backends.scripted import ScriptedBackend
from retrosearch.rl.group_reward import AnswerReward, FormatReward, GroupReward, answer_reward, group_bonus
from retrosearch.rl.memorize import best_sentence, memorization_targets, rewrite_internal, sft_examples
from retrosearch.rl.rollout import SearchRollout, SearchRolloutConfig
from retrosearch.rl.train.config import RECIPES, RLTrainConfig, load_config
from retrosearch.rl.train.rollout_func import SearchRolloutFunc, chunk_groups, question_of, terminate

PP_TEXT = (
    " I need to look. <external> capital France </external>\n\n<document>\n(1)Title: Paris Text: Paris is the "
    "capital of France. It is large.\n(2)Title: Lyon Text: Lyon is a city.\n</document>\n\n"
    "So it is Paris.</think>\n<answer> Paris </answer>"
)


# ------------------------------------------------------------------------------------------ R_group
def test_group_bonus_goes_to_the_fewest_retrievals_and_scales_with_the_spread() -> None:
    # Correct rollouts retrieved 0 and 2 times: sigma = 1, the one that did not retrieve gets it.
    assert group_bonus([0, 2, 5], [True, True, False]) == [1.0, 0.0, 0.0]
    # 0, 0, 6 among the correct: sigma = sqrt(8) > eta, clipped at 2; both tied at 0 get it.
    assert group_bonus([0, 0, 6], [True, True, True]) == [2.0, 2.0, 0.0]
    assert group_bonus([0, 0, 6], [True, True, True], eta=1.5) == [1.5, 1.5, 0.0]


def test_group_bonus_edge_cases() -> None:
    assert group_bonus([2, 2, 2], [True, True, True]) == [0.0, 0.0, 0.0]  # all equal: no spread
    assert group_bonus([0, 3, 1], [False, False, False]) == [0.0, 0.0, 0.0]  # none correct
    assert group_bonus([0, 3], [True, False]) == [0.0, 0.0]  # one correct: nothing to compare
    assert group_bonus([], []) == []
    # An incorrect rollout with fewer retrievals neither wins nor counts in the spread.
    assert group_bonus([0, 1, 3], [False, True, True]) == [0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="retrieval counts"):
        group_bonus([1], [True, False])


def test_answer_reward_needs_cover_em_and_a_short_answer() -> None:
    assert answer_reward("the city of Paris", ["Paris"]) == 1.0
    assert answer_reward("Rome", ["Paris"]) == 0.0
    assert answer_reward(" ".join(["Paris"] * 11), ["Paris"]) == 0.0
    assert answer_reward(None, ["Paris"]) == 0.0


def test_pp_reward_functions_read_the_rollout_fields_per_group() -> None:
    recalled = (
        " I know it. <internal> Paris is the capital of France. </internal></think>\n<answer> Paris </answer>"
    )
    kw = {
        "answer": [["Paris"]] * 4,
        "final_answer": ["Paris", "Paris", "Rome", None],
        "completion_text": [
            PP_TEXT,
            recalled,
            PP_TEXT.replace("Paris </answer>", "Rome </answer>"),
            "no tags",
        ],
        "retrievals": [1, 0, 1, 0],
        "group_id": ["a", "a", "b", "b"],
    }
    assert AnswerReward()(["x"] * 4, **kw) == [1.0, 1.0, 0.0, 0.0]
    assert FormatReward()(["x"] * 4, **kw) == [0.0, 0.0, 0.0, -2.0]
    # Group a: both correct, retrieving 1 and 0 times: sigma = 0.5 to the one that recalled; group b: none correct.
    assert GroupReward()(["x"] * 4, **kw) == [0.0, 0.5, 0.0, 0.0]
    # Without group ids, runs of equal prompts are the groups.
    no_ids = {k: v for k, v in kw.items() if k != "group_id"}
    assert GroupReward()(["x"] * 4, prompts=["p", "p", "q", "q"], **no_ids) == [0.0, 0.5, 0.0, 0.0]


# ------------------------------------------------------------------------------------------ memorization
def test_rewrite_replaces_each_retrieval_by_the_recalled_sentence() -> None:
    out = rewrite_internal(PP_TEXT, "r1-searcher++", ["Paris"])
    assert out == (
        " I need to look. <internal> Paris is the capital of France. </internal>\n\n"
        "So it is Paris.</think>\n<answer> Paris </answer>"
    )
    assert "<document>" not in out and "<external>" not in out
    r1 = (
        PP_TEXT.replace("<external>", "<|begin_of_query|>")
        .replace("</external>", "<|end_of_query|>")
        .replace("<document>", "<|begin_of_documents|>")
        .replace("</document>", "<|end_of_documents|>")
    )
    assert "I recall that Paris is the capital of France." in rewrite_internal(r1, "r1-searcher", ["Paris"])
    assert rewrite_internal("no search here</think><answer> x </answer>", "r1-searcher++") is None


def test_best_sentence_prefers_the_answer_then_the_query_words() -> None:
    docs = (
        "(1)Title: A Text: Lyon is a city. Paris is big.\n(2)Title: B Text: The capital of France is Paris."
    )
    assert best_sentence(docs, "capital France", ["Paris"]) == "Paris is big."
    assert best_sentence(docs, "capital France") == "The capital of France is Paris."
    assert best_sentence("", "q") is None


def test_memorization_targets_mask_the_prompt_only() -> None:
    ids, mask = memorization_targets(
        [7, 8, 9], PP_TEXT, lambda t: list(range(100, 100 + len(t.split()))), golds=["Paris"], eos_token_id=2
    )
    assert ids[:3] == [7, 8, 9] and ids[-1] == 2
    assert mask == [0, 0, 0] + [1] * (len(ids) - 3)
    assert memorization_targets([1], "no retrieval", lambda t: [5]) is None


def _rollout(ids, env, answer, text, finish="answer", retrievals=1):
    return SearchRollout([1, 2], ids, env, None, text, [], retrievals, answer, finish, 0)


def test_sft_examples_keep_correct_well_formed_rollouts_with_documents_masked() -> None:
    good = _rollout([10, 11, 12, 13], [1, 0, 0, 1], "Paris", PP_TEXT)
    wrong = _rollout([10], [1], "Rome", PP_TEXT)
    broken = _rollout([10], [1], "Paris", "Paris")
    rows, counts = sft_examples([(good, ["Paris"]), (wrong, ["Paris"]), (broken, ["Paris"])], eos_token_id=2)
    assert counts == {"seen": 3, "kept": 1, "incorrect": 1, "malformed": 1}
    assert rows == [{"input_ids": [1, 2, 10, 11, 12, 13, 2], "completion_mask": [0, 0, 1, 0, 0, 1, 1]}]


# ------------------------------------------------------------------------------------------ rollout_func
def test_chunk_groups_follow_trls_repeated_prompts() -> None:
    assert chunk_groups(["a", "a", "b", "b"], 2) == [(0, 2), (2, 2)]
    assert chunk_groups(["a", "b", "b", "c"], 2) == [(0, 1), (1, 2), (3, 1)]  # a slice cut inside groups
    assert chunk_groups(["a"] * 4, 2) == [(0, 2), (2, 2)]  # the same question twice in a row: two groups
    assert question_of([{"role": "system", "content": "s"}, {"role": "user", "content": "q?"}]) == "q?"


def test_terminate_appends_eos_as_an_environment_token_unless_truncated() -> None:
    r = SearchRollout([1], [5, 6], [1, 1], [-0.5, -0.5], "t", [], 0, "x", "answer", 0)
    t = terminate(r, 2)
    assert (t.completion_ids, t.env_mask, t.logprobs) == ([5, 6, 2], [1, 1, 0], [-0.5, -0.5, 0.0])
    cut = SearchRollout([1], [5, 6], [1, 1], None, "t", [], 0, None, "length", 0)
    assert terminate(cut, 2) is cut
    ended = SearchRollout([1], [5, 2], [1, 1], None, "t", [], 0, None, "eos", 0)
    assert terminate(ended, 2) is ended


def fake_trainer(tok, n: int = 2):
    return SimpleNamespace(
        num_generations=n,
        model=SimpleNamespace(training=True),
        processing_class=tok,
        eos_token_ids=[tok.eos_token_id],
        state=SimpleNamespace(global_step=3),
        accelerator=SimpleNamespace(process_index=0),
    )


def test_rollout_func_returns_one_completion_per_prompt_in_order() -> None:
    from _rl_train_fixtures import tokenizer

    tok = tokenizer()
    retriever = FakeRetriever()
    fn = SearchRolloutFunc(
        SearchRolloutConfig(max_tokens_per_turn=64, max_completion_length=512),
        retriever,
        backend=ScriptedBackend(searching_policy, tokenizer=tok),
    )
    prompts = ["Q1", "Q1", "Q2", "Q2"]
    out = fn(prompts, fake_trainer(tok))
    assert {"prompt_ids", "completion_ids", "logprobs", "env_mask", "group_id", "final_answer"} <= set(out)
    assert all(len(out[k]) == 4 for k in ("prompt_ids", "completion_ids", "env_mask", "retrievals"))
    assert out["final_answer"] == ["Paris", "Rome", "Paris", "Rome"]
    assert out["group_id"][0] == out["group_id"][1] != out["group_id"][2]
    assert [len(c) for c in retriever.calls] == [4]  # one wave: every branch's query in one call
    for ids, env, lps, text in zip(
        out["completion_ids"], out["env_mask"], out["logprobs"], out["completion_text"]
    ):
        assert len(ids) == len(env) == len(lps) and ids[-1] == tok.eos_token_id and env[-1] == 0
        docs = tok.decode([i for i, m in zip(ids, env) if m == 0][:-1])
        assert docs.strip().startswith("<|begin_of_documents|>") and docs.rstrip().endswith(
            "<|end_of_documents|>"
        )
        assert tok.decode(ids[:-1]) == text  # exact ids: the text is what the ids say


# ------------------------------------------------------------------------------------------ config
def test_recipes_load_and_validate() -> None:
    for name in RECIPES:
        cfg = load_config(name)
        cfg.validate()
        assert cfg.scale_rewards == "none"  # REINFORCE++ with a group baseline
    pp = load_config("r1searcher-pp")
    assert pp.memorize_coef == 0.1 and pp.eta == 2.0 and pp.protocol == "r1-searcher++"
    assert load_config("r1searcher-stage1", num_generations=4).num_generations == 4


def test_config_refuses_bad_values_with_the_reason() -> None:
    base = {"train_file": "q.jsonl"}
    with pytest.raises(ValueError, match="rewards"):
        RLTrainConfig(**base, rewards=("nope",)).validate()
    with pytest.raises(ValueError, match="loss_type"):
        RLTrainConfig(**base, loss_type="ppo").validate()
    with pytest.raises(ValueError, match="whole groups"):
        RLTrainConfig(
            **base, rewards=("r1pp_group",), num_generations=4, per_device_train_batch_size=2
        ).validate()
    with pytest.raises(ValueError, match="set them directly"):
        RLTrainConfig(**base, grpo_args={"beta": 0.1}).validate()
    with pytest.raises(ValueError, match="train_file"):
        RLTrainConfig().validate()
    kw = RLTrainConfig(**base, grpo_args={"shuffle_dataset": False}).grpo_kwargs()
    assert kw["shuffle_dataset"] is False and kw["scale_rewards"] == "group" and "memorize_coef" not in kw


def test_cli_flags_override_the_recipe(tmp_path) -> None:
    import argparse

    from retrosearch.cli.rl import train as cli

    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(
        ["train", "--config", "r1searcher-stage2", "--num-generations", "4", "--loss-type", "grpo",
         "--rewards", "r1searcher_stage1", "r1searcher_stage2", "--output-dir", str(tmp_path)]
    )  # fmt: skip
    cfg = cli.config_from_args(args)
    assert (cfg.num_generations, cfg.loss_type, cfg.rewards) == (
        4,
        "grpo",
        ("r1searcher_stage1", "r1searcher_stage2"),
    )
    assert cfg.format_penalty == -2.0 and cfg.output_dir == str(tmp_path)  # the rest from the recipe
