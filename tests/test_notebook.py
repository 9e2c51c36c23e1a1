"""notebooks/tree_statistics.ipynb: checked in without outputs, runs top to bottom, fails when a cell fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from nbclient.exceptions import CellExecutionError  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "tree_statistics.ipynb"


def execute(nb):
    """Run every cell in a fresh kernel from the notebook's folder (as nbmake and Jupyter do)."""
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()
    return nb


def outputs(nb):
    texts, images = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                texts.append(out["text"])
            elif "data" in out:
                images += "image/png" in out["data"]
                texts.append(out["data"].get("text/plain", ""))
    return "\n".join(texts), images


def test_notebook_is_checked_in_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", [])


def test_notebook_runs_on_the_simulated_world(monkeypatch):
    monkeypatch.delenv("RETROSEARCH_RESULTS", raising=False)
    monkeypatch.setenv("RETROSEARCH_NB_TRACES", "24")
    text, images = outputs(execute(nbformat.read(NOTEBOOK, as_version=4)))
    assert "24 results from" in text and "search trees: yes" in text
    assert "revised_share" in text and "acceptance_rate" in text
    # lengths + spent/saved, acceptance + rollout lengths, one tree.
    assert images >= 3
    assert "tables agree with the search counters" in text


@pytest.mark.slow  # two kernels
def test_notebook_loads_a_journal_from_the_environment_and_fails_on_a_bad_one(tmp_path, monkeypatch):
    from retrosearch.backends import ScriptedBackend
    from retrosearch.retro import PromptFormat, RetroSearchConfig
    from retrosearch.retro.batch import run_batch

    response = (
        "<think>\nWe need 6 * 7.\n\n6 * 7 = 42.\n\nWait, let me double-check. 7 * 6 = 42. Yes.\n</think>\n\n"
        "The answer is \\boxed{42}."
    )
    rows = [
        {"question": "q", "response": response, "gold": "42"},
        {"question": "q", "response": response, "gold": "41"},
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = {
        "6 * 7 = 42.": "\n</think>\n\nThe answer is \\boxed{42}.",
        "</think>\n\n": "The answer is \\boxed{42}.",
    }
    cfg = RetroSearchConfig(prompt=PromptFormat(use_chat_template=False), n=2)
    run_batch(
        tmp_path / "in.jsonl",
        tmp_path / "demo" / "revisions.jsonl",
        ScriptedBackend(model),
        cfg,
        save_trees=True,
        progress=False,
    )

    monkeypatch.setenv("RETROSEARCH_RESULTS", str(tmp_path / "demo"))
    text, images = outputs(execute(nbformat.read(NOTEBOOK, as_version=4)))
    assert f"2 results from {tmp_path / 'demo'}" in text
    assert "tables agree with the search counters" in text and images >= 3

    monkeypatch.setenv("RETROSEARCH_RESULTS", str(tmp_path / "missing"))
    with pytest.raises(CellExecutionError, match="neither a journal file nor a folder"):
        execute(nbformat.read(NOTEBOOK, as_version=4))
