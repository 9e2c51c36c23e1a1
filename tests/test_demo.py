"""`retrosearch demo` end to end with the shipped toy model, at a tiny scale."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from retrosearch import analysis  # noqa: E402
from retrosearch.cli import main  # noqa: E402


def test_demo_samples_revises_and_writes_its_outputs(tmp_path, capsys):
    out = tmp_path / "demo"
    assert (
        main(["demo", "--output-dir", str(out), "--problems", "4", "--samples", "2", "--max-tokens", "256"])
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    traces = [json.loads(line) for line in (out / "traces.jsonl").read_text().splitlines()]
    assert len(traces) == 8 and summary["sampling"]["traces"] == 8
    correct = sum(t["correct"] for t in traces)
    rev = summary["self_revision"]
    assert rev["traces"] == correct == len((out / "revisions.jsonl").read_text().splitlines())
    assert rev["mean_thinking_tokens_after"] <= rev["mean_thinking_tokens_before"] or rev["searched"] == 0
    printed = capsys.readouterr().out
    assert "self_revision" in printed and "accuracy" in printed
    if correct:
        results = analysis.load_results(out)
        assert len(results) == correct
        assert all(r.tree is not None for r in results if r.status in ("revised", "unchanged"))


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], ["[1/2] sampling", "[2/2] revising"]),
        (["--weak-to-strong"], ["[1/3] sampling", "[2/3] revising", "[3/3] weak-to-strong"]),
        (["--full"], ["[1/3] sampling", "[2/3] revising", "[3/3] self-improvement"]),
        (
            ["--full", "--weak-to-strong"],
            ["[1/4]", "[2/4]", "[3/4] weak-to-strong", "[4/4] self-improvement"],
        ),
    ],
)
def test_the_steps_are_numbered_as_they_are_run(tmp_path, capsys, monkeypatch, flags, expected):
    from retrosearch import demo

    revision = {
        "searched": 1, "revised": 1, "revised_share": 1.0, "mean_thinking_tokens_before": 9.0,
        "mean_thinking_tokens_after": 5.0, "cut_pct_all": 44.4, "cut_pct_with_switch": 44.4, "rollouts": 2,
        "seconds": 0.1,
    }  # fmt: skip
    row = {"id": "p#0", "question": "q", "response": "r", "gold": "1", "correct": True}
    monkeypatch.setattr(demo, "_backend", lambda kind, model: None)
    monkeypatch.setattr(
        demo, "sample_traces", lambda b, cfg: ([row], {"accuracy": 1.0, "mean_thinking_tokens": 9.0})
    )
    monkeypatch.setattr(demo, "revise_rows", lambda *a: revision)
    monkeypatch.setattr(
        demo,
        "self_improvement",
        lambda *a: {"original": {"train_examples": 1, "accuracy": 1.0, "mean_thinking_tokens": 9.0}},
    )
    assert main(["demo", "--output-dir", str(tmp_path), *flags]) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[")]
    assert len(said) == len(expected)
    assert all(line.startswith(e) for line, e in zip(said, expected))
