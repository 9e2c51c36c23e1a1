"""Settings of the toy world: problem ranges and the rates of the habits mixed into its traces."""

from __future__ import annotations

from dataclasses import dataclass, field

# Defaults are set so that the toy's traces switch thoughts about as often as R1-distill traces do (4.5 thoughts
# per trace on the real traces): most toy traces switch, many several times; see the model card.


@dataclass
class TraceConfig:
    """Problem ranges and habit rates of the toy world (all rates are per trace, in `[0, 1]`)."""

    min_ops: int = field(default=2, metadata={"help": "Fewest operations in a problem."})
    max_ops: int = field(default=4, metadata={"help": "Most operations in a problem."})
    max_value: int = field(
        default=100, metadata={"help": "Largest start and intermediate value (all values are >= 1)."}
    )
    max_operand: int = field(
        default=20,
        metadata={
            "help": "Largest operand of + and - (the operand of * and / is 2-9). Small operands keep the "
            "arithmetic learnable by a 2 M-parameter model in minutes of CPU; the habits do not depend on it."
        },
    )
    recheck_rate: float = field(
        default=0.7,
        metadata={
            "help": "Over-thinking: share of traces ending right that re-check the answer after it is found "
            "(a redundant re-check)."
        },
    )
    recheck_again_rate: float = field(
        default=0.45,
        metadata={"help": "Given a redundant re-check, chance of one more (up to `max_repeats`)."},
    )
    abandon_rate: float = field(
        default=0.55,
        metadata={
            "help": "Under-thinking: share of traces that abandon a correct, unfinished line and restart "
            "the computation in a new thought."
        },
    )
    abandon_again_rate: float = field(
        default=0.35,
        metadata={
            "help": "Given an abandoned line, chance that the restarted line is abandoned too (up to "
            "`max_repeats`)."
        },
    )
    max_repeats: int = field(
        default=3, metadata={"help": "Most redundant re-checks, and most abandoned lines, in one trace."}
    )
    slip_rate: float = field(
        default=0.12,
        metadata={
            "help": "Share of traces with one arithmetic slip that the next step corrects ('Wait, ...')."
        },
    )
    wrong_rate: float = field(
        default=0.05,
        metadata={
            "help": "Share of traces with an uncorrected slip, which therefore end with a wrong answer "
            "(these never re-check)."
        },
    )

    def __post_init__(self) -> None:
        for name in (
            "recheck_rate",
            "recheck_again_rate",
            "abandon_rate",
            "abandon_again_rate",
            "slip_rate",
            "wrong_rate",
        ):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"TraceConfig.{name} must be in [0, 1], got {v}")
        if self.slip_rate + self.wrong_rate > 1.0:
            raise ValueError("TraceConfig.slip_rate + wrong_rate must be <= 1")
        if not 1 <= self.min_ops <= self.max_ops:
            raise ValueError(f"TraceConfig needs 1 <= min_ops <= max_ops, got {self.min_ops}, {self.max_ops}")
        if self.max_value < 20:
            raise ValueError(f"TraceConfig.max_value must be >= 20, got {self.max_value}")
        if self.max_operand < 2:
            raise ValueError(f"TraceConfig.max_operand must be >= 2, got {self.max_operand}")
        if self.max_repeats < 1:
            raise ValueError(f"TraceConfig.max_repeats must be >= 1, got {self.max_repeats}")


__all__ = ["TraceConfig"]
