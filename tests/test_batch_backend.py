"""The batch job's backend flags: which model does what, and the settings a large reviser needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrosearch.backends import ScriptedBackend, spec
from retrosearch.backends.spec import BackendSpec, load_script
from retrosearch.cli import build_parser, main
from retrosearch.data.journal import read_header, read_journal

ROOT = Path(__file__).resolve().parents[1]
TRACES = ROOT / "examples" / "traces.jsonl"
SCRIPT = ROOT / "examples" / "scripted_model.json"


def revise_argv(tmp_path: Path, *extra: str) -> list[str]:
    return ["revise", "--input", str(TRACES), "--output", str(tmp_path / "j.jsonl"), "--no-progress", *extra]


def test_the_help_says_what_model_and_revision_model_are_for(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["revise", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--model is the model that wrote the traces" in text
    assert "--revision-model is the model that revises when it is another one" in text


def test_the_traces_model_is_recorded_and_shown_not_ignored(tmp_path, capsys):
    argv = revise_argv(tmp_path, "--backend", "scripted", "--model", "deepseek-ai/DeepSeek-R1")
    assert main([*argv, "--revision-model", str(SCRIPT)]) == 0
    models = read_header(tmp_path / "j.jsonl")["fingerprint"]["models"]
    assert models == {
        "revision": {"backend": "scripted", "model": str(SCRIPT.resolve())},
        "traces": "deepseek-ai/DeepSeek-R1",
    }
    table = " ".join(capsys.readouterr().out.split())
    assert f"revision model {SCRIPT.resolve()} (traces by deepseek-ai/DeepSeek-R1)" in table
    # Resuming with another traces model is another job.
    argv = revise_argv(tmp_path, "--backend", "scripted", "--model", "Qwen/QwQ-32B")
    assert main([*argv, "--revision-model", str(SCRIPT)]) == 1
    assert "models.traces" in capsys.readouterr().err


def test_two_scripts_contradict_each_other(tmp_path, capsys):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"x": "y"}))
    argv = revise_argv(
        tmp_path, "--backend", "scripted", "--model", str(other), "--revision-model", str(SCRIPT)
    )
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert "--model names the model that wrote the traces (it is not loaded)" in capsys.readouterr().err
    assert not (tmp_path / "j.jsonl").exists()


def test_large_reviser_flags_reach_the_vllm_backend(tmp_path, monkeypatch):
    seen: list[tuple[str, dict]] = []

    def fake_load_backend(kind, **kw):
        seen.append((kind, kw))
        return ScriptedBackend(load_script(SCRIPT))

    monkeypatch.setattr(spec, "load_backend", fake_load_backend)
    monkeypatch.setitem(spec._PACKAGES, "vllm", "json")  # vllm itself is not needed to check the flags
    argv = revise_argv(tmp_path, "--backend", "vllm", "--model", "toy-base", "--tensor-parallel-size", "4")
    argv += [
        "--gpu-memory-utilization",
        "0.55",
        "--dtype",
        "bfloat16",
        "--seed",
        "7",
        "--max-model-len",
        "4096",
    ]
    assert main(argv) == 0
    [(kind, kw)] = seen
    assert kind == "vllm" and Path(kw["model"]).name == "toy-base"
    assert (kw["tensor_parallel_size"], kw["gpu_memory_utilization"], kw["dtype"], kw["seed"]) == (
        4,
        0.55,
        "bfloat16",
        7,
    )
    assert kw["max_model_len"] == 4096
    assert len(read_journal(tmp_path / "j.jsonl")) == 7


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--tensor-parallel-size", "2"], "only apply to --backend vllm"),
        (["--gpu-memory-utilization", "0.5"], "only apply to --backend vllm"),
        (["--base-url", "http://x"], "--base-url only applies to --backend openai"),
    ],
)
def test_settings_of_another_backend_are_refused(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as e:
        main(revise_argv(tmp_path, "--backend", "scripted", "--model", str(SCRIPT), *extra))
    assert e.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"kind": "vllm", "model": "toy-base", "tensor_parallel_size": 0},
            "--tensor-parallel-size must be >= 1",
        ),
        ({"kind": "vllm", "model": "toy-base", "gpu_memory_utilization": 1.5}, r"must be in \(0, 1\]"),
        ({"kind": "openai", "model": "m"}, "needs --base-url"),
        ({"kind": "transformers", "model": "runs.jsonl"}, "looks like a file of data"),
        ({"kind": "transformers", "model": "./no/such/folder"}, "does not exist"),
    ],
)
def test_spec_validation_is_one_line(monkeypatch, fields, message):
    monkeypatch.setitem(spec._PACKAGES, "vllm", "json")
    monkeypatch.setitem(spec._PACKAGES, "transformers", "json")
    with pytest.raises(ValueError, match=message):
        BackendSpec(**fields).validate()


def test_identity_names_what_changes_outputs_only():
    a = BackendSpec("vllm", "toy-base", dtype="bfloat16", gpu_memory_utilization=0.5, tensor_parallel_size=2)
    b = BackendSpec("vllm", "toy-base", dtype="bfloat16", batch_size=3)
    assert a.identity() == b.identity() == {"backend": "vllm", "model": "toy-base", "dtype": "bfloat16"}
    key = BackendSpec("openai", "m", base_url="http://h", api_key="secret").identity()
    assert "secret" not in json.dumps(key) and "http://h" not in json.dumps(key)
