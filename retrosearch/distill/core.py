"""Distillation: supervised fine-tuning of a student on (revised) reasoning traces with TRL's `SFTTrainer`."""

from __future__ import annotations

import dataclasses
import json
import math
import string
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrosearch.backends.spec import resolve_model
from retrosearch.config import check_choices, option, to_dict

__all__ = [
    "DEFAULT_COMPLETION_TEMPLATE",
    "DistillConfig",
    "build_trainer",
    "distill",
    "load_examples",
]

#: How a trace is written for the student: R1's format, whatever format the trace came in.
DEFAULT_COMPLETION_TEMPLATE = "<think>\n{thinking}\n</think>\n\n{solution}"

#: Journal statuses whose row holds a trace whose original answer was verified correct (and complete).
DEFAULT_STATUSES: tuple[str, ...] = ("revised", "unchanged")
_JOURNAL_STATUSES = ("revised", "unchanged", "skipped", "error")
_JOURNAL_KEYS = frozenset({"row_id", "status", "row"})
_DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass
class DistillConfig:
    """Settings of `distill` (every field is also a `retrosearch distill` flag; TRL's `SFTConfig` names where
    they exist). `validate()` checks them all up front, with errors naming the field."""

    # ------------------------------------------------------------------ model and data
    model: str = option(
        "",
        "The student: a local model folder or hub id (a causal LM with a chat template), or the name of a "
        "shipped toy model (toy-base, toy-small).",
    )
    tokenizer: str | None = option(None, "Tokenizer folder / hub id when it is not the model's.")
    train_files: tuple[str, ...] = option(
        (),
        "Training traces: journals written by `retrosearch revise` (their `row` is used: the revised trace for "
        "revised rows), .jsonl / .parquet files or folders of rows that `Trace.parse` reads (flat "
        "question/response rows, OpenThoughts `conversations` rows, OpenThoughts metadata rows), or a "
        "`datasets` hub name.",
    )
    output_dir: str = option(
        "runs/distill", "Where checkpoints, the final model and distill_summary.json go."
    )
    statuses: tuple[str, ...] = option(
        DEFAULT_STATUSES,
        "Journal rows used, by status (revised / unchanged rows hold traces whose original answer was "
        "correct). Ignored for plain row files.",
    )
    only_correct: bool = option(
        False,
        "Keep only traces whose final answer the verifier accepts against their gold answer (rows without a "
        "gold answer are dropped). Use it on original traces to train on the same problems as a journal.",
    )
    verifier: str = option("math", "Answer grader for only_correct.", choices=("math", "exact", "choice"))
    drop_incomplete: bool = option(
        True,
        "Drop traces whose thinking was never closed (cut off by a length limit) or that have no solution.",
    )
    on_bad_row: str = option(
        "error",
        "What to do with a row that cannot be read as a trace (no response, no question, broken JSON): raise "
        "an error naming it, or skip it (counted in the summary).",
        choices=("error", "skip"),
    )
    max_examples: int | None = option(
        None, "Use at most this many examples (the first ones, in input order)."
    )

    # ------------------------------------------------------------------ format
    completion_template: str = option(
        DEFAULT_COMPLETION_TEMPLATE,
        "The assistant turn the student learns: `{thinking}` and `{solution}` are replaced.",
    )
    question_template: str = option("{question}", "Text of the user turn; `{question}` is replaced.")
    system_prompt: str | None = option(None, "System message put before the user turn.")
    chat_template_path: str | None = option(
        None, "A Jinja chat template file (or tokenizer folder) that replaces the tokenizer's own."
    )

    # ------------------------------------------------------------------ optimisation (SFTConfig)
    max_steps: int = option(-1, "Optimizer steps to run in all; -1: run num_train_epochs epochs.")
    num_train_epochs: float = option(1.0, "Epochs over the data when max_steps is -1.")
    learning_rate: float = option(2e-5, "Peak learning rate (AdamW).")
    lr_scheduler_type: str = option(
        "linear", "Learning-rate schedule (transformers' names: linear, cosine, ...)."
    )
    warmup_steps: float = option(0.0, "Warm-up: a number of steps, or a fraction of all steps when < 1.")
    weight_decay: float = option(0.0, "AdamW weight decay.")
    max_grad_norm: float = option(1.0, "Gradient clipping norm.")
    per_device_train_batch_size: int = option(8, "Examples per device per micro-batch.")
    gradient_accumulation_steps: int = option(1, "Micro-batches per optimizer step.")
    max_length: int | None = option(
        4096, "Truncate tokenized examples (prompt + trace) to this many tokens; None: no truncation."
    )
    packing: bool = option(False, "Pack several examples into each max_length sequence.")
    gradient_checkpointing: bool = option(False, "Recompute activations in the backward pass to save memory.")
    dtype: str = option(
        "float32",
        "Dtype of the weights as loaded (auto: the checkpoint's). Mixed precision is `bf16`.",
        choices=_DTYPES,
    )
    bf16: bool | None = option(None, "bf16 mixed precision; None: on when a CUDA GPU supports it.")
    use_cpu: bool | None = option(
        None, "True: train on CPU even with a GPU; None: the accelerator when present, else the CPU."
    )
    seed: int = option(0, "Seed of the model init, the data order and dropout.")

    # ------------------------------------------------------------------ logging and checkpoints
    logging_steps: int = option(10, "Log the loss every this many steps.")
    save_steps: int = option(
        500, "Write a checkpoint (model, optimizer, scheduler, RNG) every this many steps."
    )
    save_total_limit: int | None = option(None, "Keep only the newest this many checkpoints.")
    resume: bool | str = option(
        False,
        "Resume from a checkpoint: true (the newest in output_dir; an error when there is none), 'auto' (the "
        "newest if any, else start), or a checkpoint folder. False refuses an output_dir that already holds "
        "checkpoints.",
    )
    report_to: str = option(
        "none", "Where metrics go: none, tensorboard, wandb, ... (transformers' report_to)."
    )
    sft_args: dict[str, Any] = field(
        default_factory=dict,
        metadata={"help": "More `trl.SFTConfig` fields, by name (YAML only).", "cli": False},
    )

    def __post_init__(self) -> None:
        # YAML or Python callers may give a single file as a string.
        if isinstance(self.train_files, (str, Path)):
            self.train_files = (str(self.train_files),)
        self.train_files = tuple(str(f) for f in self.train_files)
        if isinstance(self.statuses, str):
            self.statuses = (self.statuses,)
        self.statuses = tuple(self.statuses)
        self.resume = _parse_resume(self.resume)
        self._check_values()

    # ------------------------------------------------------------------ validation
    def _check_values(self) -> None:
        """Checks that hold for any partial config (a YAML file completed by flags is checked again whole)."""
        name = type(self).__name__
        positive_ints = (
            "per_device_train_batch_size",
            "gradient_accumulation_steps",
            "logging_steps",
            "save_steps",
        )
        for f in positive_ints:
            v = getattr(self, f)
            if not _is_int(v) or v < 1:
                raise ValueError(f"{name}.{f} must be an integer >= 1, got {v!r}")
        if not _is_int(self.max_steps) or (self.max_steps < 1 and self.max_steps != -1):
            raise ValueError(
                f"{name}.max_steps must be -1 (use num_train_epochs) or >= 1, got {self.max_steps!r}"
            )
        if not _is_number(self.num_train_epochs) or self.num_train_epochs <= 0:
            raise ValueError(f"{name}.num_train_epochs must be > 0, got {self.num_train_epochs!r}")
        if not _is_number(self.learning_rate) or not 0 < self.learning_rate < 1:
            raise ValueError(f"{name}.learning_rate must be in (0, 1), got {self.learning_rate!r}")
        if not _is_number(self.warmup_steps) or self.warmup_steps < 0:
            raise ValueError(
                f"{name}.warmup_steps must be >= 0 (steps, or a fraction < 1), got {self.warmup_steps!r}"
            )
        if self.warmup_steps >= 1 and not float(self.warmup_steps).is_integer():
            raise ValueError(
                f"{name}.warmup_steps must be a whole number of steps or a fraction < 1, got {self.warmup_steps!r}"
            )
        for f in ("weight_decay", "max_grad_norm"):
            v = getattr(self, f)
            if not _is_number(v) or v < 0:
                raise ValueError(f"{name}.{f} must be >= 0, got {v!r}")
        for f in ("max_length", "max_examples", "save_total_limit"):
            v = getattr(self, f)
            if v is not None and (not _is_int(v) or v < 1):
                raise ValueError(f"{name}.{f} must be None or an integer >= 1, got {v!r}")
        if not _is_int(self.seed) or self.seed < 0:
            raise ValueError(f"{name}.seed must be an integer >= 0, got {self.seed!r}")
        bad = [s for s in self.statuses if s not in _JOURNAL_STATUSES]
        if bad or not self.statuses:
            raise ValueError(
                f"{name}.statuses must be a non-empty list of {list(_JOURNAL_STATUSES)}, got {list(self.statuses)}"
            )
        if not isinstance(self.sft_args, Mapping):
            raise ValueError(
                f"{name}.sft_args must be a mapping of SFTConfig fields, got {type(self.sft_args).__name__}"
            )
        _check_template(
            self.completion_template, f"{name}.completion_template", {"thinking", "solution"}, "thinking"
        )
        _check_template(self.question_template, f"{name}.question_template", {"question"}, "question")
        check_choices(self)

    def validate(self) -> None:
        """Every check, including the required fields and that the inputs exist (`distill` calls it first).

        Raises:
            ValueError: naming the field and what was expected.
        """
        name = type(self).__name__
        self._check_values()
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"{name}.model is required: a model folder, a hub id or a toy model name")
        if not self.train_files:
            raise ValueError(f"{name}.train_files is required: at least one journal or trace file")
        for f in self.train_files:
            p = Path(f)
            if not p.exists() and (
                p.suffix in (".jsonl", ".parquet", ".json") or f.startswith((".", "/", "~"))
            ):
                raise ValueError(f"{name}.train_files: {f} does not exist")
        if not isinstance(self.output_dir, str) or not self.output_dir:
            raise ValueError(f"{name}.output_dir must be a non-empty path")
        out = Path(self.output_dir)
        if out.exists() and not out.is_dir():
            raise ValueError(f"{name}.output_dir {out} exists and is not a folder")
        if isinstance(self.resume, str) and self.resume != "auto" and not Path(self.resume).is_dir():
            raise ValueError(f"{name}.resume: checkpoint folder {self.resume} does not exist")
        if self.chat_template_path is not None and not Path(self.chat_template_path).exists():
            raise ValueError(f"{name}.chat_template_path: {self.chat_template_path} does not exist")
        reserved = {"output_dir", "model_init_kwargs"}
        clash = sorted(set(self.sft_args) & (reserved | {f.name for f in dataclasses.fields(self)}))
        if clash:
            raise ValueError(f"{name}.sft_args: set {clash} as DistillConfig fields, not in sft_args")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _parse_resume(value: Any) -> bool | str:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if not isinstance(value, (str, Path)):
        raise ValueError(
            f"DistillConfig.resume must be true, false, 'auto' or a checkpoint folder, got {value!r}"
        )
    text = str(value).strip()
    low = text.lower()
    if low in ("true", "yes", "1", "last", "latest"):
        return True
    if low in ("false", "no", "0", ""):
        return False
    if low == "auto":
        return "auto"
    return text


def _check_template(template: Any, where: str, allowed: set[str], required: str) -> None:
    if not isinstance(template, str):
        raise ValueError(f"{where} must be a string, got {type(template).__name__}")
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as e:
        raise ValueError(
            f"{where}: not a valid format string ({e}); write literal braces as {{{{ }}}}"
        ) from e
    unknown = sorted(names - allowed)
    if unknown:
        raise ValueError(f"{where}: unknown placeholder(s) {unknown}; allowed: {sorted(allowed)}")
    if required not in names:
        raise ValueError(f"{where} must contain {{{required}}}, got {template!r}")


# --------------------------------------------------------------------------- data
def _is_journal_record(row: Any) -> bool:
    return isinstance(row, Mapping) and set(row) >= _JOURNAL_KEYS


def _first_row(path: Path) -> Any:
    from retrosearch.data.io import read_rows

    for _, row in read_rows(path, limit=1):
        return row
    return None


def _iter_source(source: str) -> Iterator[tuple[str, Any, str | None]]:
    """`(row_id, row, journal status or None)` for every row of one training source."""
    from retrosearch.data.io import read_rows
    from retrosearch.data.journal import read_journal

    path = Path(source)
    if path.is_file() and path.suffix == ".jsonl" and _is_journal_record(_first_row(path)):
        # A journal: one record per row id (the first, should a resumed run have repeated one), in input order.
        records = sorted(read_journal(path, trees=False), key=lambda r: (r.get("seq", 0), str(r["row_id"])))
        for r in records:
            yield f"{path.name}:{r['row_id']}", r.get("row"), str(r.get("status"))
        return
    for row_id, row in read_rows(source):
        if _is_journal_record(row):  # a journal inside a folder of files
            yield f"{source}:{row_id}", row.get("row"), str(row.get("status"))
        else:
            yield f"{source}:{row_id}", row, None


def load_examples(config: DistillConfig) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Read the training traces of `config.train_files` as a conversational prompt/completion dataset.

    Each example is `{"prompt": [{"role": "user", "content": question}], "completion": [{"role":
    "assistant", "content": completion_template.format(thinking=..., solution=...)}]}` (a system turn first
    when `system_prompt` is set): with such rows TRL's `SFTTrainer` puts the loss on the completion only,
    whatever the chat template.

    Returns:
        `(examples, stats)`; `stats` counts the rows read, used and skipped (by reason).

    Raises:
        ValueError: a row that cannot be used, naming it (unless `on_bad_row == "skip"`).
    """
    from retrosearch.data.io import BadRow, get_adapter
    from retrosearch.trace import Trace, TraceFormatError
    from retrosearch.verify import get_verifier

    verifier = get_verifier(config.verifier) if config.only_correct else None
    examples: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    rows = 0

    def bad(row_id: str, reason: str) -> None:
        if config.on_bad_row == "error":
            raise ValueError(
                f"train_files row {row_id}: {reason} (set on_bad_row: skip to leave such rows out)"
            )
        skipped["bad row"] += 1

    for source in config.train_files:
        for row_id, row, status in _iter_source(source):
            if config.max_examples is not None and len(examples) >= config.max_examples:
                break
            rows += 1
            if status is not None and status not in config.statuses:
                skipped[f"journal status {status}"] += 1
                continue
            if row is None:
                skipped["journal row without data"] += 1
                continue
            if isinstance(row, BadRow):
                bad(row_id, row.reason)
                continue
            try:
                trace = Trace.parse(get_adapter(row).to_trace_input(row))
            except (TraceFormatError, TypeError, KeyError) as e:
                bad(row_id, str(e))
                continue
            if not trace.question:
                bad(row_id, "no question (expected a question/problem/prompt field or a user turn)")
                continue
            if config.drop_incomplete and (not trace.complete or trace.solution is None):
                skipped["incomplete (thinking not closed or no solution)"] += 1
                continue
            if verifier is not None:
                if trace.gold is None:
                    skipped["no gold answer (only_correct)"] += 1
                    continue
                response = trace.solution if trace.solution is not None else trace.render()
                if not verifier(response, trace.gold).correct:
                    skipped["incorrect answer (only_correct)"] += 1
                    continue
            examples.append(_example(trace.question, trace.thinking, trace.solution or "", config))
    stats = {"rows": rows, "examples": len(examples), "skipped": dict(sorted(skipped.items()))}
    return examples, stats


def _example(question: str, thinking: str, solution: str, config: DistillConfig) -> dict[str, Any]:
    prompt = [{"role": "user", "content": config.question_template.format(question=question)}]
    if config.system_prompt:
        prompt.insert(0, {"role": "system", "content": config.system_prompt})
    completion = config.completion_template.format(thinking=thinking, solution=solution)
    return {"prompt": prompt, "completion": [{"role": "assistant", "content": completion}]}


# --------------------------------------------------------------------------- model and trainer
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


def _load_tokenizer(config: DistillConfig, model_path: str) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model(config.tokenizer) if config.tokenizer else model_path)
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


def _dtype_kwargs(dtype: str) -> dict[str, Any]:
    import torch
    import transformers

    value: Any = "auto" if dtype == "auto" else getattr(torch, dtype)
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": value}


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
    model_path = resolve_model(config.model)
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

    known = {f.name for f in dataclasses.fields(SFTConfig)}
    unknown = sorted(set(config.sft_args) - known)
    if unknown:
        raise ValueError(f"DistillConfig.sft_args: {unknown} are not trl.SFTConfig fields")

    tokenizer = _load_tokenizer(config, model_path)
    _check_template_keeps_thinking(tokenizer, examples[0])
    model = AutoModelForCausalLM.from_pretrained(model_path, **_dtype_kwargs(config.dtype))

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
