"""`retrosearch.evaluate`: pass@1 over n samples, thinking length, the benchmark loaders, JSON, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retrosearch.backends import ScriptedBackend
from retrosearch.backends.scripted import ScriptContext
from retrosearch.evaluate import (
    BENCHMARKS,
    Benchmark,
    EvalConfig,
    EvalProblem,
    evaluate,
    format_table,
    load_benchmark,
)

# Four problems; the fake model answers the first three right. The thinking of problem i is i + 1 words
# ("w w w" is 5 scripted tokens: words and the spaces between them), so thinking lengths are 1, 3, 5, 7.
PROBLEMS = [EvalProblem(f"p{i}", f"What is {i} + {i}?", str(2 * i)) for i in range(4)]
BENCH = Benchmark("four", PROBLEMS, "test")


def _answer(i: int, right: bool = True) -> str:
    thinking = " ".join(["w"] * (i + 1))
    value = 2 * i if right else 2 * i + 1
    return f"{thinking}\n</think>\n\nThe answer is \\boxed{{{value}}}."


def _problem_index(prompt: str) -> int:
    # The scripted backend has no chat template: the prompt is "question\n<think>\n".
    assert prompt.endswith("?\n<think>\n"), prompt
    return int(prompt.split("What is ")[1].split(" +")[0])


def three_of_four(prompt: str, ctx: ScriptContext) -> str:
    i = _problem_index(prompt)
    return _answer(i, right=i != 3)


def test_accuracy_and_mean_thinking_tokens_are_exact() -> None:
    res = evaluate(ScriptedBackend(three_of_four), [BENCH], EvalConfig(k=1, temperature=0))
    s = res["benchmarks"]["four"]
    assert s["n_problems"] == 4 and s["n_samples"] == 4
    assert s["accuracy"] == 0.75 and s["pass_at_k"] == 0.75
    assert s["mean_thinking_tokens"] == (1 + 3 + 5 + 7) / 4
    assert s["mean_thinking_tokens_correct"] == (1 + 3 + 5) / 3
    assert s["truncated_share"] == 0.0 and s["no_answer_share"] == 0.0
    recs = res["problems"]["four"]
    assert [r["accuracy"] for r in recs] == [1.0, 1.0, 1.0, 0.0]
    assert recs[3]["samples"][0]["answer"] == "7" and recs[3]["gold"] == "6"
    assert recs[0]["samples"][0]["text"] == _answer(0)
    # One request of k samples per problem, all problems in one wave.
    assert res["engine"]["waves"] == 1 and res["engine"]["requests"] == 4


def test_pass_at_1_is_averaged_over_k_samples() -> None:
    # Sample j of problem i is right when j < i: per-problem shares 0, 1/4, 2/4, 3/4 of k = 4.
    def script(prompt: str, ctx: ScriptContext) -> str:
        i = _problem_index(prompt)
        return _answer(i, right=ctx.sample < i)

    res = evaluate(ScriptedBackend(script), [BENCH], EvalConfig(k=4, temperature=0.7, seed=3))
    s = res["benchmarks"]["four"]
    assert s["n_samples"] == 16
    assert [r["accuracy"] for r in res["problems"]["four"]] == [0.0, 0.25, 0.5, 0.75]
    assert s["accuracy"] == pytest.approx(1.5 / 4)
    assert s["pass_at_k"] == 0.75
    assert s["mean_thinking_tokens"] == 4.0  # every sample of problem i thinks 2i + 1 tokens
    assert s["mean_thinking_tokens_correct"] == pytest.approx((3 * 1 + 5 * 2 + 7 * 3) / 6)


def test_cut_off_samples_are_truncated_and_graded_on_their_whole_text() -> None:
    def script(prompt: str, ctx: ScriptContext) -> str:
        return "one two three four five six seven eight \\boxed{0} nine"

    res = evaluate(ScriptedBackend(script), [BENCH], EvalConfig(k=2, max_tokens=6, limit=2))
    s = res["benchmarks"]["four"]
    assert s["n_problems"] == 2 and s["truncated_share"] == 1.0
    sample = res["problems"]["four"][0]["samples"][0]
    assert sample["finish_reason"] == "length" and sample["generated_tokens"] == 6
    assert sample["thinking_tokens"] == 5  # "one two three" (the trailing space is stripped)
    assert s["accuracy"] == 0.0 and s["no_answer_share"] == 1.0

    # Never closing the thinking but boxing the right answer counts (graded like Retro-Search grades).
    res = evaluate(ScriptedBackend(lambda p, c: "so \\boxed{0}"), [BENCH], EvalConfig(k=1, limit=1))
    s = res["benchmarks"]["four"]
    assert s["accuracy"] == 1.0 and s["truncated_share"] == 1.0


def test_json_output_and_table(tmp_path: Path) -> None:
    out = tmp_path / "eval" / "result.json"
    res = evaluate(ScriptedBackend(three_of_four), [BENCH], EvalConfig(k=2, save_samples=False), output=out)
    data = json.loads(out.read_text())
    assert data["benchmarks"]["four"]["accuracy"] == 0.75
    assert data["config"]["n"] == 2 and data["backend"] == "scripted"
    assert len(data["problems"]["four"]) == 4
    assert "text" not in data["problems"]["four"][0]["samples"][0]
    table = format_table(res)
    assert table.splitlines()[0].split()[:4] == ["benchmark", "problems", "k", "pass@1"]
    assert table.splitlines()[2].split()[:6] == ["four", "4", "2", "0.750", "0.750", "4.0"]


def test_several_benchmarks_share_the_waves_and_average(tmp_path: Path) -> None:
    other = Benchmark("two", PROBLEMS[:2], "test")
    res = evaluate(ScriptedBackend(three_of_four), [BENCH, other], EvalConfig(k=1))
    assert res["engine"]["waves"] == 1 and res["engine"]["requests"] == 6
    assert res["benchmarks"]["two"]["accuracy"] == 1.0
    assert res["average"]["accuracy"] == pytest.approx((0.75 + 1.0) / 2)
    assert "average" in format_table(res)
    with pytest.raises(ValueError, match="more than once"):
        evaluate(ScriptedBackend(three_of_four), [BENCH, BENCH], EvalConfig(k=1))


def test_chat_template_and_think_tag_make_the_prompt() -> None:
    class ChatBackend(ScriptedBackend):
        def apply_chat_template(self, messages, add_generation_prompt=True):
            return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages) + "<assistant>"

    seen = []

    def script(prompt: str, ctx: ScriptContext) -> str:
        seen.append(prompt)
        return _answer(0)

    cfg = EvalConfig(k=1, limit=1, system_prompt="S", question_template="{question} Box it.")
    evaluate(ChatBackend(script), [BENCH], cfg)
    assert seen == ["<system>S</system><user>What is 0 + 0? Box it.</user><assistant><think>\n"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("n", 0), ("max_tokens", 0), ("temperature", -0.1), ("top_p", 0), ("limit", 0), ("verifier", "nope"),
     ("question_template", "no placeholder")],
)  # fmt: skip
def test_bad_config_values_are_rejected_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"EvalConfig\.{field}"):
        EvalConfig(**{field: value})


# --------------------------------------------------------------------------- loaders
def test_toy_benchmark_is_the_held_out_split() -> None:
    b = load_benchmark("toy", limit=5)
    assert b.name == "toy" and len(b.problems) == 5
    from retrosearch.toy import make_problems

    probs = make_problems(5, seed=0, split="test")
    assert all(p.split == "test" for p in probs)
    assert [(e.question, e.gold) for e in b.problems] == [(p.question, str(p.answer)) for p in probs]
    assert load_benchmark("toy", limit=5) == b  # seeded
    assert len(load_benchmark("toy", toy_problems=7).problems) == 7


def test_jsonl_file_benchmark_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "mine.jsonl"
    f.write_text(
        json.dumps({"problem": "1+1?", "answer": 2.0})
        + "\n"
        + json.dumps({"question": "2+2?", "final_answer": ["4"], "id": 7})
        + "\n"
    )
    b = load_benchmark(f)
    assert b.name == "mine"
    assert b.problems == [EvalProblem("mine.jsonl:1", "1+1?", "2"), EvalProblem("7", "2+2?", "4")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"problem": "1+1?", "solution": "2"}) + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: expected the gold answer"):
        load_benchmark(bad)
    with pytest.raises(ValueError, match="unknown benchmark 'math5000'"):
        load_benchmark("math5000")
    with pytest.raises(FileNotFoundError, match="nothere.jsonl does not exist"):
        load_benchmark(tmp_path / "nothere.jsonl")
    with pytest.raises(FileNotFoundError, match="math500.jsonl not found"):
        load_benchmark("math500", data_dir=tmp_path)


def test_math_benchmarks_load_with_their_fields(shared_data: Path) -> None:
    expected = {
        # name: (problems, rows without a gold answer, first id, first gold)
        "math500": (500, 0, "test/precalculus/807.json", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        "aime24": (30, 0, "60", "204"),
        "aime25": (30, 0, "90", "70"),
        "amc23": (40, 0, "0", "27"),  # stored as the float 27.0
        "gsm8k": (1319, 0, "0", "18"),  # the text after "####"
        "olympiadbench": (675, 0, "1606", "2"),  # final_answer is a one-element list
        "gaokao2023en": (383, 2, "2023BJ_2023年新高考北京卷-数学/01Q.en", "$\\{x|-2\\leq x < 1\\}$"),
    }
    assert set(expected) == set(BENCHMARKS)
    for name, (n, n_skipped, first_id, first_gold) in expected.items():
        b = load_benchmark(name, data_dir=shared_data)
        assert (len(b.problems), len(b.skipped)) == (n, n_skipped), name
        assert (b.problems[0].id, b.problems[0].gold) == (first_id, first_gold), name
        assert all(p.question.strip() and p.gold.strip() for p in b.problems), name
    assert len(load_benchmark("gsm8k", data_dir=shared_data, limit=50).problems) == 50
    # The gold answers grade a boxed copy of themselves as correct.
    from retrosearch.verify import get_verifier

    verify = get_verifier("math")
    for name in BENCHMARKS:
        for p in load_benchmark(name, data_dir=shared_data, limit=3).problems:
            assert verify(f"\\boxed{{{p.gold}}}", p.gold).correct, (name, p.gold)


# --------------------------------------------------------------------------- command line
def test_cli_evaluate_scripted(tmp_path: Path, capsys) -> None:
    from retrosearch.cli import main

    model = tmp_path / "model.json"
    model.write_text(
        json.dumps({f"What is {i} + {i}?\n<think>\n": _answer(i, right=i != 3) for i in range(4)})
    )
    bench = tmp_path / "four.jsonl"
    bench.write_text("".join(json.dumps({"question": p.question, "answer": p.gold}) + "\n" for p in PROBLEMS))
    out = tmp_path / "eval.json"
    code = main(
        ["evaluate", "--backend", "scripted", "--model", str(model), "--benchmark", str(bench), "--benchmark",
         "toy", "--k", "2", "--limit", "4", "--output", str(out), "--no-progress"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "four" in printed and "0.750" in printed and "toy" in printed
    data = json.loads(out.read_text())
    assert data["benchmarks"]["four"]["accuracy"] == 0.75
    assert data["benchmarks"]["toy"]["n_problems"] == 4 and data["benchmarks"]["toy"]["accuracy"] == 0.0
    assert data["model"] == str(model) and data["config"]["limit"] == 4
    with pytest.raises(SystemExit):
        main(["evaluate", "--backend", "scripted", "--model", str(model), "--benchmark", "toy", "--k", "0"])
    assert "EvalConfig.n must be" in capsys.readouterr().err


def test_vllm_names_with_the_old_spelling_accepted(tmp_path: Path) -> None:
    from retrosearch.cli.evaluate import add_parser, config_from_args

    assert EvalConfig(k=3) == EvalConfig(n=3) and EvalConfig(n=3).k == 3
    import argparse

    sub = argparse.ArgumentParser().add_subparsers()
    p = add_parser(sub)
    base = ["--backend", "scripted", "--model", "m.json", "--benchmark", "toy"]
    assert config_from_args(p.parse_args(base + ["--k", "5"])).n == 5
    assert config_from_args(p.parse_args(base + ["--n", "6", "--max-tokens", "7"])) == EvalConfig(
        n=6, max_tokens=7
    )
    y = tmp_path / "e.yaml"
    y.write_text("k: 2\nmax_tokens: 9\n")
    assert config_from_args(p.parse_args(base + ["--config", str(y)])) == EvalConfig(n=2, max_tokens=9)


def test_seeds_come_from_the_shared_derivation() -> None:
    from retrosearch.config import derive_seed

    seen = []

    def record(prompt: str, ctx: ScriptContext) -> str:
        seen.append(ctx.request.seed)
        return _answer(_problem_index(prompt))

    evaluate(ScriptedBackend(record), [BENCH], EvalConfig(n=1, seed=7, limit=2))
    assert seen == [derive_seed(7, "four", "p0"), derive_seed(7, "four", "p1")]


@pytest.mark.slow
def test_smoke_real_smollm2_on_two_toy_problems(smollm2_dir: Path) -> None:
    from retrosearch.backends.hf import TransformersBackend

    backend = TransformersBackend(smollm2_dir, device="cpu")
    res = evaluate(backend, ["toy"], EvalConfig(k=2, limit=2, max_tokens=8, temperature=0.7))
    s = res["benchmarks"]["toy"]
    assert s["n_problems"] == 2 and s["n_samples"] == 4
    samples = [x for r in res["problems"]["toy"] for x in r["samples"]]
    # 8 tokens cannot close the thinking: every sample is cut off, and its thinking is what it wrote.
    assert all(x["generated_tokens"] == 8 and x["truncated"] for x in samples)
    assert all(0 < x["thinking_tokens"] <= 9 for x in samples)
    assert s["accuracy"] == 0.0
