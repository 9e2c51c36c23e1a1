"""Shared pieces of the GRPO training tests: a tiny random Llama, a scripted searching policy, a fake retriever."""

from __future__ import annotations

from pathlib import Path

TOY_BASE = Path(__file__).resolve().parents[1] / "retrosearch" / "assets" / "toy" / "toy-base"
QUESTIONS = [
    ("What is the capital of France?", ["Paris"]),
    ("Which city is the capital of France?", ["Paris"]),
]


class FakeRetriever:
    """Passages `<query> fact i`; records every call's queries."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def retrieve(self, queries: list[str], k: int) -> list[list[object]]:
        from retrosearch.rl.retrievers.base import Passage

        self.calls.append(list(queries))
        return [[Passage(f"{q}-{i}", f"T{i}", f"{q} is a fact {i}.") for i in range(k)] for q in queries]


def searching_policy(prompt: str, ctx) -> list[str]:
    """Queries once, then answers: the even samples of a group search for France and answer Paris (right), the
    odd ones search for Italy and answer Rome (wrong)."""
    done = prompt.split("Assistant: <think>")[-1]
    if "<|begin_of_documents|>" not in done:
        place = "France" if ctx.sample % 2 == 0 else "Italy"
        return [f" look <|begin_of_query|> capital {place}<|end_of_query|>"]
    answer = "Paris" if "capital France" in done else "Rome"
    return [f" so</think>\n<answer> {answer} </answer>"]


def tokenizer():
    import transformers

    return transformers.AutoTokenizer.from_pretrained(str(TOY_BASE))


def tiny_llama(tok, seed: int = 0):
    import torch
    import transformers

    config = transformers.LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    return transformers.LlamaForCausalLM(config)


def dataset(n_repeat: int = 1, only_first: bool = False):
    import datasets

    rows = [{"prompt": q, "answer": a} for q, a in QUESTIONS[: 1 if only_first else None]] * n_repeat
    return datasets.Dataset.from_list(rows)


def pp_policy(prompt: str, ctx) -> list[str]:
    """R1-Searcher++'s tags: even samples search and answer Paris (right), odd ones recall and answer Rome."""
    done = prompt.split("Assistant: <think>")[-1]
    if "<document>" in done:
        return [" so</think>\n<answer> Paris </answer>"]
    if ctx.sample % 2 == 0:
        return [" check <external> capital France </external>"]
    return [" I know. <internal> Rome is a city. </internal></think>\n<answer> Rome </answer>"]


def train_config(tmp_path, **kw):
    from retrosearch.rl.train import RLTrainConfig

    base = {
        "train_file": "unused.jsonl",
        "num_generations": 2,
        "per_device_train_batch_size": 4,
        "max_steps": 1,
        "max_completion_length": 256,
        "max_tokens_per_turn": 64,
        "output_dir": str(tmp_path / "out"),
        "rewards": ("r1searcher_stage2",),
        "loss_type": "grpo",
        "learning_rate": 1e-2,
        "save_steps": 1,
        "use_cpu": True,
    }
    return RLTrainConfig(**{**base, **kw})
