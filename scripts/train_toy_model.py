"""Train a toy reasoning model (tokenizer + small Llama) on the toy world's traces, on CPU; seeded.

Reproduces the shipped models (the exact commands of every stage are in each folder's `training_info.json`,
under `stages`; the model card retrosearch/assets/toy/README.md lists them)::

    nice -n 5 python scripts/train_toy_model.py --name toy-small --width 128 --layers 3 --heads 4 \
        --traces 40000 --steps 1300 --seed 1 --lr 0.002 --out retrosearch/assets/toy/toy-small

Without `--tokenizer` the tokenizer is trained on a fixed sample of the toy world (20,000 traces of seed 0), so
every model trained from scratch gets the same one; `--init` continues a saved model with its own tokenizer.

With `--minutes` instead of `--steps` the number of steps is fixed from the CPU time of the first steps (CPU
minutes, not wall minutes: on a shared machine the wall clock says little; the count is written to
`training_info.json`, so that `--steps` reproduces the run). The loss is on the assistant turn only (the trace
after the generation prompt's `<think>\\n`, plus the end-of-turn token). Arithmetic drill rows ("42 * 3 = 126"
lines, loss on the results only) make up `--drill-share` of the tokens: they teach the arithmetic with ~5x fewer
tokens per fact than the traces do, so a 2 M-parameter model gets its sums right within a CPU budget.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from retrosearch.toy import TraceConfig, make_dataset, make_drills  # noqa: E402

EOS, PAD = "<|im_end|>", "<|endoftext|>"
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
THINK_TOKENS = ["<think>", "</think>"]
PIECES = r"\p{N}| ?\p{L}+(?: (?=\p{N}))?| ?[^\s\p{L}\p{N}]+(?: (?=\p{N}))?|\n+|[^\S\n]+"

# ChatML with R1's thinking: the generation prompt opens the thinking, an assistant message that does not start
# with <think> gets it added (so a rendered conversation always extends its generation prompt), and the
# {% generation %} markers let TRL compute an assistant-only loss mask.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- generation -%}"
    "{%- if not message['content'].startswith('<think>') -%}{{- '<think>\\n' -}}{%- endif -%}"
    "{{- message['content'] + '<|im_end|>' -}}"
    "{%- endgeneration -%}"
    "{{- '\\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n<think>\\n' -}}{%- endif -%}"
)


def build_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE with one token per digit; special tokens for the chat turns and `<think>`/`</think>`."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # pieces: one digit; a word or punctuation with its leading space (and the trailing one when a number follows:
    # "= 42" is "= ", "4", "2"); a run of newlines
    # (so a step separator "\n\n" is one token whatever follows it, and never merges with the "." before it:
    # a prefix cut at the end of a step then ends on a token boundary the model saw in training); other spaces
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PIECES), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=50,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    # <think> tags: whole tokens that are not "special" (decode(skip_special_tokens=True) keeps them, as Qwen3 does)
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in THINK_TOKENS])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[],
        clean_up_tokenization_spaces=False,
        model_max_length=1024,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def encode(tokenizer, traces) -> list[tuple[list[int], bytes]]:
    """`(ids, loss_mask)` per trace: the chat prompt (ending in `<think>\\n`, no loss) then the trace and
    `<|im_end|>` (loss)."""
    prompts = [
        tokenizer.apply_chat_template(t.problem.messages(), add_generation_prompt=True, tokenize=False)
        for t in traces
    ]
    p_ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    c_ids = tokenizer([t.completion + EOS for t in traces], add_special_tokens=False)["input_ids"]
    return [(p + c, bytes(len(p)) + b"\x01" * len(c)) for p, c in zip(p_ids, c_ids)]


def encode_drills(tokenizer, facts, per_row: int) -> list[tuple[list[int], bytes]]:
    """Rows of `per_row` drill lines `"a op b = c\\n"`; the loss is on the result digits and the newline only."""
    lines = [f"{a} {op} {b} = {c}\n" for a, op, b, c in facts]
    ids = tokenizer(lines, add_special_tokens=False)["input_ids"]
    rows = []
    for i in range(0, len(lines) - per_row + 1, per_row):
        seq, mask = [], b""
        for (_, _, _, c), x in zip(facts[i : i + per_row], ids[i : i + per_row]):
            n_label = len(str(c)) + 1  # one token per digit, then "\n"
            seq += x
            mask += bytes(len(x) - n_label) + b"\x01" * n_label
        rows.append((seq, mask))
    # the pieces never merge across a newline, so line-by-line ids are the ids of the whole row
    assert rows[0][0] == tokenizer("".join(lines[:per_row]), add_special_tokens=False)["input_ids"]
    return rows


def make_batches(rows, batch_tokens: int, rng: random.Random) -> list[list[int]]:
    """Indices grouped by similar length (little padding), at most `batch_tokens` padded tokens a batch."""
    order = sorted(range(len(rows)), key=lambda i: (len(rows[i][0]), rng.random()))
    batches, cur, longest = [], [], 0
    for i in order:
        n = len(rows[i][0])
        if cur and max(longest, n) * (len(cur) + 1) > batch_tokens:
            batches.append(cur)
            cur, longest = [], 0
        cur.append(i)
        longest = max(longest, n)
    if cur:
        batches.append(cur)
    rng.shuffle(batches)
    return batches


def collate(rows, idx, pad_id: int):
    import torch

    n = max(len(rows[i][0]) for i in idx)
    ids = torch.full((len(idx), n), pad_id, dtype=torch.long)
    labels = torch.full((len(idx), n), -100, dtype=torch.long)
    mask = torch.zeros((len(idx), n), dtype=torch.long)
    for r, i in enumerate(idx):
        seq, loss_mask = rows[i]
        t = torch.tensor(seq)
        ids[r, : len(seq)] = t
        labels[r, : len(seq)] = torch.where(
            torch.frombuffer(bytearray(loss_mask), dtype=torch.uint8) > 0, t, -100
        )
        mask[r, : len(seq)] = 1
    return ids, labels, mask


def finalize_folder(out: Path) -> None:
    """Make a saved folder load the same way in older transformers (and vLLM's pinned one).

    The weights are stored in fp16 (small folder) but the config says float32, so `from_pretrained` computes in
    fp32; `rope_theta` and `torch_dtype` are repeated in their pre-5.0 places; the tokenizer class is the
    portable `PreTrainedTokenizerFast` and the 5.x-only keys are dropped from its config.
    """
    cfg_path = out / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["dtype"] = cfg["torch_dtype"] = "float32"
    cfg.setdefault("rope_theta", (cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0))
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    tok_path = out / "tokenizer_config.json"
    tok = json.loads(tok_path.read_text())
    tok["tokenizer_class"] = "PreTrainedTokenizerFast"
    for k in ("backend", "extra_special_tokens", "is_local", "local_files_only"):
        tok.pop(k, None)
    tok_path.write_text(json.dumps(tok, indent=2, sort_keys=True) + "\n")
    (out / "model.safetensors").chmod(0o644)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--name", default="toy-base", help="model name; the default --out is retrosearch/assets/toy/NAME"
    )
    ap.add_argument("--width", type=int, default=192, help="hidden size")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--ffn", type=int, default=0, help="MLP size (0: 8/3 * width rounded up to 32)")
    ap.add_argument(
        "--traces", type=int, default=25000, help="training traces (train split of the toy world)"
    )
    ap.add_argument(
        "--drill-share",
        type=float,
        default=0.3,
        help="share of the training tokens from arithmetic drill rows ('42 * 3 = 126' lines, loss on results)",
    )
    ap.add_argument("--steps", type=int, default=0, help="optimizer steps (0: derive from --minutes)")
    ap.add_argument(
        "--minutes", type=float, default=12.0, help="CPU-minute budget that fixes --steps when it is 0"
    )
    ap.add_argument("--batch-tokens", type=int, default=4096, help="padded tokens per batch")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--beta2", type=float, default=0.99)
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--vocab", type=int, default=512, help="BPE vocabulary size (when training a tokenizer)")
    ap.add_argument("--tokenizer", default="", help="reuse this saved tokenizer instead of training one")
    ap.add_argument(
        "--init", default="", help="continue training the model saved in this folder (its tokenizer too)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is the most CPU-efficient on a busy machine)"
    )
    ap.add_argument("--out", default="", help="output folder")
    args = ap.parse_args(argv)

    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    out = Path(args.out) if args.out else ROOT / "retrosearch" / "assets" / "toy" / args.name
    t0 = time.time()

    traces = make_dataset(args.traces, seed=args.seed, cfg=TraceConfig(), split="train")
    if args.tokenizer or args.init:
        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or args.init)
    else:
        # the tokenizer's sample is fixed (seed 0), so every model trained without --tokenizer gets the same one
        sample_traces = make_dataset(20000, seed=0, cfg=TraceConfig(), split="train")
        sample = [t.problem.question for t in sample_traces] + [t.text for t in sample_traces]
        tokenizer = build_tokenizer(sample, args.vocab)
    rows = encode(tokenizer, traces)
    n_traces = len(rows)
    n_tok = sum(len(r[0]) for r in rows)
    n_drill_tok = 0
    if args.drill_share > 0:
        per_row = 20
        n_facts = int(n_tok * args.drill_share / (1 - args.drill_share) / 9.5)  # ~9.5 tokens a line
        drills = encode_drills(tokenizer, make_drills(n_facts, seed=args.seed + 10_000), per_row)
        n_drill_tok = sum(len(r[0]) for r in drills)
        rows += drills
    print(
        f"{n_traces} traces, {n_tok} tokens ({n_tok / n_traces:.0f}/trace), {n_drill_tok} drill tokens, "
        f"vocab {len(tokenizer)}, data {time.time() - t0:.1f}s",
        flush=True,
    )

    eos_id, pad_id = tokenizer.convert_tokens_to_ids(EOS), tokenizer.convert_tokens_to_ids(PAD)
    ffn = args.ffn or 32 * math.ceil(8 * args.width / 3 / 32)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=args.width,
        intermediate_size=ffn,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.heads,
        max_position_embeddings=1024,
        rope_theta=10000.0,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    if args.init:
        # continue training a saved model (fresh optimizer and schedule; --seed should differ so the data is new)
        model = LlamaForCausalLM.from_pretrained(args.init, dtype=torch.float32)
        config = model.config
        args.width, args.layers, args.heads = (
            config.hidden_size,
            config.num_hidden_layers,
            config.num_attention_heads,
        )
        ffn = config.intermediate_size
    else:
        model = LlamaForCausalLM(config)
    n_params = sum(p.numel() for p in model.parameters())
    print(
        f"params {n_params / 1e6:.2f}M (width {args.width}, layers {args.layers}, heads {args.heads}, ffn {ffn})"
    )

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, args.beta2),
    )
    rng = random.Random(args.seed)
    batches: list[list[int]] = []
    total = args.steps
    probe = 20  # steps timed to turn --minutes into a step count

    def lr_at(step: int) -> float:
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        t = (step - args.warmup) / max(1, (total or 10**9) - args.warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))

    model.train()
    step, seen_tok, ema, t_train, c_train = 0, 0, None, time.time(), time.process_time()
    log = []
    while total == 0 or step < total:
        if not batches:
            batches = make_batches(rows, args.batch_tokens, rng)
        ids, labels, mask = collate(rows, batches.pop(), pad_id)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        seen_tok += int(mask.sum())
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if total == 0 and step == probe:
            per_step = (time.process_time() - c_train) / probe
            total = max(probe + 1, int(args.minutes * 60 / per_step))
            print(f"{per_step:.2f} CPU-s/step -> {total} steps for {args.minutes} CPU-min", flush=True)
        if step % 25 == 0 or step == total:
            el, cpu = time.time() - t_train, time.process_time() - c_train
            print(
                f"step {step}/{total} loss {ema:.4f} lr {lr_at(step):.2e} {seen_tok / cpu:.0f} tok/CPU-s "
                f"{cpu / 60:.1f} CPU-min {el / 60:.1f} min",
                flush=True,
            )
            log.append({"step": step, "loss": round(ema, 4), "cpu_minutes": round(cpu / 60, 2)})
    train_s, train_cpu = time.time() - t_train, time.process_time() - c_train

    out.mkdir(parents=True, exist_ok=True)
    model.config.use_cache = True
    # fp16 weights keep the folder small; the config says float32 so from_pretrained computes in fp32
    model.half().save_pretrained(out)
    tokenizer.save_pretrained(out)
    GenerationConfig(
        eos_token_id=eos_id, pad_token_id=pad_id, bos_token_id=None, max_new_tokens=512
    ).save_pretrained(out)
    finalize_folder(out)
    shown_out = out.resolve().relative_to(ROOT) if out.resolve().is_relative_to(ROOT) else out
    command = (
        f"nice -n 10 python scripts/train_toy_model.py --name {args.name} --width {args.width} "
        f"--layers {args.layers} --heads {args.heads} --traces {args.traces} --steps {step} --seed {args.seed} "
        f"--drill-share {args.drill_share} --lr {args.lr} --warmup {args.warmup} --out {shown_out}"
        + (f" --tokenizer {args.tokenizer}" if args.tokenizer else "")
        + (f" --init {args.init}" if args.init else "")
    )
    stages = [command]
    init_info = None
    if args.init and (Path(args.init) / "training_info.json").is_file():
        init_info = json.loads((Path(args.init) / "training_info.json").read_text())
        stages = init_info.get("stages", []) + stages
    info = {
        "name": args.name,
        "args": vars(args),
        "steps": step,
        "params": n_params,
        "vocab": len(tokenizer),
        "traces": n_traces,
        "tokens_per_trace": round(n_tok / n_traces, 1),
        "drill_tokens": n_drill_tok,
        "train_minutes": round(train_s / 60, 2),
        "train_cpu_minutes": round(train_cpu / 60, 2),
        "tokens_per_s": round(seen_tok / train_s),
        "tokens_per_cpu_s": round(seen_tok / train_cpu),
        "threads": args.threads,
        "epochs": round(seen_tok / (n_tok + n_drill_tok), 2),
        "final_loss": round(ema, 4),
        "log": log,
        "stages": stages,
        "init_info": init_info,
    }
    (out / "training_info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps({k: v for k, v in info.items() if k != "log"}, indent=2))


if __name__ == "__main__":
    main()
