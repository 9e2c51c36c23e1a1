"""Measure a toy model on held-out toy problems: accuracy (greedy and sampled) and the share of each habit.

    python scripts/measure_toy_model.py --model toy-base --n 200 --temperature 0.7 --out toy_measure.json

Habits are judged by `retrosearch.toy.detect_habits` (by the arithmetic, not the wording).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from retrosearch.toy import (  # noqa: E402
    MODEL_NAMES,
    detect_habits,
    habit_shares,
    make_problems,
    model_path,
    split_think,
)


def generate(
    model, tokenizer, problems, temperature: float, max_new_tokens: int, batch: int, seed: int
) -> list:
    """Assistant texts (starting with `<think>\\n`, as the generation prompt supplies it) for `problems`."""
    import torch

    tokenizer.padding_side = "left"
    texts = []
    for i in range(0, len(problems), batch):
        chunk = problems[i : i + batch]
        prompts = [
            tokenizer.apply_chat_template(p.messages(), add_generation_prompt=True, tokenize=False)
            for p in chunk
        ]
        enc = tokenizer(prompts, add_special_tokens=False, return_tensors="pt", padding=True)
        torch.manual_seed(seed + i)
        kw = (
            {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0}
            if temperature > 0
            else {}
        )
        with torch.no_grad():
            out = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=temperature > 0,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                **{k: v for k, v in kw.items() if k != "do_sample"},
            )
        new = out[:, enc["input_ids"].shape[1] :]
        texts += ["<think>\n" + t for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    return texts


def summarize(problems, texts, tokenizer) -> dict:
    rows = [detect_habits(t, p) for p, t in zip(problems, texts)]
    shares = habit_shares(rows)
    think_tokens = [len(tokenizer.encode(split_think(t)[0], add_special_tokens=False)) for t in texts]
    return {
        "n": len(rows),
        "accuracy": round(shares["correct"], 4),
        "well_formed": round(shares["well_formed"], 4),
        "recheck": round(shares["recheck"], 4),
        "abandoned": round(shares["abandoned"], 4),
        "slip": round(shares["slip"], 4),
        "slip_corrected": round(shares["slip_corrected"], 4),
        "false_alarm": round(shares["false_alarm"], 4),
        "flagged": round(sum(r["n_flags"] > 0 for r in rows) / len(rows), 4),
        "any_switch": round(sum(r["n_switches"] > 0 for r in rows) / len(rows), 4),
        "two_plus_switches": round(sum(r["n_switches"] >= 2 for r in rows) / len(rows), 4),
        "mean_thoughts": round(statistics.mean(r["n_switches"] + 1 for r in rows), 2),
        "mean_think_tokens": round(statistics.mean(think_tokens), 1),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="toy-base", help=f"one of {MODEL_NAMES} or a model folder")
    ap.add_argument("--n", type=int, default=200, help="held-out problems")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--samples", type=int, default=1, help="sampled traces per problem")
    ap.add_argument("--max-new-tokens", type=int, default=512)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is best on a busy machine)")
    ap.add_argument("--out", default="", help="write the figures (and the sampled traces) to this JSON file")
    args = ap.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    path = model_path(args.model) if args.model in MODEL_NAMES else Path(args.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    problems = make_problems(args.n, seed=args.seed, split="test")

    t0 = time.time()
    greedy = generate(model, tokenizer, problems, 0.0, args.max_new_tokens, args.batch, args.seed)
    t_greedy = time.time() - t0
    sampled_p, sampled = [], []
    for k in range(args.samples):
        sampled_p += problems
        sampled += generate(
            model,
            tokenizer,
            problems,
            args.temperature,
            args.max_new_tokens,
            args.batch,
            args.seed + 7919 * (k + 1),
        )
    res = {
        "model": str(args.model),
        "greedy": summarize(problems, greedy, tokenizer),
        f"sampled_t{args.temperature}": summarize(sampled_p, sampled, tokenizer),
        "seconds": {"greedy": round(t_greedy, 1), "total": round(time.time() - t0, 1)},
    }
    print(json.dumps(res, indent=2))
    if args.out:
        dump = dict(res, greedy_texts=greedy, sampled_texts=sampled, problems=[p.question for p in problems])
        Path(args.out).write_text(json.dumps(dump, indent=1) + "\n")
    return res


if __name__ == "__main__":
    main()
