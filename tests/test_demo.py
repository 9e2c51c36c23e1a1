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
        main(["demo", "--output-dir", str(out), "--problems", "6", "--samples", "2", "--max-tokens", "256"])
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    traces = [json.loads(line) for line in (out / "traces.jsonl").read_text().splitlines()]
    assert len(traces) == 12 and summary["sampling"]["traces"] == 12
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
