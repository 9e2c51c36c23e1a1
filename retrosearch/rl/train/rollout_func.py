"""TRL's `rollout_func` built from the search-rollout program: exact ids, env_mask, log-probs, reward fields."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from retrosearch.config import derive_seed
from retrosearch.engine import Engine, ProgramError
from retrosearch.rl.protocols import get_protocol
from retrosearch.rl.rollout import (
    SearchRollout,
    SearchRolloutConfig,
    retrieval_tool,
    rollout_fields,
    search_rollout,
)

__all__ = ["SearchRolloutFunc", "chunk_groups", "question_of", "terminate"]

#: Finish reasons that are not a token cap: such a rollout ended where it should, so it gets an EOS id.
_ENDED = ("answer", "eos", "max_retrievals", "invalid_query")


def question_of(prompt: Any) -> str:
    """The question of a dataset prompt: the text itself, or the last user turn's content."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        if users:
            content = users[-1].get("content")
            if isinstance(content, list):  # typed content blocks
                return "".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
            return str(content)
    raise TypeError(
        f"a prompt must be a question string or a list of chat messages, got {type(prompt).__name__}"
    )


def chunk_groups(prompts: Sequence[Any], size: int) -> list[tuple[int, int]]:
    """`(start, length)` of each group: runs of equal consecutive prompts, cut every `size` rows.

    TRL's sampler repeats each question `num_generations` times in a row; a process's slice may begin or end
    inside a group (when its batch is not a multiple of `num_generations`), which gives a shorter run.
    """
    out: list[tuple[int, int]] = []
    for i, p in enumerate(prompts):
        if out and p == prompts[i - 1] and out[-1][1] < size:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((i, 1))
    return out


def terminate(rollout: SearchRollout, eos_token_id: int | None) -> SearchRollout:
    """The rollout as TRL should see its end: an EOS id appended, as an environment token, when it ended.

    TRL takes a completion whose last id is not EOS (or pad) for truncated, and with
    `mask_truncated_completions` drops it from the loss. A rollout that stopped on the answer's closing tag, or by
    a protocol rule, ended where it should: the EOS id goes after it with `env_mask` 0 (the model did not sample
    it, so it gets no gradient) and log-prob 0. A token cap (`length`) and a backend error stay as they are.
    """
    ids = rollout.completion_ids
    if eos_token_id is None or rollout.finish_reason not in _ENDED or (ids and ids[-1] == eos_token_id):
        return rollout
    lps = None if rollout.logprobs is None else [*rollout.logprobs, 0.0]
    return dataclasses.replace(
        rollout, completion_ids=[*ids, eos_token_id], env_mask=[*rollout.env_mask, 0], logprobs=lps
    )


class SearchRolloutFunc:
    """`rollout_func(prompts, trainer) -> dict` for `trl.GRPOTrainer`, on the one engine and rollout program.

    TRL 1.16 passes each process's slice of the generation batch with every question already repeated
    `num_generations` times in a row, and expects one completion per prompt, in order. So each run of equal
    prompts becomes one `search_rollout` program with `num_generations` = the run's length (one tree: one root,
    G branches); the engine batches every program's generation and gathers each wave's queries into one
    retriever call. The result holds `prompt_ids`, `completion_ids`, `logprobs` and `env_mask` (0 on documents
    and the appended EOS) and, for the reward functions, `retrievals`, `queries`, `final_answer`,
    `finish_reason`, `completion_text` and `group_id`.

    Generation is on-policy: with `trainer.use_vllm`, through TRL's own vLLM (`TRLVLLMBackend` over
    `trainer.vllm_generation`, whose weights TRL syncs before calling this function); otherwise with the
    trainer's live model (`LiveTransformersBackend`). `backend=` overrides both (tests).

    Args:
        rollout: The rollout settings (`num_generations` is taken from the trainer's prompts).
        retriever: `retrieve(queries, k) -> list[list[Passage]]`.
        backend: A fixed backend (tests, scripted policies); `None` picks the trainer's.
        batch_size: Rows per `generate` call of the live backend.
    """

    def __init__(
        self, rollout: SearchRolloutConfig, retriever: Any, *, backend: Any = None, batch_size: int = 16
    ) -> None:
        self.rollout, self.retriever, self.backend, self.batch_size = rollout, retriever, backend, batch_size
        self.protocol = get_protocol(rollout.protocol)
        self.calls = 0
        self.last_groups: list[Any] = []
        self.__name__ = "search_rollout"

    def backend_for(self, trainer: Any) -> Any:
        """The backend the rollouts are sampled with (see the class docstring)."""
        if self.backend is not None:
            return self.backend
        if getattr(trainer, "use_vllm", False):
            from retrosearch.backends.trl_vllm import TRLVLLMBackend

            return TRLVLLMBackend(trainer.vllm_generation, trainer.processing_class)
        from retrosearch.backends.live import LiveTransformersBackend

        model = getattr(trainer, "model_wrapped", None) or trainer.model
        return LiveTransformersBackend(model, trainer.processing_class, batch_size=self.batch_size)

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        training = bool(getattr(trainer.model, "training", True))
        size = trainer.num_generations if training else getattr(trainer, "num_generations_eval", None)
        chunks = chunk_groups(prompts, int(size or trainer.num_generations))
        backend = self.backend_for(trainer)
        state = getattr(trainer, "state", None)
        step = int(getattr(state, "global_step", 0) or 0)
        rank = int(getattr(getattr(trainer, "accelerator", None), "process_index", 0) or 0)
        base = self.rollout.seed if self.rollout.seed is not None else 0
        seed = derive_seed(base, "rl-train", rank, step, self.calls)
        self.calls += 1
        programs = []
        for k, (start, n) in enumerate(chunks):
            cfg = dataclasses.replace(self.rollout, num_generations=n, seed=seed)
            meta = {"group_id": f"{rank}:{step}:{self.calls}:{k}"}
            programs.append(search_rollout(question_of(prompts[start]), backend, cfg, index=k, meta=meta))
        tools = {q.tool: retrieval_tool(self.retriever, self.rollout.top_k) for q in self.protocol.queries}
        engine = Engine(backend, tools=tools, schedule="waves")
        try:
            groups = engine.run(programs)
        finally:
            drain = getattr(backend, "drain", None)
            if callable(drain):  # the other ranks may still be generating: keep their collectives company
                drain()
        failed = [g for g in groups if isinstance(g, ProgramError)]
        if failed:
            raise RuntimeError(
                f"search rollouts failed for {len(failed)} of {len(groups)} questions: {failed[0]}"
            )
        self.last_groups = groups
        eos = _eos_id(trainer, backend)
        rollouts, gids = [], []
        for g in groups:
            for r in g.rollouts:
                rollouts.append(terminate(r, eos))
                gids.append(g.tree.meta["group_id"])
        if len(rollouts) != len(prompts):
            raise RuntimeError(f"{len(rollouts)} rollouts for {len(prompts)} prompts")
        out = rollout_fields(rollouts)
        out["group_id"] = gids
        return out


def _eos_id(trainer: Any, backend: Any) -> int | None:
    known = getattr(trainer, "eos_token_ids", None)  # what TRL itself tests a completion's last id against
    if known:
        return int(known[0])
    tok = getattr(trainer, "processing_class", None)
    tok = getattr(tok, "tokenizer", tok)
    eos = getattr(tok, "eos_token_id", None)
    if eos is None:
        ids = getattr(backend, "eos_token_ids", None) or []
        eos = ids[0] if ids else None
    return eos
