"""Train toy-searcher-base (tokenizer + small Llama) on the knowledge world, on CPU; seeded; then measure it.

Reproduces the shipped model::

    nice -n 5 python scripts/train_searcher_base.py --steps <from training_info.json> --seed 0 --measure 200

The training rows (loss on model-written tokens only):

- **pretraining text**: the knowledge world's fact sentences of its frequent entities (`pretraining_text`), packed
  into rows, loss on every token: the facts the model may know from memory;
- **trajectories** of the world's train questions in R1-Searcher's format, prompted and formatted by
  `retrosearch.rl.protocols.R1_SEARCHER` (prompt ending `Assistant: <think>`, documents blocks from
  `format_documents` over BM25's top-k, loss masked on the prompt and the documents): each hop of a question is
  searched with probability `--p-search`, else recalled (right when the fact is known, a wrong guess when not);
  some rows use the closed-book and naive-RAG prompts of `retrosearch.rl.rollout.mode_instructions`.

With `--minutes` instead of `--steps` the step count is fixed from the CPU time of the first steps and written to
`training_info.json`. `--measure N` runs `retrosearch.rl.evaluate.evaluate_qa` on N held-out questions afterwards
(search with BM25, closed book, naive RAG; temperature 1) and writes `measure.json` to `--measure-dir`.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from train_toy_model import collate, finalize_folder, make_batches  # noqa: E402

from retrosearch.rl.protocols import R1_SEARCHER  # noqa: E402
from retrosearch.rl.retrievers.base import Passage  # noqa: E402
from retrosearch.rl.rollout import mode_instructions  # noqa: E402
from retrosearch.toy.knowledge import SearchTags, completion_segments, make_world  # noqa: E402

EOS, PAD = "<|endoftext|>", "<|pad|>"
PROTOCOL = R1_SEARCHER
TAGS = SearchTags(
    PROTOCOL.queries[0].open, PROTOCOL.queries[0].close, PROTOCOL.think_close, PROTOCOL.answer_open,
    PROTOCOL.answer_close,
)  # fmt: skip


def build_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE; the protocol's tags as single, non-special tokens (decoding keeps them in the text)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=4,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in PROTOCOL.tags])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, pad_token=PAD, clean_up_tokenization_spaces=False,
        model_max_length=2048,
    )  # fmt: skip


def make_trajectories(world, retriever, rng: random.Random, args) -> list[tuple[str, list[tuple[str, bool]]]]:
    """One pass over the train questions: per question its prompt mode and one trajectory as `(text, trained)`
    pieces."""
    out = []
    modes = ("search", "closed_book", "naive_rag")
    shares = [1 - args.closed_book_share - args.naive_rag_share, args.closed_book_share, args.naive_rag_share]
    for q in world.split_questions("train"):
        mode = rng.choices(modes, shares)[0]
        k = rng.choice((3, 5))
        prompt_docs: set[str] = set()
        instructions = mode_instructions(PROTOCOL, mode)
        if mode == "naive_rag":
            found = retriever.retrieve([q.question], k)[0]
            prompt_docs = {p.id for p in found}
            instructions = mode_instructions(PROTOCOL, mode, PROTOCOL.format_passages(found))
        docs: dict[str, list] = {}

        def choose(i, fact, mode=mode, prompt_docs=prompt_docs, k=k, docs=docs):
            if mode == "closed_book":
                return "recall"
            if mode == "naive_rag":
                return "read" if fact.passage in prompt_docs else "recall"
            if rng.random() >= args.p_search:
                return "recall"
            query = world.query(fact.subject, fact.relation)
            found = retriever.retrieve([query], k)[0]
            if fact.passage not in {p.id for p in found}:
                return "recall"  # a search that would not find the fact is not shown
            docs[query] = found
            return "search"

        hops = world.plan_hops(q, choose, rng)
        pieces = [(PROTOCOL.render_prompt(q.question, instructions=instructions), False)]
        for kind, text in completion_segments(world, hops, TAGS):
            pieces.append((text, True) if kind == "model" else (PROTOCOL.format_documents(docs[text]), False))
        pieces[-1] = (pieces[-1][0] + EOS, True)
        out.append((mode, pieces))
    return out


def encode_pieces(tokenizer, pieces: list[tuple[str, bool]]) -> tuple[list[int], bytes]:
    """Each piece tokenized on its own, as the rollout does (prompt, model segments, documents blocks)."""
    ids, mask = [], b""
    for text, trained in pieces:
        x = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += x
        mask += (b"\x01" if trained else b"\x00") * len(x)
    return ids, mask


def split_prefixes(groups: dict[str, list[tuple[list[int], bytes]]]):
    """Per prompt mode, the ids every row of it starts with (untrained), and the rows without them.

    A batch holds rows of one mode: its prefix runs once and its key/value cache is shared by the batch, which is
    the same computation (and gradient) as running every row whole, at a fraction of the cost.
    """
    prefixes, rest = {}, []
    for mode, rows in groups.items():
        n = min(len(r[0]) for r in rows)
        first = rows[0][0]
        for ids, mask in rows:
            n = next((i for i in range(n) if ids[i] != first[i] or mask[i]), n)
        prefixes[mode] = first[: max(0, n - 1)]  # leave one id so every row has input after the prefix
        rest += [(mode, ids[len(prefixes[mode]) :], mask[len(prefixes[mode]) :]) for ids, mask in rows]
    return prefixes, rest


def forward_loss(model, prefix: list[int], ids, labels, mask):
    """Mean next-token loss of a batch whose rows all start with `prefix` (run once, its cache expanded)."""
    import torch
    import torch.nn.functional as F

    kw = {}
    if prefix:
        cache = model(input_ids=torch.tensor([prefix]), use_cache=True).cache
        for layer in cache.layers:
            layer.keys = layer.keys.expand(ids.shape[0], -1, -1, -1)
            layer.values = layer.values.expand(ids.shape[0], -1, -1, -1)
        n = len(prefix)
        kw = {
            "cache": cache,
            "position_ids": torch.arange(n, n + ids.shape[1]).expand(ids.shape[0], -1),
        }
        mask = torch.cat([torch.ones(ids.shape[0], n, dtype=mask.dtype), mask], dim=1)
    logits = model(input_ids=ids, attention_mask=mask, use_cache=bool(prefix), **kw).logits
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(), ignore_index=-100)


def group_batches(rows, batch_tokens: int, rng: random.Random) -> list[tuple[str, list[int]]]:
    """Length-bucketed batches (`make_batches`) within each prompt mode, shuffled together."""
    out = []
    for mode in sorted({r[0] for r in rows}):
        idx = [i for i, r in enumerate(rows) if r[0] == mode]
        sub = [(rows[i][1], rows[i][2]) for i in idx]
        out += [(mode, [idx[j] for j in b]) for b in make_batches(sub, batch_tokens, rng)]
    rng.shuffle(out)
    return out


def pack_lines(tokenizer, lines: list[str], row_tokens: int) -> list[tuple[list[int], bytes]]:
    """Pretraining lines packed into rows of at most `row_tokens` tokens (newline-separated, loss on all)."""
    enc = tokenizer([line + "\n" for line in lines], add_special_tokens=False)["input_ids"]
    rows, cur = [], []
    for x in enc:
        if cur and len(cur) + len(x) > row_tokens:
            rows.append((cur, b"\x01" * len(cur)))
            cur = []
        cur = cur + x
    if cur:
        rows.append((cur, b"\x01" * len(cur)))
    return rows


def measure(model_dir: Path, world_seed: int, n: int, samples: int, seed: int, work: Path) -> dict:
    """Held-out figures at temperature 1 through `evaluate_qa`: search with BM25, closed book and naive RAG."""
    from retrosearch.backends.hf import TransformersBackend
    from retrosearch.rl.benchmarks import load_qa_benchmark
    from retrosearch.rl.evaluate import QAEvalConfig, eval_rollout_config, evaluate_qa
    from retrosearch.rl.retrievers import load_retriever
    from retrosearch.toy.knowledge import heldout_benchmark

    bench = heldout_benchmark(world_seed, work)
    rows = {r["id"]: r for r in map(json.loads, Path(bench["questions"]).read_text().splitlines())}
    benchmark = load_qa_benchmark(str(bench["questions"]), limit=n)
    retriever = load_retriever("bm25", corpus=bench["corpus"], show_progress=False)
    backend = TransformersBackend(str(model_dir), device="cpu", batch_size=32)
    rollout = eval_rollout_config(temperature=1.0, top_p=1.0, num_generations=samples, seed=seed)
    preds = work / "predictions.jsonl"
    t0 = time.time()
    result = evaluate_qa(
        backend, [benchmark], rollout, QAEvalConfig(), retriever=retriever, predictions=preds
    )
    records = [json.loads(line) for line in preds.read_text().splitlines()]
    out: dict = {"questions": len(benchmark), "samples": samples, "top_k": rollout.top_k, "temperature": 1.0}
    for mode in ("search", "closed_book", "naive_rag"):
        recs = [r for r in records if r["mode"] == mode]
        m = {
            "cover_em": _mean(r["cover_em"] for r in recs),
            "well_formed": _mean(r["well_formed"] for r in recs),
        }
        if mode == "search":
            m["retrieved"] = _mean(r["retrievals"] >= 1 for r in recs)
            m["retrievals_per_rollout"] = _mean(r["retrievals"] for r in recs)
        for known in (True, False):
            sub = [r for r in recs if rows[r["id"]]["known"] is known]
            m[f"cover_em_{'known' if known else 'unknown'}"] = _mean(r["cover_em"] for r in sub)
        for hops in (1, 2):
            m[f"cover_em_{hops}hop"] = _mean(r["cover_em"] for r in recs if rows[r["id"]]["hops"] == hops)
        out[mode] = m
    out["seconds"] = round(time.time() - t0, 1)
    out["summary"] = result["benchmarks"]
    return out


def _mean(values) -> float | None:
    v = [float(x) for x in values]
    return round(sum(v) / len(v), 4) if v else None


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--world-seed", type=int, default=0, help="seed of the knowledge world")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--vocab", type=int, default=1536, help="BPE vocabulary size (before the tag tokens)")
    ap.add_argument("--p-search", type=float, default=0.25, help="chance that a trajectory searches a hop")
    ap.add_argument(
        "--closed-book-share", type=float, default=0.12, help="trajectories with the closed-book prompt"
    )
    ap.add_argument(
        "--naive-rag-share", type=float, default=0.12, help="trajectories with the naive-RAG prompt"
    )
    ap.add_argument("--trajectory-passes", type=int, default=8, help="passes over the train questions")
    ap.add_argument("--fact-passes", type=int, default=40, help="passes of the pretraining text")
    ap.add_argument("--steps", type=int, default=0, help="optimizer steps (0: derive from --minutes)")
    ap.add_argument("--minutes", type=float, default=12.0, help="CPU-minute budget that fixes --steps when 0")
    ap.add_argument("--batch-tokens", type=int, default=8192, help="padded tokens per batch")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument(
        "--out", default="", help="output folder (default: retrosearch/assets/toy/toy-searcher-base)"
    )
    ap.add_argument(
        "--measure", type=int, default=0, help="after training, measure on this many held-out questions"
    )
    ap.add_argument("--measure-samples", type=int, default=2, help="rollouts per question when measuring")
    ap.add_argument("--measure-only", action="store_true", help="measure the model in --out without training")
    ap.add_argument(
        "--measure-dir", default="", help="folder for the measurement's files (default: a temp folder)"
    )
    args = ap.parse_args(argv)
    out = Path(args.out) if args.out else ROOT / "retrosearch" / "assets" / "toy" / "toy-searcher-base"
    work = Path(args.measure_dir or tempfile.mkdtemp(prefix="toy-searcher-measure-"))
    if args.measure_only:
        result = measure(out, args.world_seed, args.measure or 200, args.measure_samples, args.seed, work)
        (work / "measure.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        return

    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from retrosearch.rl.retrievers.bm25 import BM25Retriever

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    t0 = time.time()
    world = make_world(args.world_seed)
    retriever = BM25Retriever.build(
        [Passage(p["id"], p["title"], p["text"]) for p in world.passages], show_progress=False
    )
    trajectories = [
        t for _ in range(args.trajectory_passes) for t in make_trajectories(world, retriever, rng, args)
    ]
    fact_lines = [line for _ in range(args.fact_passes) for line in world.pretraining_text(rng)]
    sample = [p for _, t in trajectories[: len(trajectories) // args.trajectory_passes] for p, _ in t]
    sample += fact_lines[: len(fact_lines) // args.fact_passes] + [
        f"{p['title']} {p['text']}" for p in world.passages
    ]
    tokenizer = build_tokenizer(sample, args.vocab)
    groups: dict[str, list[tuple[list[int], bytes]]] = {}
    for mode, t in trajectories:
        groups.setdefault(mode, []).append(encode_pieces(tokenizer, t))
    n_traj_tok = sum(len(r[0]) for g in groups.values() for r in g)
    n_traj_loss = sum(sum(r[1]) for g in groups.values() for r in g)
    prefixes, rows = split_prefixes(groups)
    facts = pack_lines(tokenizer, fact_lines, 256)
    n_fact_tok = sum(len(r[0]) for r in facts)
    prefixes[""] = []
    rows += [("", ids, mask) for ids, mask in facts]
    n_run = sum(len(r[1]) for r in rows)
    searched = sum(any(not trained for _, trained in t[1:]) for _, t in trajectories) / len(trajectories)
    print(
        f"{len(trajectories)} trajectories ({n_traj_tok} tokens, {n_traj_loss} trained; {searched:.0%} with "
        f"documents), {len(facts)} fact rows ({n_fact_tok} tokens), vocab {len(tokenizer)}, "
        f"shared prefixes {', '.join(f'{m} {len(p)}' for m, p in prefixes.items() if p)} tokens, {n_run} tokens "
        f"run, data {time.time() - t0:.0f}s",
        flush=True,
    )

    eos_id, pad_id = tokenizer.convert_tokens_to_ids(EOS), tokenizer.convert_tokens_to_ids(PAD)
    ffn = 32 * math.ceil(8 * args.width / 3 / 32)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=args.width, intermediate_size=ffn, num_hidden_layers=args.layers,
        num_attention_heads=args.heads, num_key_value_heads=args.heads, max_position_embeddings=2048,
        rope_theta=10000.0, tie_word_embeddings=True, bos_token_id=None, eos_token_id=eos_id, pad_token_id=pad_id,
    )  # fmt: skip
    model = LlamaForCausalLM(config)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"params {n_params / 1e6:.2f}M (width {args.width}, layers {args.layers}, heads {args.heads}, ffn {ffn})"
    )
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr, betas=(0.9, 0.99),
    )  # fmt: skip
    total, probe = args.steps, 20

    def lr_at(step: int) -> float:
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        t = (step - args.warmup) / max(1, (total or 10**9) - args.warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))

    model.train()
    batches: list[list[int]] = []
    step, seen, ema, log = 0, 0, None, []
    t_train, c_train = time.time(), time.process_time()
    while total == 0 or step < total:
        if not batches:
            batches = group_batches(rows, args.batch_tokens, rng)
        mode, idx = batches.pop()
        ids, labels, mask = collate([(r[1], r[2]) for r in rows], idx, pad_id)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = forward_loss(model, prefixes[mode], ids, labels, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        seen += int(mask.sum()) + len(prefixes[mode])
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if total == 0 and step == probe:
            per_step = (time.process_time() - c_train) / probe
            total = max(probe + 1, int(args.minutes * 60 / per_step))
            print(f"{per_step:.2f} CPU-s/step -> {total} steps for {args.minutes} CPU-min", flush=True)
        if step % 25 == 0 or step == total:
            cpu = time.process_time() - c_train
            log.append({"step": step, "loss": round(ema, 4), "cpu_minutes": round(cpu / 60, 2)})
            print(f"step {step}/{total} loss {ema:.4f} {seen / cpu:.0f} tok/CPU-s {(time.time() - t_train) / 60:.1f} min",
                  flush=True)  # fmt: skip
    train_s, train_cpu = time.time() - t_train, time.process_time() - c_train

    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.config.use_cache = True
    model.half().save_pretrained(out)  # fp16 weights keep the folder small; the config says float32
    tokenizer.save_pretrained(out)
    GenerationConfig(
        eos_token_id=eos_id, pad_token_id=pad_id, bos_token_id=None, max_new_tokens=512
    ).save_pretrained(out)
    finalize_folder(out)
    shown = out.resolve().relative_to(ROOT) if out.resolve().is_relative_to(ROOT) else out.name
    command = (
        f"nice -n 5 python scripts/train_searcher_base.py --world-seed {args.world_seed} --width {args.width} "
        f"--layers {args.layers} --heads {args.heads} --vocab {args.vocab} --p-search {args.p_search} "
        f"--closed-book-share {args.closed_book_share} --naive-rag-share {args.naive_rag_share} "
        f"--trajectory-passes {args.trajectory_passes} --fact-passes {args.fact_passes} --steps {step} "
        f"--batch-tokens {args.batch_tokens} --lr {args.lr} --warmup {args.warmup} --seed {args.seed} "
        f"--threads {args.threads} --out {shown}"
    )
    info = {
        "name": "toy-searcher-base",
        "command": command,
        "args": {**vars(args), "out": str(shown)},
        "data": {
            "world": f"retrosearch.toy.knowledge.make_world({args.world_seed})",
            "protocol": PROTOCOL.name,
            "trajectories": len(trajectories),
            "trajectory_tokens": n_traj_tok,
            "trajectory_trained_tokens": n_traj_loss,
            "trajectories_with_documents": round(searched, 4),
            "fact_rows": len(facts),
            "fact_tokens": n_fact_tok,
        },
        "steps": step,
        "params": n_params,
        "vocab": len(tokenizer),
        "train_minutes": round(train_s / 60, 2),
        "train_cpu_minutes": round(train_cpu / 60, 2),
        "tokens_per_cpu_s": round(seen / train_cpu),
        "epochs": round(seen / n_run, 3),
        "final_loss": round(ema, 4),
        "log": log,
    }
    (out / "training_info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps({k: v for k, v in info.items() if k != "log"}, indent=2))
    if args.measure:
        result = measure(out, args.world_seed, args.measure, args.measure_samples, args.seed, work)
        (work / "measure.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
