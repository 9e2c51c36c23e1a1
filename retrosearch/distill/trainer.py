"""Fine-tune the student with TRL's `SFTTrainer`: build the trainer, train, resume, and sum up the run."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from retrosearch.backends.locate import locate_model
from retrosearch.config import to_dict
from retrosearch.distill.config import DistillConfig
from retrosearch.distill.data import load_examples

__all__ = ["build_trainer", "distill"]


def _resolve_resume(config: DistillConfig) -> str | None:
    """The checkpoint to resume from, or `None`; refuses to start over checkpoints left in `output_dir`."""
    from transformers.trainer_utils import get_last_checkpoint

    out = Path(config.output_dir)
    last = get_last_checkpoint(str(out)) if out.is_dir() else None
    if config.resume is True:
        if last is None:
            raise ValueError(
                f"DistillConfig.resume: no checkpoint-* folder in output_dir {out} to resume from "
                "(use resume: auto to start when there is none)"
            )
        return last
    if config.resume == "auto":
        return last
    if isinstance(config.resume, str):
        return config.resume
    if last is not None:
        raise ValueError(
            f"DistillConfig.output_dir {out} already holds checkpoints ({Path(last).name}); set resume: true to "
            "continue from the newest, or choose another output_dir"
        )
    return None


def _locate(name: str, field: str) -> tuple[str, dict[str, Any]]:
    """`locate_model`, its one-line refusal naming the config field."""
    try:
        return locate_model(name, what=field)
    except FileNotFoundError as e:
        raise ValueError(f"DistillConfig.{e}") from e


def _load_tokenizer(config: DistillConfig, model_path: str, load_kw: dict[str, Any]) -> Any:
    from transformers import AutoTokenizer

    source, kw = _locate(config.tokenizer, "tokenizer") if config.tokenizer else (model_path, load_kw)
    tok = AutoTokenizer.from_pretrained(source, **kw)
    if config.chat_template_path is not None:
        p = Path(config.chat_template_path)
        if p.is_dir():
            tok.chat_template = AutoTokenizer.from_pretrained(str(p)).chat_template
        else:
            tok.chat_template = p.read_text(encoding="utf-8")
    if not getattr(tok, "chat_template", None):
        raise ValueError(
            f"DistillConfig.model: the tokenizer of {model_path} has no chat template; give one with "
            "chat_template_path"
        )
    return tok


def _check_template_keeps_thinking(tok: Any, example: dict[str, Any]) -> None:
    """Refuse a chat template that drops the thinking from assistant turns (as DeepSeek-R1-Distill's does):
    the student would be trained on the solution alone."""
    text = tok.apply_chat_template(example["prompt"] + example["completion"], tokenize=False)
    completion = example["completion"][0]["content"]
    if completion.strip() not in text:
        raise ValueError(
            "DistillConfig: the chat template does not render the assistant turn as given (it likely removes the "
            "<think> part, as DeepSeek-R1-Distill templates do), so the student would not learn the thinking; give "
            "a template that keeps it with chat_template_path"
        )


def _has_accelerator() -> bool:
    import torch

    if torch.cuda.is_available():
        return True
    mps = getattr(torch.backends, "mps", None)
    xpu = getattr(torch, "xpu", None)
    return bool((mps is not None and mps.is_available()) or (xpu is not None and xpu.is_available()))


def _use_cpu(config: DistillConfig) -> bool:
    # Without an accelerator, `use_cpu` must be on for several processes (torchrun / accelerate launch) to
    # form one CPU data-parallel group instead of training side by side.
    return config.use_cpu if config.use_cpu is not None else not _has_accelerator()


def _autocast_bf16(config: DistillConfig) -> bool:
    if config.bf16 is not None:
        return config.bf16
    if _use_cpu(config):
        return False
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def build_trainer(
    config: DistillConfig, examples: list[dict[str, Any]] | None = None
) -> tuple[Any, dict[str, Any]]:
    """Validate `config`, read the data, load the student and build the `trl.SFTTrainer` (nothing trained yet).

    Args:
        config: The settings.
        examples: Prompt/completion examples to use instead of reading `config.train_files`.

    Returns:
        `(trainer, info)`: `info` holds the data statistics and the resolved model path.
    """
    config.validate()
    # Cheap failures first: a missing toy model or unusable data should not wait for torch to load.
    model_path, load_kw = _locate(config.model, "model")
    if examples is None:
        examples, data_stats = load_examples(config)
    else:
        data_stats = {"rows": len(examples), "examples": len(examples), "skipped": {}}
    if not examples:
        raise ValueError(
            f"DistillConfig.train_files: no training examples in {list(config.train_files)} "
            f"(rows read: {data_stats['rows']}, skipped: {data_stats['skipped']})"
        )

    import datasets
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from retrosearch.backends.hf import dtype_kwargs

    known = {f.name for f in dataclasses.fields(SFTConfig)}
    unknown = sorted(set(config.sft_args) - known)
    if unknown:
        raise ValueError(f"DistillConfig.sft_args: {unknown} are not trl.SFTConfig fields")

    tokenizer = _load_tokenizer(config, model_path, load_kw)
    if "input_ids" not in examples[0]:  # pre-tokenized rows (ids + completion_mask) bypass the chat template
        _check_template_keeps_thinking(tokenizer, examples[0])
    model = AutoModelForCausalLM.from_pretrained(model_path, **load_kw, **dtype_kwargs(config.dtype))

    warmup: float = config.warmup_steps if config.warmup_steps < 1 else int(config.warmup_steps)
    args = SFTConfig(
        output_dir=config.output_dir,
        max_steps=config.max_steps,
        num_train_epochs=config.num_train_epochs,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler_type,
        warmup_steps=warmup,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        per_device_train_batch_size=config.per_device_train_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        max_length=config.max_length,
        packing=config.packing,
        bf16=_autocast_bf16(config),
        use_cpu=_use_cpu(config),
        seed=config.seed,
        data_seed=config.seed,
        logging_steps=config.logging_steps,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        report_to=config.report_to,
        # A prompt/completion dataset: the loss covers the assistant turn only.
        completion_only_loss=True,
        **_version_dependent_args(SFTConfig, config),
        **dict(config.sft_args),
    )
    steps = _StepCounter()
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=datasets.Dataset.from_list(examples),
        processing_class=tokenizer,
        callbacks=[steps.as_callback(TrainerCallback)],
    )
    trainer._retrosearch_steps = steps  # read back by `distill`
    info = {"model": model_path, "data": data_stats}
    return trainer, info


def _version_dependent_args(sft_config_cls: type, config: DistillConfig) -> dict[str, Any]:
    import torch

    names = {f.name for f in dataclasses.fields(sft_config_cls)}
    out: dict[str, Any] = {}
    # transformers 5 renamed gradient checkpointing (the old name warns); TRL defaults it to on.
    key = "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
    out[key] = config.gradient_checkpointing
    if "dataloader_pin_memory" in names and "dataloader_pin_memory" not in config.sft_args:
        out["dataloader_pin_memory"] = torch.cuda.is_available() and not _use_cpu(config)
    return {k: v for k, v in out.items() if k not in config.sft_args}


class _StepCounter:
    """Counts the optimizer steps taken in this run (so a resumed run shows it did not start over)."""

    def __init__(self) -> None:
        self.steps = 0
        self.first_step: int | None = None

    def as_callback(self, base: type) -> Any:
        counter = self

        class _Callback(base):  # type: ignore[misc, valid-type]
            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                counter.steps += 1
                if counter.first_step is None:
                    counter.first_step = int(state.global_step)

        return _Callback()


def distill(config: DistillConfig) -> dict[str, Any]:
    """Fine-tune `config.model` on the traces of `config.train_files`; checkpoints every `save_steps`.

    Runs unchanged on one CPU, one GPU, or several under `accelerate launch` (the devices come from the
    launcher; nothing is hard-coded). The final model and tokenizer are saved in `output_dir`, with a
    `distill_summary.json` of the figures returned.

    Returns:
        A summary: `global_step`, `steps_this_run`, `resumed_from`, `train_loss`, the data statistics (rows,
        examples, skipped by reason), `tokens_per_example` (mean, after truncation), `max_length_hits`, seconds,
        and the config.

    Raises:
        ValueError: a bad config value (naming the field), unusable data (naming the row) or a checkpoint
            problem.
    """
    config.validate()
    # Checkpoint errors surface before any loading.
    resume_from = _resolve_resume(config)
    t0 = time.perf_counter()
    trainer, info = build_trainer(config)
    result = trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_model(config.output_dir)
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    steps: _StepCounter = trainer._retrosearch_steps
    summary = {
        "output_dir": config.output_dir,
        "model": info["model"],
        "resumed_from": resume_from,
        "global_step": int(trainer.state.global_step),
        "steps_this_run": steps.steps,
        "first_step_this_run": steps.first_step,
        "train_loss": float(result.training_loss),
        "data": info["data"],
        "tokens_per_example": sum(lengths) / len(lengths) if lengths else 0.0,
        "max_length_hits": sum(
            1 for n in lengths if config.max_length is not None and n >= config.max_length
        ),
        "device": str(trainer.args.device),
        "world_size": int(trainer.args.world_size),
        "is_main_process": bool(trainer.is_world_process_zero()),
        "seconds": round(time.perf_counter() - t0, 3),
        "metrics": {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))},
        "config": to_dict(config),
    }
    if trainer.is_world_process_zero():
        out = Path(config.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "distill_summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary
