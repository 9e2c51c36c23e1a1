"""`DistillConfig`: the settings of `distill`, in TRL's `SFTConfig` vocabulary, checked up front."""

from __future__ import annotations

import dataclasses
import math
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retrosearch.config import check_choices, option
from retrosearch.verify import VERIFIERS

__all__ = ["DEFAULT_COMPLETION_TEMPLATE", "DEFAULT_STATUSES", "DistillConfig"]

#: How a trace is written for the student: R1's format, whatever format the trace came in.
DEFAULT_COMPLETION_TEMPLATE = "<think>\n{thinking}\n</think>\n\n{solution}"

#: Journal statuses whose row holds a trace whose original answer was verified correct (and complete).
DEFAULT_STATUSES: tuple[str, ...] = ("revised", "unchanged")
_JOURNAL_STATUSES = ("revised", "unchanged", "skipped", "error")
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
    verifier: str = option("math", "Answer grader for only_correct.", choices=tuple(VERIFIERS))
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
