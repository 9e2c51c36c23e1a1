"""The GRPO training config: GRPOConfig's main fields (TRL's names) plus the search rollouts, rewards, retriever."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrosearch.config import check_choices, load_yaml, option
from retrosearch.rl.protocols import PROTOCOL_NAMES
from retrosearch.rl.retrievers.factory import HTTP_APIS, RETRIEVER_KINDS

__all__ = ["LOSS_TYPES", "RECIPES", "REWARDS", "SCALE_REWARDS", "RLTrainConfig", "load_config", "recipe_path"]

#: The reward functions a config names (summed by TRL with `reward_weights`; each is logged on its own).
REWARDS: tuple[str, ...] = (
    "r1searcher_stage1",
    "r1searcher_stage2",
    "r1pp_answer",
    "r1pp_format",
    "r1pp_group",
)
#: TRL 1.16's policy losses (`GRPOConfig.loss_type`).
LOSS_TYPES: tuple[str, ...] = ("grpo", "bnpo", "dr_grpo", "dapo", "cispo", "sapo", "luspo", "vespo")
#: TRL's reward scaling: by the group's std (GRPO), the batch's, or none (REINFORCE++ with a group baseline).
SCALE_REWARDS: tuple[str, ...] = ("group", "batch", "none")
#: The shipped recipes, by name (`retrosearch rl train --config r1searcher-stage1`).
RECIPES: tuple[str, ...] = ("r1searcher-stage1", "r1searcher-stage2", "r1searcher-pp")
_RECIPE_DIR = Path(__file__).resolve().parent / "recipes"
#: Our fields that are `trl.GRPOConfig` fields too, passed to it under the same name.
GRPO_FIELDS: tuple[str, ...] = (
    "output_dir", "max_steps", "num_train_epochs", "learning_rate", "lr_scheduler_type", "warmup_steps",
    "weight_decay", "max_grad_norm", "per_device_train_batch_size", "gradient_accumulation_steps",
    "steps_per_generation", "num_generations", "max_completion_length", "temperature", "top_p", "beta", "epsilon",
    "num_iterations", "loss_type", "scale_rewards", "mask_truncated_completions", "reward_weights", "seed",
    "logging_steps", "save_steps", "save_total_limit", "use_vllm", "vllm_mode", "vllm_server_base_url",
    "vllm_gpu_memory_utilization", "report_to", "gradient_checkpointing", "log_completions",
)  # fmt: skip


@dataclass
class RLTrainConfig:
    """Search-augmented GRPO on TRL: what to train, on which questions, with which rollouts and rewards.

    Fields named as in `trl.GRPOConfig` go to it unchanged; any other GRPOConfig field goes in `grpo_args`.
    """

    # ---- model and data
    model: str = option("toy-searcher-base", "Policy: a shipped model's name, a folder or a hub id.")
    train_file: str | None = option(
        None, "Questions: a .jsonl/.parquet file or a QA benchmark name (question and answer fields)."
    )
    data_dir: str | None = option(None, "Folder holding qa/ for benchmark names.")
    question_field: str = option("question", "Field of the question in train_file.")
    answer_field: str = option("answer", "Field of the gold answer(s) in train_file.")
    max_examples: int | None = option(None, "Use only the first this many questions.")
    # ---- rollouts (the search-rollout program)
    protocol: str = option("r1-searcher", "Tag protocol of the rollouts.", choices=PROTOCOL_NAMES)
    top_k: int = option(3, "Documents per query (R1-Searcher trains with 3).")
    max_retrievals: int = option(8, "Most retrievals per rollout.")
    max_tokens_per_turn: int = option(512, "Most new tokens per generation segment.")
    use_chat_template: bool = option(False, "Prompt through the tokenizer's chat template (instruct models).")
    stop_at_answer: bool = option(True, "End a rollout at the answer's closing tag.")
    generation_batch_size_live: int = option(16, "Rows per generate call of the live (CPU) backend.")
    # ---- retriever
    retriever: str = option("bm25", "Retriever kind.", choices=RETRIEVER_KINDS)
    corpus: str | None = option(
        None, "Passages jsonl for bm25/dense (default: the toy world's for toy data)."
    )
    index: str | None = option(
        None, "Index folder: loaded when it holds one, else built from corpus and saved."
    )
    url: str | None = option(None, "Retriever server for http.")
    retriever_api: str = option("search-r1", "Wire format of the http retriever.", choices=HTTP_APIS)
    # ---- rewards
    rewards: tuple[str, ...] = option(("r1searcher_stage2",), "Reward functions, summed.", choices=None)
    reward_weights: tuple[float, ...] | None = option(None, "Weight of each reward function (None: 1 each).")
    retrieval_reward: float = option(0.5, "Stage 1: reward for at least one retrieval.")
    format_reward: float = option(0.5, "Stage 1: reward for a well-formed rollout.")
    format_penalty: float = option(-2.0, "Stage 2 and R_format: added for a malformed rollout.")
    max_answer_words: int = option(10, "R_answer: longest correct answer, in words.")
    eta: float = option(2.0, "R_group's clip (R1-Searcher++: 2).")
    memorize_coef: float = option(
        0.0,
        "mu of L = -J + mu * L_M: NLL on correct retrieving rollouts rewritten as recall (R1-Searcher++: 0.1).",
    )
    # ---- GRPOConfig (TRL's names and meanings)
    output_dir: str = option("runs/rl-train", "Checkpoints, the final model and rl_train_summary.json.")
    max_steps: int = option(100, "Optimizer steps (-1: num_train_epochs epochs).")
    num_train_epochs: float = option(1.0, "Epochs when max_steps is -1.")
    learning_rate: float = option(2e-6, "Peak learning rate (R1-Searcher: 2e-6).")
    lr_scheduler_type: str = option("constant", "Learning-rate schedule (transformers' names).")
    warmup_steps: float = option(0.0, "Warm-up steps (a fraction of all steps when < 1).")
    weight_decay: float = option(0.0, "AdamW weight decay.")
    max_grad_norm: float = option(1.0, "Gradient clipping norm.")
    per_device_train_batch_size: int = option(8, "Completions per device per micro-batch.")
    gradient_accumulation_steps: int = option(1, "Micro-batches per optimizer step.")
    steps_per_generation: int | None = option(
        None, "Micro-batches per generation (None: accumulation steps)."
    )
    num_generations: int = option(8, "Rollouts per question (G; R1-Searcher: 16).")
    max_completion_length: int = option(2048, "Most completion tokens per rollout, documents included.")
    temperature: float = option(1.0, "Sampling temperature.")
    top_p: float = option(0.95, "Nucleus sampling mass.")
    beta: float = option(0.0, "KL coefficient against the reference model.")
    epsilon: float = option(0.2, "PPO-style clip of the importance ratio.")
    num_iterations: int = option(1, "Optimisation passes per generation batch.")
    loss_type: str = option("grpo", "TRL's policy loss.", choices=LOSS_TYPES)
    scale_rewards: str = option(
        "group", "Advantage scaling; none = REINFORCE++ with a group baseline.", choices=SCALE_REWARDS
    )
    mask_truncated_completions: bool = option(
        False,
        "Leave rollouts a token cap ended out of the loss. Rollouts that end on the answer tag (or by a "
        "protocol rule) get an EOS id as an environment token, so only real truncations are masked.",
    )
    seed: int = option(0, "Seed of the model init, data order and rollouts.")
    logging_steps: int = option(1, "Log every this many steps.")
    save_steps: int = option(50, "Checkpoint every this many steps.")
    save_total_limit: int | None = option(None, "Keep only the newest this many checkpoints.")
    resume: bool | str = option(
        "auto",
        "Resume: true (the newest checkpoint), auto (when there is one), false, or a checkpoint folder.",
    )
    use_vllm: bool = option(False, "Generate with TRL's vLLM (GPUs) instead of the live model.")
    vllm_mode: str = option("colocate", "TRL's vLLM mode.", choices=("colocate", "server"))
    vllm_server_base_url: str | None = option(None, "The trl vllm-serve server (server mode).")
    vllm_gpu_memory_utilization: float = option(0.3, "GPU share of the colocated vLLM.")
    report_to: str = option("none", "Where to report metrics (transformers' names).")
    gradient_checkpointing: bool = option(False, "Recompute activations in the backward pass.")
    log_completions: bool = option(False, "Log sample completions (TRL).")
    use_cpu: bool | None = option(
        None, "Train on CPU (None: when there is no GPU; needed for a CPU DDP group)."
    )
    grpo_args: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": "More trl.GRPOConfig fields, by name (YAML only).", "cli": False},
    )

    def __post_init__(self) -> None:
        for name in ("rewards", "reward_weights"):
            value = getattr(self, name)
            if isinstance(value, (list, str, int, float)) and not isinstance(value, bool):
                setattr(self, name, tuple(value) if isinstance(value, list) else (value,))

    def validate(self) -> None:
        """Raise `ValueError` naming the field and why (before anything heavy is loaded)."""
        check_choices(self)
        bad = sorted(set(self.rewards) - set(REWARDS))
        if not self.rewards or bad:
            raise ValueError(f"RLTrainConfig.rewards: {bad or 'none given'}; choose among {list(REWARDS)}")
        if self.reward_weights is not None and len(self.reward_weights) != len(self.rewards):
            raise ValueError(
                f"RLTrainConfig.reward_weights: {len(self.reward_weights)} weights for {len(self.rewards)} rewards"
            )
        for name in ("num_generations", "per_device_train_batch_size", "top_k", "max_tokens_per_turn"):
            if getattr(self, name) < 1:
                raise ValueError(f"RLTrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_generations < 2:
            raise ValueError(
                "RLTrainConfig.num_generations must be >= 2: GRPO compares rollouts of a question"
            )
        if self.memorize_coef < 0 or self.eta < 0:
            raise ValueError("RLTrainConfig.memorize_coef and eta must be >= 0")
        if not isinstance(self.resume, bool) and not isinstance(self.resume, str):
            raise ValueError(
                f"RLTrainConfig.resume must be true, false, auto or a folder, got {self.resume!r}"
            )
        local = self.per_device_train_batch_size * (
            self.steps_per_generation or self.gradient_accumulation_steps
        )
        if "r1pp_group" in self.rewards and local % self.num_generations:
            # R_group compares a question's rollouts inside one reward call: a group must not straddle ranks.
            raise ValueError(
                "RLTrainConfig: r1pp_group needs whole groups on each process: per_device_train_batch_size x "
                f"steps_per_generation ({local}) must be a multiple of num_generations ({self.num_generations})"
            )
        if not isinstance(self.grpo_args, Mapping):
            raise ValueError("RLTrainConfig.grpo_args must be a mapping of trl.GRPOConfig fields")
        clash = sorted(set(self.grpo_args) & {f.name for f in dataclasses.fields(self)})
        if clash:
            raise ValueError(f"RLTrainConfig.grpo_args: {clash} are fields of their own; set them directly")
        if not self.train_file:
            raise ValueError("RLTrainConfig.train_file: give the training questions (a jsonl/parquet file)")
        if self.retriever == "http" and not self.url:
            raise ValueError("RLTrainConfig.url: an http retriever needs the server's url")

    def grpo_kwargs(self) -> dict[str, Any]:
        """The `trl.GRPOConfig` keyword arguments this config gives (its own fields, then `grpo_args`)."""
        out = {name: getattr(self, name) for name in GRPO_FIELDS}
        out["reward_weights"] = list(self.reward_weights) if self.reward_weights is not None else None
        out["warmup_steps"] = self.warmup_steps if self.warmup_steps < 1 else int(self.warmup_steps)
        return {**out, **dict(self.grpo_args)}


def recipe_path(name: str) -> Path:
    """The YAML file of a shipped recipe (`RECIPES`), or `name` itself when it is a file."""
    if name in RECIPES:
        return _RECIPE_DIR / f"{name}.yaml"
    path = Path(name)
    if not path.is_file():
        raise ValueError(f"config {name!r}: neither a YAML file nor a shipped recipe ({', '.join(RECIPES)})")
    return path


def load_config(name: str | None = None, **overrides: Any) -> RLTrainConfig:
    """A config from a recipe name or YAML file (or the defaults), with `overrides` on top."""
    cfg = load_yaml(RLTrainConfig, recipe_path(name)) if name else RLTrainConfig()
    return dataclasses.replace(cfg, **overrides) if overrides else cfg
