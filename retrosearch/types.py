"""The core's vocabulary: sampling settings, requests, completions, what programs yield and get back."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from retrosearch.tree import Node

FinishReason = Literal["stop", "length", "eos", "error"]
#: `"processed"`: log-probs of the distribution actually sampled from (after temperature and top-p), what TRL's
#: importance-sampling correction expects; `"raw"`: log-softmax of the model's logits.
LogprobsMode = Literal["processed", "raw"]
LOGPROBS_MODES: tuple[str, ...] = ("processed", "raw")

#: Where a tree node's span came from. `environment` spans (tool output) are masked out of RL losses.
Origin = Literal["prompt", "original", "rollout", "environment"]
ORIGINS: tuple[str, ...] = ("prompt", "original", "rollout", "environment")


@dataclass(frozen=True)
class SamplingParams:
    """How to sample continuations: the one definition, shared by `GenerationRequest` and `Generate`.

    Attributes:
        n: Number of independent samples.
        temperature: Sampling temperature; `0` means greedy.
        top_p: Nucleus sampling mass.
        max_tokens: Maximum number of new tokens per sample.
        stop: Stop strings. Generation ends right after the first one; it is kept at the end of the text.
        banned_words: Words that may not be generated anywhere in this continuation (every leading-space and
            capitalisation variant the caller wants banned must be listed, as vLLM's `bad_words`).
            Retro-Search bans switch words only in the *first step* by sending a first request with the ban
            and a blank-line stop, then a free continuation (see `retrosearch.retro`).
        seed: Seed of this request; sample `i` uses `seed + i` where a backend seeds per sample.
        logprobs: Whether to return the log-probability of every sampled token.
        logprobs_mode: `"processed"` (after temperature / top-p) or `"raw"` (the model's log-softmax).
    """

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    banned_words: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = False
    logprobs_mode: LogprobsMode = "processed"

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"SamplingParams.n must be >= 1, got {self.n}")
        if self.max_tokens < 1:
            raise ValueError(f"SamplingParams.max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"SamplingParams.temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"SamplingParams.top_p must be in (0, 1], got {self.top_p}")
        if self.logprobs_mode not in LOGPROBS_MODES:
            raise ValueError(
                f"SamplingParams.logprobs_mode must be one of {LOGPROBS_MODES}, got {self.logprobs_mode!r}"
            )
        # Tuples keep the settings hashable; accept lists from callers.
        for name in ("stop", "banned_words"):
            value = getattr(self, name)
            if isinstance(value, str):
                raise TypeError(f"SamplingParams.{name} must be a sequence of strings, not a str")
            object.__setattr__(self, name, tuple(value))


_SAMPLING_FIELDS = frozenset(f.name for f in fields(SamplingParams))


def _sampling(sampling: SamplingParams | None, kw: dict[str, Any], owner: str) -> SamplingParams:
    unknown = sorted(set(kw) - _SAMPLING_FIELDS)
    if unknown:
        raise TypeError(
            f"{owner} got unknown argument(s) {unknown}; sampling fields: {sorted(_SAMPLING_FIELDS)}"
        )
    if sampling is not None and kw:
        raise TypeError(f"{owner}: give `sampling` or sampling keywords ({sorted(kw)}), not both")
    return sampling if sampling is not None else SamplingParams(**kw)


class _ReadsSampling:
    """Reads sampling fields through to `self.sampling` (`request.temperature`), so no class re-declares them."""

    sampling: SamplingParams

    def __getattr__(self, name: str) -> Any:
        if name in _SAMPLING_FIELDS:
            return getattr(self.sampling, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


@dataclass(frozen=True)
class ImagePart:
    """An image in a prompt: a PIL image or a file reference, and the placeholder text the model reads for it.

    Attributes:
        placeholder: The text standing for the image in the prompt (e.g. the processor's image token).
        image: A `PIL.Image.Image` (kept in memory, not serialised).
        path: A file the image can be read from (what the tree's JSON keeps).
    """

    placeholder: str
    image: Any = None
    path: str | None = None

    def __post_init__(self) -> None:
        if self.image is None and self.path is None:
            raise ValueError("ImagePart needs an image or a path")

    def load(self) -> Any:
        """The image as a `PIL.Image.Image` (read from `path` when not in memory)."""
        if self.image is not None:
            return self.image
        from PIL import Image

        return Image.open(self.path)


@dataclass(frozen=True, init=False)
class GenerationRequest(_ReadsSampling):
    """One prompt to continue, with its sampling settings (readable flat: `request.max_tokens`).

    Attributes:
        prompt: The full text to continue (already formatted for the model: chat template, think tag, ...).
        prompt_ids: The same prompt as token ids. When given, backends feed these ids to the model instead of
            re-tokenizing `prompt` (the RL path needs exact ids); `prompt` is then informative only.
        sampling: How to sample (or pass `SamplingParams` fields as keywords).
        images: Images of the prompt, in the order their placeholders appear in it.
    """

    prompt: str
    prompt_ids: tuple[int, ...] | None
    sampling: SamplingParams
    images: tuple[ImagePart, ...]

    def __init__(
        self,
        prompt: str,
        prompt_ids: Any = None,
        sampling: SamplingParams | None = None,
        images: Any = (),
        **sampling_kw: Any,
    ) -> None:
        if not isinstance(prompt, str):
            raise TypeError(f"GenerationRequest.prompt must be a str, got {type(prompt).__name__}")
        object.__setattr__(self, "prompt", prompt)
        ids = None if prompt_ids is None else tuple(map(int, prompt_ids))
        object.__setattr__(self, "prompt_ids", ids)
        object.__setattr__(self, "sampling", _sampling(sampling, sampling_kw, "GenerationRequest"))
        object.__setattr__(self, "images", tuple(images))


@dataclass
class Completion:
    """One sample returned by a backend.

    Attributes:
        text: The generated text (a matched stop string is kept at its end).
        token_ids: The generated token ids, `len == num_tokens`.
        finish_reason: `"stop"` (a stop string), `"eos"` (end of sequence), `"length"` (max tokens) or
            `"error"` (the backend failed for this request; `error` says why).
        stop_reason: The stop string that ended generation, if any.
        logprobs: Per-token log-probabilities of `token_ids` when requested.
        error: Why the request failed, when `finish_reason == "error"`.
    """

    text: str
    token_ids: list[int] = field(default_factory=list)
    finish_reason: FinishReason = "stop"
    stop_reason: str | None = None
    logprobs: list[float] | None = None
    error: str | None = None

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)


@dataclass(frozen=True, init=False)
class Generate(_ReadsSampling):
    """A program's request: continue the path ending at `node`, `sampling.n` times.

    The engine answers with the `n` new child nodes (origin `"rollout"`, with token ids, finish reason and, when
    asked for, log-probs).

    Attributes:
        node: The node to continue from.
        sampling: How to sample (or pass `SamplingParams` fields as keywords: `Generate(node, n=4, stop=...)`).
        meta: Copied into each new node's `meta` (e.g. `{"boundary": 3, "phase": "first_step"}`).
    """

    node: Node
    sampling: SamplingParams
    meta: dict[str, Any]

    def __init__(
        self,
        node: Node,
        sampling: SamplingParams | None = None,
        *,
        meta: dict[str, Any] | None = None,
        **sampling_kw: Any,
    ) -> None:
        object.__setattr__(self, "node", node)
        object.__setattr__(self, "sampling", _sampling(sampling, sampling_kw, "Generate"))
        object.__setattr__(self, "meta", dict(meta or {}))


@dataclass(frozen=True)
class Call:
    """A program's tool call, answered with the tool's result: the engine calls each tool on batches of calls.

    Attributes:
        tool: The name of a tool given to `Engine(tools={...})`.
        args: The call's argument (a query, a box, ...), passed to the tool in a list with its batch's others
            (a wave's calls, or in the continuous schedule those that queued while the tool was busy).
    """

    tool: str
    args: Any = None


@dataclass
class EngineStats:
    """Counters of one engine's work (cumulative over its runs).

    `backend_seconds` is the time the backend was busy: the calls' time in waves, the time with at least one
    request in flight in the continuous schedule (where `waves` stays 0, `backend_calls` counts requests, and
    tool time may overlap backend time).
    """

    waves: int = 0
    backend_calls: int = 0
    requests: int = 0
    samples: int = 0
    generated_tokens: int = 0
    backend_seconds: float = 0.0
    wall_seconds: float = 0.0
    failed_programs: int = 0
    #: Calls of tools (one per tool per batch) and the program calls they answered.
    tool_calls: int = 0
    tool_requests: int = 0
    tool_seconds: float = 0.0
    #: Requests and tool calls of programs that got an error instead of their answers.
    failed_requests: int = 0

    @property
    def overhead_ratio(self) -> float:
        """Wall time / (backend + tool) time: 1.0 means the engine itself costs nothing."""
        busy = self.backend_seconds + self.tool_seconds
        return self.wall_seconds / busy if busy else float("nan")


@dataclass
class ProgramError:
    """Stands in a run's results for a program that raised: the batch goes on."""

    index: int
    error: BaseException

    def __str__(self) -> str:
        return f"program {self.index} failed: {type(self.error).__name__}: {self.error}"


class BackendError(RuntimeError):
    """Thrown into a program whose request the backend failed on (raised, wrong count, unrecordable answer)."""


class ToolError(RuntimeError):
    """Thrown into a program whose tool call failed (unknown tool, the tool raised or gave a wrong count)."""
