"""GRPO on TRL for search agents: the trainer (with R1-Searcher++'s memorization loss), its parts, the run."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
from trl import GRPOConfig, GRPOTrainer

from retrosearch.backends.locate import locate_model
from retrosearch.config import to_dict
from retrosearch.rl.group_reward import AnswerReward, FormatReward, GroupReward, answer_reward
from retrosearch.rl.memorize import memorization_targets
from retrosearch.rl.rewards import Stage1Reward, Stage2Reward, check_format
from retrosearch.rl.rollout import SearchRolloutConfig
from retrosearch.rl.train.config import RLTrainConfig
from retrosearch.rl.train.rollout_func import SearchRolloutFunc

__all__ = ["SearchGRPOTrainer", "build_trainer", "masked_nll", "train"]


def masked_nll(logits: torch.Tensor, ids: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Mean next-token NLL over the positions where `loss_mask` is 1.

    Args:
        logits: `[B, L, V]` the model's logits for `ids`.
        ids: `[B, L]` token ids.
        loss_mask: `[B, L]` 1 where the token is a target (its own logit row is at position - 1).

    Returns:
        A scalar: the mean over the target tokens (0 when there is none).
    """
    target = loss_mask[:, 1:].to(logits.dtype)
    nll = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.size(-1)).float(), ids[:, 1:].reshape(-1), reduction="none"
    ).view_as(target)
    return (nll * target).sum() / target.sum().clamp(min=1.0)


class SearchGRPOTrainer(GRPOTrainer):
    """`GRPOTrainer` plus R1-Searcher++'s memorization term: L = -J + mu * L_M.

    After TRL has generated and scored a batch, every rollout that retrieved and is correct (R_answer 1, format
    intact) is rewritten into retrieval-free internal reasoning (`retrosearch.rl.memorize.rewrite_internal`);
    its tokens (after the rollout's exact prompt ids) travel with the batch as `memorize_ids` and
    `memorize_loss_mask`, through TRL's shuffling and micro-batch split like every other per-row tensor. The
    loss of each micro-batch then adds `mu` times the mean NLL over the rewritten completion tokens of its rows
    (none from the prompt, nothing from the other rollouts), scaled for gradient accumulation as TRL scales its
    own loss. With `memorize_coef == 0` it is TRL's trainer unchanged.

    Args:
        memorize_coef: mu (R1-Searcher++: 0.1).
        protocol: The rollouts' tag protocol (format check, rewrite tags).
        gold_field: The dataset column of the gold answer(s).
        max_answer_words: R_answer's longest answer.
    """

    def __init__(
        self,
        *args: Any,
        memorize_coef: float = 0.0,
        protocol: str = "r1-searcher++",
        gold_field: str = "answer",
        max_answer_words: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.memorize_coef, self.memorize_protocol = memorize_coef, protocol
        self.gold_field, self.max_answer_words = gold_field, max_answer_words

    # ------------------------------------------------------------------ batch
    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        out = super()._generate_and_score_completions(inputs)
        if self.memorize_coef > 0:
            out.update(self.memorization_batch(inputs, out["prompt_ids"], out["prompt_mask"]))
        return out

    def memorizes(self, row: dict[str, Any]) -> bool:
        """Whether a scored rollout is rewritten for memorization: it retrieved, is correct and well-formed."""
        answer = answer_reward(
            row.get("final_answer"), row[self.gold_field], max_answer_words=self.max_answer_words
        )
        text = str(row.get("completion_text", ""))
        return (
            int(row.get("retrievals", 0)) > 0
            and answer == 1.0
            and check_format(text, self.memorize_protocol).ok
        )

    def memorization_batch(
        self, inputs: list[dict[str, Any]], prompt_ids: torch.Tensor, prompt_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """`memorize_ids`, `memorize_attention_mask`, `memorize_loss_mask`: `[B, L]`, right-padded (a row that is
        not rewritten is one pad token with masks 0)."""
        tok = getattr(self.processing_class, "tokenizer", self.processing_class)
        eos = self.eos_token_ids[0] if self.eos_token_ids else None
        pad = tok.pad_token_id if tok.pad_token_id is not None else (eos or 0)
        rows: list[tuple[list[int], list[int]]] = []
        for i, row in enumerate(inputs):
            targets = None
            if self.memorizes(row):
                prompt = prompt_ids[i][prompt_mask[i].bool()].tolist()
                targets = memorization_targets(
                    prompt,
                    str(row["completion_text"]),
                    lambda t: tok(t, add_special_tokens=False)["input_ids"],
                    protocol=self.memorize_protocol,
                    golds=row[self.gold_field],
                    eos_token_id=eos,
                )
            rows.append(targets or ([pad], [0]))
        width = max(len(ids) for ids, _ in rows)
        device = prompt_ids.device
        ids = torch.full((len(rows), width), pad, dtype=torch.long, device=device)
        attention = torch.zeros_like(ids)
        loss_mask = torch.zeros_like(ids)
        for i, (r, m) in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, device=device)
            attention[i, : len(r)] = 1 if any(m) else 0
            loss_mask[i, : len(m)] = torch.tensor(m, device=device)
        return {"memorize_ids": ids, "memorize_attention_mask": attention, "memorize_loss_mask": loss_mask}

    # ------------------------------------------------------------------ loss
    def _compute_loss(self, model: Any, inputs: dict[str, Any]) -> torch.Tensor:
        loss = super()._compute_loss(model, inputs)
        mask = inputs.get("memorize_loss_mask")
        if self.memorize_coef <= 0 or mask is None:
            return loss
        mode = "train" if self.model.training else "eval"
        rows = mask.sum(dim=1) > 0
        self._metrics[mode]["memorize/rows"].append(float(rows.sum().item()))
        if not rows.any():
            return loss
        nll = self.memorization_loss(model, inputs, rows)
        self._metrics[mode]["memorize/nll"].append(float(nll.detach().item()))
        normalizer = self.current_gradient_accumulation_steps if mode == "train" else 1.0
        return loss + self.memorize_coef * nll / normalizer

    def memorization_loss(self, model: Any, inputs: dict[str, Any], rows: torch.Tensor) -> torch.Tensor:
        """L_M of a micro-batch: `masked_nll` over the rewritten rows' completion tokens."""
        ids = inputs["memorize_ids"][rows]
        # The unwrapped module: a second forward through DDP's wrapper before one backward would upset its
        # reducer; the gradients still reach the same parameters and are all-reduced with the policy loss's.
        module = self.accelerator.unwrap_model(model)
        logits = module(input_ids=ids, attention_mask=inputs["memorize_attention_mask"][rows]).logits
        return masked_nll(logits, ids, inputs["memorize_loss_mask"][rows])


# -------------------------------------------------------------------------------------- building
def build_rewards(config: RLTrainConfig) -> list[Any]:
    """The reward functions a config names (TRL reward functions, reading the rollout's fields)."""
    kw = {"protocol": config.protocol, "gold_field": "answer"}
    pp = {**kw, "max_answer_words": config.max_answer_words, "format_penalty": config.format_penalty}
    makers = {
        "r1searcher_stage1": lambda: Stage1Reward(
            config.protocol, retrieval_reward=config.retrieval_reward, format_reward=config.format_reward
        ),
        "r1searcher_stage2": lambda: Stage2Reward(
            config.protocol, format_penalty=config.format_penalty, gold_field="answer"
        ),
        "r1pp_answer": lambda: AnswerReward(**pp),
        "r1pp_format": lambda: FormatReward(**pp),
        "r1pp_group": lambda: GroupReward(**pp, eta=config.eta),
    }
    return [makers[name]() for name in config.rewards]


def find_data(name: str | None, data_dir: str | None) -> str | None:
    """`name` as given when it exists (or is a benchmark name), else the first data folder holding it."""
    from retrosearch.rl.benchmarks import QA_BENCHMARKS, data_dirs

    if name is None or name in QA_BENCHMARKS or Path(name).exists() or Path(name).is_absolute():
        return name
    for root in data_dirs(data_dir):
        if (root / name).exists():
            return str(root / name)
    return name


def build_dataset(config: RLTrainConfig) -> Any:
    """The training questions as a `datasets.Dataset`: `prompt` (the question) and `answer` (gold aliases)."""
    import datasets

    from retrosearch.rl.benchmarks import load_qa_benchmark

    bench = load_qa_benchmark(
        str(find_data(config.train_file, config.data_dir)),
        data_dir=config.data_dir,
        limit=config.max_examples,
        question_field=config.question_field,
        answer_field=config.answer_field,
    )
    return datasets.Dataset.from_list(
        [{"prompt": e.question, "answer": list(e.golds)} for e in bench.examples]
    )


def build_retriever(config: RLTrainConfig) -> Any:
    """The retriever of a config (`load_retriever`)."""
    from retrosearch.rl.retrievers import load_retriever

    return load_retriever(
        config.retriever, corpus=find_data(config.corpus, config.data_dir), index=config.index, url=config.url, api=config.retriever_api,
        show_progress=False,
    )  # fmt: skip


def rollout_config(config: RLTrainConfig) -> SearchRolloutConfig:
    """The search-rollout settings of a training config (sampling as TRL's, log-probs processed)."""
    return SearchRolloutConfig(
        protocol=config.protocol,
        num_generations=config.num_generations,
        max_completion_length=config.max_completion_length,
        max_tokens_per_turn=config.max_tokens_per_turn,
        temperature=config.temperature,
        top_p=config.top_p,
        max_retrievals=config.max_retrievals,
        top_k=config.top_k,
        stop_at_answer=config.stop_at_answer,
        use_chat_template=config.use_chat_template,
        seed=config.seed,
        logprobs=True,
        logprobs_mode="processed",
    )


def _use_cpu(config: RLTrainConfig) -> bool:
    # Several CPU processes form one data-parallel group only with use_cpu on.
    return config.use_cpu if config.use_cpu is not None else not torch.cuda.is_available()


def build_trainer(
    config: RLTrainConfig,
    *,
    model: Any = None,
    tokenizer: Any = None,
    dataset: Any = None,
    retriever: Any = None,
    backend: Any = None,
    reward_funcs: list[Any] | None = None,
    callbacks: list[Any] | None = None,
) -> SearchGRPOTrainer:
    """Validate `config` and build the trainer; any part given is used instead of being loaded."""
    import dataclasses

    config.validate()
    known = {f.name for f in dataclasses.fields(GRPOConfig)}
    unknown = sorted(set(config.grpo_args) - known)
    if unknown:
        raise ValueError(f"RLTrainConfig.grpo_args: {unknown} are not trl.GRPOConfig fields")
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is "experimental" in TRL 1.16
    if dataset is None:
        dataset = build_dataset(config)
    if retriever is None:
        retriever = build_retriever(config)
    if model is None or tokenizer is None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path, load_kw = locate_model(config.model, what="model")
        tokenizer = tokenizer or AutoTokenizer.from_pretrained(path, **load_kw)
        model = model or AutoModelForCausalLM.from_pretrained(path, **load_kw)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    args = GRPOConfig(**{"use_cpu": _use_cpu(config), "save_strategy": "steps", **config.grpo_kwargs()})
    rollout = SearchRolloutFunc(
        rollout_config(config), retriever, backend=backend, batch_size=config.generation_batch_size_live
    )
    return SearchGRPOTrainer(
        model=model,
        reward_funcs=reward_funcs if reward_funcs is not None else build_rewards(config),
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        rollout_func=rollout,
        callbacks=callbacks,
        memorize_coef=config.memorize_coef,
        protocol=config.protocol,
        max_answer_words=config.max_answer_words,
    )


def resolve_resume(config: RLTrainConfig) -> str | None:
    """The checkpoint to resume from (`resume`: true, auto, false or a folder), or `None`."""
    from transformers.trainer_utils import get_last_checkpoint

    out = Path(config.output_dir)
    last = get_last_checkpoint(str(out)) if out.is_dir() else None
    if config.resume is True or config.resume == "true":
        if last is None:
            raise ValueError(f"RLTrainConfig.resume: no checkpoint-* folder in {out} to resume from")
        return last
    if config.resume in ("auto",):
        return last
    if config.resume in (False, "false"):
        if last is not None:
            raise ValueError(
                f"RLTrainConfig.output_dir {out} holds checkpoints ({Path(last).name}); set resume: auto or true "
                "to continue, or choose another output_dir"
            )
        return None
    return str(config.resume)


def train(config: RLTrainConfig, *, setup: Any = None, **parts: Any) -> dict[str, Any]:
    """Train, checkpointing every `save_steps` and resuming per `resume`; save the model and a summary.

    Runs unchanged on one CPU, on GPUs, and under `accelerate launch` (several processes train as one
    data-parallel group). `parts` go to `build_trainer`; `setup(trainer)`, when given, runs before training.

    Returns:
        `global_step`, `resumed_from`, `steps_this_run`, `train_loss`, the logged losses and rewards, seconds,
        and the config (also written to `output_dir/rl_train_summary.json` by the main process).
    """
    config.validate()
    resume_from = resolve_resume(config)
    t0 = time.perf_counter()
    trainer = build_trainer(config, **parts)
    if setup is not None:
        setup(trainer)
    start = int(trainer.state.global_step)
    result = trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_model(config.output_dir)
    # A resumed state carries the earlier run's log: keep this run's steps only.
    first = _step_of(resume_from) if resume_from else start
    history = [h for h in trainer.state.log_history if "loss" in h and int(h.get("step", 0)) > first]
    losses = [float(h["loss"]) for h in history]
    summary = {
        "output_dir": config.output_dir,
        "resumed_from": resume_from,
        "global_step": int(trainer.state.global_step),
        "steps_this_run": int(trainer.state.global_step) - first,
        "train_loss": float(result.training_loss),
        "losses_finite": all(math.isfinite(x) for x in losses),
        "history": [{k: v for k, v in h.items() if isinstance(v, (int, float))} for h in history],
        "world_size": int(trainer.accelerator.num_processes),
        "seconds": round(time.perf_counter() - t0, 2),
        "config": to_dict(config),
    }
    if trainer.is_world_process_zero():
        out = Path(config.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "rl_train_summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def _step_of(checkpoint: str) -> int:
    try:
        return int(Path(checkpoint).name.rsplit("-", 1)[-1])
    except ValueError:
        return 0
