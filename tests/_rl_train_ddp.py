"""Worker of the 2-process GRPO tests: `accelerate launch ... tests/_rl_train_ddp.py OUT STEPS [live|memorize]`.

`live`: the tiny model samples its own rollouts; `memorize`: a scripted R1-Searcher++ policy, with the
memorization term on (its second forward must still be all-reduced with the policy loss).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _rl_train_fixtures import FakeRetriever, pp_policy, tiny_llama, tokenizer, train_config  # noqa: E402

from retrosearch.backends.scripted import ScriptedBackend  # noqa: E402
from retrosearch.rl.train.trainer import train  # noqa: E402


def main() -> None:
    out, steps = Path(sys.argv[1]), int(sys.argv[2])
    mode = sys.argv[3] if len(sys.argv) > 3 else "live"
    torch.set_num_threads(1)
    tok = tokenizer()
    import datasets

    rows = [{"prompt": f"Question number {i}?", "answer": ["Paris"]} for i in range(8)]
    cfg = train_config(
        out, max_steps=steps, max_tokens_per_turn=4, max_completion_length=4, per_device_train_batch_size=2,
        learning_rate=1e-2, save_steps=1, resume="auto", seed=3,
    )  # fmt: skip
    parts: dict = {}
    if mode == "memorize":
        cfg = train_config(
            out, max_steps=steps, per_device_train_batch_size=2, learning_rate=1e-2, save_steps=1, seed=3,
            protocol="r1-searcher++", memorize_coef=0.1, rewards=("r1pp_answer", "r1pp_format", "r1pp_group"),
        )  # fmt: skip
        parts["backend"] = ScriptedBackend(pp_policy, tokenizer=tok)
    seen: list[str] = []
    held = {}

    def record(trainer) -> None:
        held["trainer"] = trainer
        inner = trainer.rollout_func
        trainer.rollout_func = lambda prompts, t: (seen.extend(prompts), inner(prompts, t))[1]

    def even_first(completions, completion_ids, **kw):  # varies within groups, so the weights move
        return [float(ids[0] % 2 == 0) if ids else 0.0 for ids in completion_ids]

    initial = float(sum(p.double().sum() for p in tiny_llama(tok).parameters()))
    if mode == "live":
        parts["reward_funcs"] = [even_first]
    summary = train(
        cfg, model=tiny_llama(tok), tokenizer=tok, dataset=datasets.Dataset.from_list(rows),
        retriever=FakeRetriever(), setup=record, **parts,
    )  # fmt: skip
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_initialized() else 0
    params = held["trainer"].accelerator.unwrap_model(held["trainer"].model).parameters()
    (out / f"rank{rank}.json").write_text(
        json.dumps({
            "rank": rank, "world_size": summary["world_size"], "global_step": summary["global_step"],
            "resumed_from": summary["resumed_from"], "prompts": seen, "losses_finite": summary["losses_finite"],
            "checksum": float(sum(p.detach().double().sum() for p in params)), "initial": initial,
            "memorize_nll": [h["memorize/nll"] for h in summary["history"] if "memorize/nll" in h],
        })
    )  # fmt: skip


if __name__ == "__main__":
    main()
