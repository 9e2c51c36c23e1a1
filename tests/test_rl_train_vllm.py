"""The TRL-vLLM backend against a fake `vllm_generation`: call counts across ranks, shapes, stops, padding."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
from _rl_train_fixtures import FakeRetriever, tokenizer

from retrosearch.backends.trl_vllm import TRLVLLMBackend
from retrosearch.rl.rollout import SearchRolloutConfig
from retrosearch.rl.train.rollout_func import SearchRolloutFunc
from retrosearch.types import GenerationRequest


class ThreadGather:
    """`gather_object` across threads standing for ranks: a mismatched number of calls times out."""

    def __init__(self, world: int) -> None:
        self.barrier = threading.Barrier(world, timeout=20)
        self.slots: list[list] = [[] for _ in range(world)]

    def for_rank(self, rank: int):
        def gather(obj: list) -> list:
            self.slots[rank] = list(obj)
            self.barrier.wait()
            out = [x for s in self.slots for x in s]
            self.barrier.wait()
            return out

        return gather


class FakeVLLMGeneration:
    """Stands for TRL's `VLLMGeneration`: reads its sampling attributes, writes what a script says, cuts at
    `generation_kwargs["stop"]` (kept) and `max_completion_length`, and gathers like server mode does."""

    def __init__(self, tok, script, gather=None) -> None:
        self.tok, self.script, self.gather = tok, script, gather
        self.temperature, self.top_p, self.max_completion_length = 1.0, 1.0, 16
        self.generation_kwargs: dict = {}
        self.calls: list[dict] = []

    def generate(self, prompts, images, num_generations):
        if self.gather is not None:
            self.gather([len(prompts)])  # the collective inside server mode
        stop = self.generation_kwargs.get("stop", [])
        self.calls.append(
            {"rows": len(prompts), "n": num_generations, "stop": list(stop), "max": self.max_completion_length,
             "temperature": self.temperature}
        )  # fmt: skip
        completions = []
        for p in prompts:
            text = self.script(self.tok.decode(p))
            for s in stop:
                if s in text:
                    text = text[: text.index(s) + len(s)]
            ids = self.tok(text, add_special_tokens=False)["input_ids"][: self.max_completion_length]
            completions.append(ids)
        logprobs = [[[-0.25] for _ in ids] for ids in completions]
        return prompts, completions, logprobs, [[[t] for t in ids] for ids in completions]


def two_searches(prompt: str) -> str:
    done = prompt.split("Assistant:")[-1]
    k = done.count("<|begin_of_documents|>")
    if k < 2:
        return f" step {k} <|begin_of_query|> topic {k}<|end_of_query|> unseen"
    return " done</think>\n<answer> Paris </answer> unseen"


def answers_at_once(prompt: str) -> str:
    return " easy</think>\n<answer> Paris </answer>"


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


def trainer(tok, vg, rank: int):
    return SimpleNamespace(
        num_generations=2, model=SimpleNamespace(training=True), processing_class=tok, use_vllm=True,
        vllm_generation=vg, eos_token_ids=[tok.eos_token_id], state=SimpleNamespace(global_step=0),
        accelerator=SimpleNamespace(process_index=rank),
    )  # fmt: skip


def test_ranks_call_vllm_the_same_number_of_times_when_one_finishes_early(tok) -> None:
    world = ThreadGather(2)
    scripts = [two_searches, answers_at_once]
    vgs = [FakeVLLMGeneration(tok, scripts[r], gather=world.for_rank(r)) for r in range(2)]
    results: list = [None, None]
    errors: list = []

    def rank_main(r: int) -> None:
        try:
            backend = TRLVLLMBackend(vgs[r], tok, gather=world.for_rank(r))
            fn = SearchRolloutFunc(
                SearchRolloutConfig(max_tokens_per_turn=48), FakeRetriever(), backend=backend
            )
            results[r] = (fn(["Q", "Q"], trainer(tok, vgs[r], r)), backend.rounds)
        except Exception as e:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=rank_main, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    (out0, rounds0), (out1, rounds1) = results
    assert len(vgs[0].calls) == len(vgs[1].calls) == 3  # rank 1 answered at once, then padded two rounds
    assert rounds0 == rounds1 == 4  # three generation rounds and the closing one that finds nobody active
    # Rank 1: its group (one prompt sent twice, n=2), then a one-token dummy per round; rank 0: its rows.
    assert [c["rows"] for c in vgs[1].calls] == [2, 1, 1]
    assert [c["rows"] for c in vgs[0].calls] == [2, 2, 2]
    assert [c["n"] for c in vgs[0].calls] == [
        2,
        1,
        1,
    ]  # first turn: the group's G samples; later turns: one each
    assert out0["retrievals"] == [2, 2] and out1["retrievals"] == [0, 0]
    assert out0["final_answer"] == out1["final_answer"] == ["Paris", "Paris"]
    for out in (out0, out1):
        assert all(len(i) == len(m) == len(lp) for i, m, lp in zip(out["completion_ids"], out["env_mask"],
                                                                     out["logprobs"]))  # fmt: skip
        assert all(
            lp == -0.25 for row, m in zip(out["logprobs"], out["env_mask"]) for lp, b in zip(row, m) if b
        )


def test_a_round_has_one_call_per_setting_and_restores_the_settings(tok) -> None:
    vg = FakeVLLMGeneration(tok, lambda p: " a b c d e f g h <|end_of_query|> tail")
    backend = TRLVLLMBackend(vg, tok, gather=lambda obj: list(obj))
    ids = tuple(tok("Question", add_special_tokens=False)["input_ids"])
    reqs = [
        GenerationRequest(
            "q", ids, n=2, temperature=0.7, max_tokens=64, stop=("<|end_of_query|>",), logprobs=True
        ),
        GenerationRequest("q", ids, n=1, temperature=1.0, max_tokens=3, logprobs=True),
        GenerationRequest("q", ids, n=1, temperature=1.0, max_tokens=5, logprobs=False),
    ]
    out = backend.generate(reqs)
    assert [len(o) for o in out] == [2, 1, 1]
    assert sorted((c["n"], c["temperature"], c["max"]) for c in vg.calls) == [(1, 1.0, 5), (2, 0.7, 64)]
    assert out[0][0].text.endswith("<|end_of_query|>") and out[0][0].finish_reason == "stop"
    assert len(out[1][0].token_ids) == 3 and out[1][0].finish_reason == "length"  # its own max_tokens
    assert out[2][0].logprobs is None and out[1][0].logprobs == [-0.25] * 3
    assert (vg.temperature, vg.max_completion_length, vg.generation_kwargs) == (1.0, 16, {})


def test_banned_words_and_missing_ids_are_refused(tok) -> None:
    backend = TRLVLLMBackend(FakeVLLMGeneration(tok, lambda p: "x"), tok, gather=lambda obj: list(obj))
    with pytest.raises(ValueError, match="ban"):
        backend.generate([GenerationRequest("q", (1, 2), banned_words=("no",))])
    with pytest.raises(ValueError, match="prompt ids"):
        backend.generate([GenerationRequest("q")])
