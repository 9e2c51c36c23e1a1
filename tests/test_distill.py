"""`retrosearch.distill`: data from journals and row files, the config's checks, the loss mask, checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrosearch.distill import DEFAULT_COMPLETION_TEMPLATE, DistillConfig, load_examples

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# ChatML; the generation prompt is the assistant header, so the trace (which starts with <think>) follows it.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
# A template that, like DeepSeek-R1-Distill's, keeps only what follows </think> in assistant turns.
DROPPING_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- set content = message['content'].split('</think>')[-1] -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + content + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


def _rows() -> list[dict]:
    rows = []
    for a in range(4):
        for b in range(3):
            rows.append(
                {
                    "question": f"What is {a} + {b}?",
                    "response": f"<think>\nAdd {a} and {b}.\n\n{a} + {b} = {a + b}.\n\nWait, check: "
                    f"{a + b} - {b} = {a}.\n</think>\n\nThe answer is \\boxed{{{a + b}}}.",
                    "gold": str(a + b),
                }
            )
    return rows


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def traces_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_jsonl(tmp_path_factory.mktemp("data") / "traces.jsonl", _rows())


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random 2-layer Qwen2 (~20k parameters) with a byte-level BPE tokenizer and a ChatML template."""
    pytest.importorskip("trl")
    import torch
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([r["question"] + r["response"] for r in _rows()], trainer)
    tok.add_tokens([AddedToken(t, normalized=False, special=False) for t in ("<think>", "</think>")])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        clean_up_tokenization_spaces=False,
    )
    fast.chat_template = CHAT_TEMPLATE
    config = Qwen2Config(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.pad_token_id,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny-qwen2")
    Qwen2ForCausalLM(config).save_pretrained(path)
    fast.save_pretrained(path)
    return path


def _config(model: Path, files: Path, out: Path, **kw) -> DistillConfig:
    base = dict(
        model=str(model),
        train_files=(str(files),),
        output_dir=str(out),
        max_steps=2,
        save_steps=2,
        logging_steps=1,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        max_length=256,
        seed=0,
    )
    base.update(kw)
    return DistillConfig(**base)


# --------------------------------------------------------------------------- data
def test_examples_are_conversational_prompt_completion_in_r1_format(
    traces_file: Path, tmp_path: Path
) -> None:
    examples, stats = load_examples(DistillConfig(train_files=(str(traces_file),)))
    assert stats == {"rows": 12, "examples": 12, "skipped": {}}
    assert examples[5] == {
        "prompt": [{"role": "user", "content": "What is 1 + 2?"}],
        "completion": [
            {
                "role": "assistant",
                "content": "<think>\nAdd 1 and 2.\n\n1 + 2 = 3.\n\nWait, check: 3 - 2 = 1.\n</think>\n\n"
                "The answer is \\boxed{3}.",
            }
        ],
    }
    # System prompt and question template go into the prompt turns.
    cfg = DistillConfig(
        train_files=(str(traces_file),), system_prompt="Be brief.", question_template="Q: {question}"
    )
    ex, _ = load_examples(cfg)
    assert ex[0]["prompt"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q: What is 0 + 0?"},
    ]


def test_openthoughts_rows_are_rewritten_in_the_students_format(tmp_path: Path) -> None:
    row = {
        "system": "Your role as an assistant ...",
        "conversations": [
            {"from": "user", "value": "How many sides does a hexagon have?"},
            {
                "from": "assistant",
                "value": "<|begin_of_thought|>\n\nHexa means six.\n\n<|end_of_thought|>\n\n<|begin_of_solution|>"
                "\n\n\\boxed{6}\n\n<|end_of_solution|>",
            },
        ],
    }
    f = _write_jsonl(tmp_path / "ot.jsonl", [row])
    (ex,), _ = load_examples(DistillConfig(train_files=(str(f),)))
    assert ex["prompt"] == [{"role": "user", "content": "How many sides does a hexagon have?"}]
    assert ex["completion"][0]["content"] == "<think>\nHexa means six.\n</think>\n\n\\boxed{6}"


def test_journal_rows_revised_and_unchanged_are_used(tmp_path: Path) -> None:
    """A real journal of `retrosearch revise` (scripted model over examples/): 4 revised, 1 unchanged, 2 skipped."""
    if not (EXAMPLES / "traces.jsonl").is_file():
        pytest.skip("examples/traces.jsonl is absent")
    from retrosearch.backends.spec import BackendSpec
    from retrosearch.retro.batch import run_batch

    journal = tmp_path / "journal.jsonl"
    summary = run_batch(
        EXAMPLES / "traces.jsonl",
        journal,
        BackendSpec("scripted", str(EXAMPLES / "scripted_model.json")),
        progress=False,
    )
    assert (summary.revised, summary.unchanged, summary.skipped) == (4, 1, 2)
    examples, stats = load_examples(DistillConfig(train_files=(str(journal),)))
    assert stats["examples"] == 5
    assert stats["skipped"] == {"journal status skipped": 2}
    by_question = {e["prompt"][-1]["content"]: e["completion"][0]["content"] for e in examples}
    # The revised trace (over-thinking cut after the answer), not the original.
    assert by_question["What is 15 + 27?"] == (
        "<think>\nAdd 15 and 27: 15 + 20 = 35, then 35 + 7 = 42.\n\nSo the sum is 42.\n</think>\n\n"
        "The sum is \\boxed{42}."
    )
    # OpenThoughts conversation rows and OpenThoughts metadata rows come out in the student's format too.
    assert by_question["How many sides does a hexagon have?"].startswith("<think>\nA hexagon is a polygon")
    assert "<|begin_of_thought|>" not in by_question["How many sides does a hexagon have?"]
    assert by_question["What is the area of a 3 by 4 rectangle?"].endswith(
        "</think>\n\nThe area is \\boxed{12}."
    )
    # Every status can be asked for; the truncated skipped row is still dropped as incomplete.
    everything, stats = load_examples(
        DistillConfig(train_files=(str(journal),), statuses=("revised", "unchanged", "skipped"))
    )
    assert len(everything) == 6
    assert stats["skipped"] == {"incomplete (thinking not closed or no solution)": 1}
    # A journal among other files of a folder: its header is no row, its records give their rows.
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "journal.jsonl").write_bytes(journal.read_bytes())
    in_folder, stats = load_examples(DistillConfig(train_files=(str(folder),)))
    assert stats == {"rows": 7, "examples": 5, "skipped": {"journal status skipped": 2}}
    assert sorted(e["prompt"][-1]["content"] for e in in_folder) == sorted(by_question)


def test_only_correct_and_incomplete_filters(tmp_path: Path) -> None:
    rows = [
        {"question": "1+1?", "response": "<think>\n1+1=2.\n</think>\n\n\\boxed{2}", "gold": "2"},
        {"question": "2+2?", "response": "<think>\n2+2=5.\n</think>\n\n\\boxed{5}", "gold": "4"},
        {"question": "3+3?", "response": "<think>\n3+3 is", "gold": "6"},
        {"question": "4+4?", "response": "<think>\n4+4=8.\n</think>\n\n\\boxed{8}"},
    ]
    f = _write_jsonl(tmp_path / "mixed.jsonl", rows)
    ex, stats = load_examples(DistillConfig(train_files=(str(f),)))
    assert len(ex) == 3 and stats["skipped"] == {"incomplete (thinking not closed or no solution)": 1}
    ex, stats = load_examples(DistillConfig(train_files=(str(f),), only_correct=True))
    assert [e["prompt"][0]["content"] for e in ex] == ["1+1?"]
    assert stats["skipped"] == {
        "incomplete (thinking not closed or no solution)": 1,
        "incorrect answer (only_correct)": 1,
        "no gold answer (only_correct)": 1,
    }
    ex, _ = load_examples(DistillConfig(train_files=(str(f),), max_examples=2))
    assert len(ex) == 2


def test_a_bad_row_is_named_or_skipped(tmp_path: Path) -> None:
    f = tmp_path / "bad.jsonl"
    f.write_text(
        json.dumps({"question": "1+1?", "response": "<think>\nok\n</think>\n\n\\boxed{2}"})
        + "\n"
        + json.dumps({"question": "no response here"})
        + "\n{not json\n"
    )
    with pytest.raises(ValueError, match=r"bad\.jsonl:2.*response"):
        load_examples(DistillConfig(train_files=(str(f),)))
    ex, stats = load_examples(DistillConfig(train_files=(str(f),), on_bad_row="skip"))
    assert len(ex) == 1 and stats["skipped"] == {"bad row": 2}


# --------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("learning_rate", 0.0),
        ("learning_rate", -1e-5),
        ("max_steps", 0),
        ("num_train_epochs", 0),
        ("per_device_train_batch_size", 0),
        ("gradient_accumulation_steps", 1.5),
        ("save_steps", 0),
        ("logging_steps", -1),
        ("max_length", 0),
        ("warmup_steps", -1),
        ("warmup_steps", 2.5),
        ("seed", -1),
        ("statuses", ("revised", "maybe")),
        ("on_bad_row", "ignore"),
        ("dtype", "float64"),
        ("completion_template", "{thinking} {answer}"),
        ("completion_template", "{solution}"),
        ("question_template", "no placeholder"),
        ("resume", 3),
    ],
)
def test_bad_values_are_rejected_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"DistillConfig\.{field}"):
        DistillConfig(**{field: value})


def test_validate_requires_model_and_existing_files(tmp_path: Path, traces_file: Path) -> None:
    with pytest.raises(ValueError, match=r"DistillConfig\.model is required"):
        DistillConfig(train_files=(str(traces_file),)).validate()
    with pytest.raises(ValueError, match=r"DistillConfig\.train_files is required"):
        DistillConfig(model="m").validate()
    with pytest.raises(ValueError, match=r"DistillConfig\.train_files: .*missing\.jsonl does not exist"):
        DistillConfig(model="m", train_files=(str(tmp_path / "missing.jsonl"),)).validate()
    with pytest.raises(ValueError, match=r"DistillConfig\.sft_args: set \['learning_rate'\]"):
        DistillConfig(model="m", train_files=(str(traces_file),), sft_args={"learning_rate": 1.0}).validate()
    # One file given as a string, resume given as text (YAML / flags).
    cfg = DistillConfig(model="m", train_files=str(traces_file), resume="true")
    assert cfg.train_files == (str(traces_file),) and cfg.resume is True
    assert DistillConfig(resume="auto").resume == "auto" and DistillConfig(resume="no").resume is False
    assert DistillConfig().completion_template == DEFAULT_COMPLETION_TEMPLATE


def test_a_missing_student_fails_at_once(tmp_path: Path, traces_file: Path, monkeypatch) -> None:
    import time

    from retrosearch.distill import build_trainer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name, message in (("./no/such/model", "does not exist"), ("no-such-model", "hub")):
        t0 = time.perf_counter()
        with pytest.raises(ValueError, match=rf"DistillConfig\.model .*{message}"):
            build_trainer(
                DistillConfig(model=name, train_files=(str(traces_file),), output_dir=str(tmp_path))
            )
        assert time.perf_counter() - t0 < 5


def test_yaml_config_and_flags(tmp_path: Path, traces_file: Path) -> None:
    from retrosearch.config import load_yaml

    y = tmp_path / "d.yaml"
    y.write_text(
        f"model: m\ntrain_files: [{traces_file}]\nlearning_rate: 1.0e-4\nsft_args: {{optim: adamw_torch}}\n"
    )
    cfg = load_yaml(DistillConfig, y)
    assert cfg.train_files == (str(traces_file),) and cfg.learning_rate == 1e-4
    assert cfg.sft_args == {"optim": "adamw_torch"}
    y.write_text("model: m\nlern_rate: 1\n")
    with pytest.raises(ValueError, match="lern_rate"):
        load_yaml(DistillConfig, y)
    # A value of the wrong type names the field and the type, before any check trips over it.
    y.write_text("model: m\nlearning_rate: fast\n")
    with pytest.raises(ValueError, match=r"DistillConfig\.learning_rate must be a number, got 'fast'"):
        load_yaml(DistillConfig, y)
    # One file given as a string stands for a list of one.
    y.write_text(f"model: m\ntrain_files: {traces_file}\n")
    assert load_yaml(DistillConfig, y).train_files == (str(traces_file),)


# --------------------------------------------------------------------------- training
def test_loss_covers_the_assistant_turn_only(tiny_model: Path, traces_file: Path, tmp_path: Path) -> None:
    from retrosearch.distill import build_trainer

    trainer, info = build_trainer(_config(tiny_model, traces_file, tmp_path / "out"))
    assert info["data"]["examples"] == 12
    tok = trainer.processing_class
    row = trainer.train_dataset[0]
    n_prompt = len(
        tok.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True)[
            "input_ids"
        ]
    )
    ids, labels = row["input_ids"], row["labels"]
    assert tok.decode(ids[:n_prompt]) == "<|im_start|>user\nWhat is 0 + 0?<|im_end|>\n<|im_start|>assistant\n"
    assert labels[:n_prompt] == [-100] * n_prompt
    assert labels[n_prompt:] == ids[n_prompt:]
    assert tok.decode(ids[n_prompt:]).startswith("<think>\nAdd 0 and 0.")
    assert tok.decode(ids[n_prompt:]).endswith("\\boxed{0}.<|im_end|>\n")  # the end-of-turn token is learned

    # The collated batch (padded) keeps the mask: -100 on every prompt and padding position.
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    for i in range(4):
        r = trainer.train_dataset[i]
        n_p = len(
            tok.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=True, return_dict=True)[
                "input_ids"
            ]
        )
        n = len(r["input_ids"])
        lab = batch["labels"][i].tolist()
        assert lab[:n_p] == [-100] * n_p
        assert lab[n_p:n] == r["input_ids"][n_p:]
        assert all(x == -100 for x in lab[n:])
        assert batch["attention_mask"][i].tolist() == [1] * n + [0] * (len(lab) - n)


def test_a_template_that_drops_the_thinking_is_refused(
    tiny_model: Path, traces_file: Path, tmp_path: Path
) -> None:
    from retrosearch.distill import build_trainer

    template = tmp_path / "r1.jinja"
    template.write_text(DROPPING_TEMPLATE)
    cfg = _config(tiny_model, traces_file, tmp_path / "out", chat_template_path=str(template))
    with pytest.raises(ValueError, match="removes the\\s+<think> part"):
        build_trainer(cfg)


def test_train_checkpoint_and_resume(tiny_model: Path, traces_file: Path, tmp_path: Path, capsys) -> None:
    from retrosearch.cli import main
    from retrosearch.distill import distill

    out = tmp_path / "student"
    # First run through the command line: 2 steps, a checkpoint at step 2, the final model in output_dir.
    code = main(
        ["distill", "--model", str(tiny_model), "--train-files", str(traces_file), "--output-dir", str(out),
         "--max-steps", "2", "--save-steps", "2", "--logging-steps", "1", "--per-device-train-batch-size", "4",
         "--learning-rate", "1e-3", "--max-length", "256"]
    )  # fmt: skip
    assert code == 0
    assert "2 steps this run (global step 2)" in capsys.readouterr().out
    assert (out / "checkpoint-2" / "trainer_state.json").is_file()
    assert (out / "model.safetensors").is_file() and (out / "tokenizer_config.json").is_file()
    first = json.loads((out / "distill_summary.json").read_text())
    assert first["global_step"] == 2 and first["resumed_from"] is None and first["device"] == "cpu"
    assert first["data"]["examples"] == 12 and first["max_length_hits"] == 0

    # Starting again over the checkpoints without resume is refused (it would mix two runs).
    with pytest.raises(ValueError, match="already holds checkpoints"):
        distill(_config(tiny_model, traces_file, out, max_steps=4))

    # Resuming continues from step 2: two more steps, not four.
    summary = distill(_config(tiny_model, traces_file, out, max_steps=4, resume=True))
    assert summary["resumed_from"] == str(out / "checkpoint-2")
    assert (summary["first_step_this_run"], summary["steps_this_run"], summary["global_step"]) == (3, 2, 4)
    state = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert [e["step"] for e in state["log_history"] if "loss" in e] == [1, 2, 3, 4]
    assert summary["train_loss"] > 0

    with pytest.raises(ValueError, match="no checkpoint"):
        distill(_config(tiny_model, traces_file, tmp_path / "empty", resume=True))


@pytest.mark.slow
def test_two_process_data_parallel_run_on_cpu(tiny_model: Path, traces_file: Path, tmp_path: Path) -> None:
    """The same command under `torchrun` (what `accelerate launch` runs on several GPUs): one CPU DDP group."""
    import os
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed next to this Python")
    script = tmp_path / "run.py"
    script.write_text(
        "import sys\nimport retrosearch.distill  # noqa: F401\nfrom retrosearch.cli import main\n"
        "raise SystemExit(main(sys.argv[1:]))\n"
    )
    out = tmp_path / "ddp"
    args = ["distill", "--model", str(tiny_model), "--train-files", str(traces_file), "--output-dir", str(out),
            "--save-steps", "2", "--per-device-train-batch-size", "2", "--max-length", "256"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for steps, extra in (("2", []), ("4", ["--resume", "true"])):
        proc = subprocess.run(
            [torchrun, "--nproc_per_node", "2", str(script), *args, "--max-steps", steps, *extra],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "distill_summary.json").read_text())
    assert summary["world_size"] == 2
    assert (summary["resumed_from"], summary["steps_this_run"], summary["global_step"]) == (
        str(out / "checkpoint-2"),
        2,
        4,
    )
    # 4 steps x 2 processes x 2 examples = 16 of the 12 examples: past one epoch.
    assert summary["metrics"]["epoch"] > 1
