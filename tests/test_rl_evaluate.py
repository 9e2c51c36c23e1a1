"""QA evaluation: benchmarks, the evaluate job and its baselines, the LLM judge, `rl evaluate` and `rl score`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrosearch.backends.scripted import ScriptedBackend
from retrosearch.rl.benchmarks import QA_BENCHMARKS, load_qa_benchmark
from retrosearch.rl.evaluate import QAEvalConfig, eval_rollout_config, evaluate_qa, format_table
from retrosearch.rl.judge import JUDGE_TEMPLATE, LLMJudge, parse_verdict
from retrosearch.rl.retrievers.base import Passage
from retrosearch.rl.scoring import score_file, score_records, summarize

QUESTIONS = [
    {"idx": 1, "question": "What is the capital of France?", "answer": "Paris"},
    {"idx": 2, "question": "What is the capital of Italy?", "answer": ["Rome", "Roma"]},
]


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


class CapitalRetriever:
    """Knows two capitals; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def retrieve(self, queries, k):
        self.calls += 1
        facts = {
            "France": Passage("1", "Paris", "Paris is the capital of France."),
            "Italy": Passage("2", "Rome", "Rome is the capital of Italy."),
        }
        return [[p for key, p in facts.items() if key in q][:k] for q in queries]


def policy(prompt: str, ctx) -> str:
    """Searches for the country, answers with the first document's title; closed-book it guesses Paris."""
    done = prompt.split("Assistant: <think>")[-1]
    question = prompt.split("User:")[-1]
    country = "France" if "France" in question else "Italy"
    if "from your own knowledge" in prompt:
        return "I guess.</think><answer> Paris </answer>"
    if "Documents:" in prompt:  # naive RAG: the passages are in the prompt
        return f"Read it.</think><answer> {prompt.split('(1)Title: ')[1].split(' Text')[0]} </answer>"
    if "<|begin_of_documents|>" not in done:
        return f"Search. <|begin_of_query|> capital {country}<|end_of_query|>"
    return f"Found.</think>\n\n<answer> {done.split('(1)Title: ')[1].split(' Text')[0]} </answer>"


def test_load_a_benchmark_file_and_its_errors(tmp_path: Path) -> None:
    bench = load_qa_benchmark(str(write_jsonl(tmp_path / "qa.jsonl", QUESTIONS)))
    assert bench.name == "qa" and [e.id for e in bench.examples] == ["1", "2"]
    assert bench.examples[1].golds == ("Rome", "Roma")
    assert len(load_qa_benchmark(str(tmp_path / "qa.jsonl"), limit=1)) == 1
    write_jsonl(tmp_path / "bad.jsonl", [{"question": "Q?"}])
    with pytest.raises(ValueError, match=r"bad.jsonl:1: no gold answer in field 'answer'"):
        load_qa_benchmark(str(tmp_path / "bad.jsonl"))
    with pytest.raises(FileNotFoundError, match="neither a file nor one of"):
        load_qa_benchmark("nq")


def test_r1_searchers_eval_sets_by_name(shared_data: Path) -> None:
    sizes = {name: len(load_qa_benchmark(name, data_dir=shared_data)) for name in QA_BENCHMARKS}
    assert sizes == {"hotpotqa": 500, "2wiki": 500, "musique": 500, "bamboogle": 125}


def test_evaluate_runs_search_and_both_baselines(tmp_path: Path) -> None:
    bench = load_qa_benchmark(str(write_jsonl(tmp_path / "qa.jsonl", QUESTIONS)))
    retriever = CapitalRetriever()
    preds = tmp_path / "out" / "preds.jsonl"
    result = evaluate_qa(
        ScriptedBackend(policy), [bench], eval_rollout_config(), retriever=retriever, predictions=preds
    )
    b = result["benchmarks"]["qa"]
    assert (b["mode"], b["cover_em"], b["f1"], b["retrievals_per_question"], b["well_formed"]) == (
        "search",
        1.0,
        1.0,
        1.0,
        1.0,
    )
    closed, naive = b["modes"]["closed_book"], b["modes"]["naive_rag"]
    assert (closed["cover_em"], closed["retrievals_per_question"]) == (0.5, 0.0)
    assert (naive["cover_em"], naive["retrievals_per_question"]) == (1.0, 0.0)
    assert b["truncated"] == 0.0 and b["finish_reasons"] == {"answer": 2} and b["errors"] == 0
    # One retriever call for the two search queries of a wave, one for the two naive-RAG questions.
    assert retriever.calls == 2 and result["engine"]["tool_calls"] == 2
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert len(rows) == 6 and {r["mode"] for r in rows} == {"search", "closed_book", "naive_rag"}
    search = [r for r in rows if r["mode"] == "search"]
    assert search[0]["pred_ans"] == "Paris" and "<|begin_of_documents|>" in search[0]["gen_text_store"]
    # The predictions file scores back to the same figures with `rl score`'s defaults.
    rescored = summarize(score_records([(str(i), r) for i, r in enumerate(search)]))
    assert (rescored["cover_em"], rescored["retrievals_per_question"], rescored["well_formed"]) == (
        1.0,
        1.0,
        1.0,
    )
    assert "qa" in format_table(result) and result["average"]["search"]["cover_em"] == 1.0


def test_evaluate_needs_a_retriever_unless_closed_book(tmp_path: Path) -> None:
    bench = load_qa_benchmark(str(write_jsonl(tmp_path / "qa.jsonl", QUESTIONS)))
    with pytest.raises(ValueError, match="need a retriever"):
        evaluate_qa(ScriptedBackend(policy), [bench], eval_rollout_config())
    result = evaluate_qa(
        ScriptedBackend(policy), [bench], eval_rollout_config(), QAEvalConfig(modes=("closed_book",))
    )
    assert result["benchmarks"]["qa"]["cover_em"] == 0.5
    with pytest.raises(ValueError, match="modes must be some of"):
        QAEvalConfig(modes=("open_book",))


def scripted_judge(prompt: str, ctx) -> str:
    """Says True when the predicted answer is one of the golden answers, ignoring case."""
    gold = prompt.split("Golden answer: ")[1].split("\n")[0]
    pred = prompt.split("Predicted answer: ")[1].split("\n")[0]
    return " True" if pred.lower() in [g.lower() for g in gold.split(" | ")] else " False."


def test_the_llm_judge_grades_with_its_documented_prompt() -> None:
    backend = ScriptedBackend(scripted_judge)
    judge = LLMJudge(backend, batch_size=2)
    verdicts = judge([("Q1", ["Paris"], "paris"), ("Q2", ["Rome", "Roma"], "Milan"), ("Q3", ["x"], None)])
    assert [v.correct for v in verdicts] == [True, False, False]
    assert backend.calls == 1 and verdicts[2].reply == ""  # an empty prediction is not sent
    assert (
        parse_verdict("**Correct.**") is True
        and parse_verdict("no") is False
        and parse_verdict("maybe") is None
    )
    with pytest.raises(ValueError, match="must contain {prediction}"):
        LLMJudge(backend, template=JUDGE_TEMPLATE.replace("{prediction}", ""))


def test_evaluate_with_a_judge(tmp_path: Path) -> None:
    bench = load_qa_benchmark(str(write_jsonl(tmp_path / "qa.jsonl", QUESTIONS)))
    result = evaluate_qa(
        ScriptedBackend(policy),
        [bench],
        eval_rollout_config(),
        QAEvalConfig(modes=("closed_book",)),
        judge=LLMJudge(ScriptedBackend(scripted_judge)),
    )
    assert result["benchmarks"]["qa"]["judge"] == 0.5


def test_rl_evaluate_command_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("bm25s")
    from retrosearch.cli import main

    bench = write_jsonl(tmp_path / "qa.jsonl", QUESTIONS)
    corpus = write_jsonl(
        tmp_path / "corpus.jsonl",
        [
            {"id": "1", "title": "Paris", "text": "Paris is the capital of France."},
            {"id": "2", "title": "Rome", "text": "Rome is the capital of Italy."},
            {"id": "3", "title": "Lyon", "text": "Lyon is a city on the Rhone."},
        ],
    )
    script = tmp_path / "model.json"
    script.write_text(
        json.dumps(
            {
                "Assistant: <think>": "Search. <|begin_of_query|> capital France<|end_of_query|>",
                "<|end_of_documents|>\n\n": "Found.</think>\n\n<answer> Paris </answer>",
            }
        )
    )
    out = tmp_path / "eval.json"
    argv = [
        "rl",
        "evaluate",
        "--backend",
        "scripted",
        "--model",
        str(script),
        "--corpus",
        str(corpus),
        "--benchmark",
        str(bench),
        "--output",
        str(out),
        "--no-progress",
        "--top-k",
        "1",
    ]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    b = result["benchmarks"]["qa"]
    assert {"cover_em", "f1", "retrievals_per_question"} <= set(b) and b["cover_em"] == 0.5
    assert result["rollout"]["top_k"] == 1 and result["rollout"]["temperature"] == 0.0
    preds = Path(result["predictions"])
    assert preds.name == "eval.predictions.jsonl" and len(preds.read_text().splitlines()) == 6
    assert main(["rl", "score", "--predictions", str(preds), "--output", str(tmp_path / "s.json")]) == 0
    scored = json.loads((tmp_path / "s.json").read_text())["files"][0]
    assert scored["n"] == 6


def test_rl_score_fields_are_settable(tmp_path: Path, capsys) -> None:
    from retrosearch.cli import main

    path = write_jsonl(
        tmp_path / "p.jsonl",
        [{"prediction": "Paris", "gold": ["paris"]}, {"prediction": None, "gold": "Rome"}],
    )
    assert (
        main(
            ["rl", "score", "--predictions", str(path), "--pred-field", "prediction", "--gold-field", "gold"]
        )
        == 0
    )
    assert "50.0" in capsys.readouterr().out
    assert (
        main(["rl", "score", "--predictions", str(path)]) == 1
    )  # no `answer` field: an error naming the row
    assert "p.jsonl:1: no gold answer field 'answer'" in capsys.readouterr().err


def test_score_r1_searchers_published_outputs(shared_data: Path) -> None:
    scores = score_file(shared_data / "qa" / "r1searcher" / "outputs" / "bamboogle_qwen.jsonl")
    # The recorded GPT-4o-mini verdicts and the documents blocks in the texts are facts of the file.
    assert scores["n"] == 125 and scores["judge"] == pytest.approx(0.544)
    assert scores["retrievals_per_question"] == pytest.approx(248 / 125) and scores["well_formed"] == 1.0
    assert 0.4 < scores["cover_em"] < 0.6
