"""The search-rollout program on the shared engine: a scripted policy that queries, a counting fake retriever."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrosearch.backends.scripted import ScriptedBackend
from retrosearch.engine import Engine, ProgramError
from retrosearch.rl.protocols import R1_SEARCHER, SEARCH_R1
from retrosearch.rl.retrievers.base import Passage
from retrosearch.rl.rollout import (
    SearchGroup,
    SearchRolloutConfig,
    retrieval_tool,
    rollout_fields,
    search_rollout,
)

TOY_TOKENIZER = (
    Path(__file__).resolve().parents[1] / "retrosearch" / "assets" / "toy" / "toy-base" / "tokenizer.json"
)
QUESTION = "What is the capital of France?"


class CountingRetriever:
    """Passages `<query> #i` titled `T<i>`; records every call's queries."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def retrieve(self, queries: list[str], k: int) -> list[list[Passage]]:
        self.calls.append(list(queries))
        return [[Passage(f"{q}-{i}", f"T{i}", f"{q} #{i}") for i in range(k)] for q in queries]


class Recording:
    """A backend that records every request it is sent."""

    def __init__(self, inner: ScriptedBackend) -> None:
        self.inner, self.name, self.requests = inner, inner.name, []

    def tokenize(self, text: str) -> list[int]:
        return self.inner.tokenize(text)

    def decode(self, ids: list[int]) -> str:
        return self.inner.decode(ids)

    def generate(self, requests):
        self.requests.extend(requests)
        return self.inner.generate(requests)


def completion(prompt: str, marker: str = "Assistant: <think>") -> str:
    """What the policy wrote so far: the prompt after its instructions."""
    return prompt.split(marker)[-1]


def r1_policy(prompt: str, ctx) -> str:
    """Queries once, then answers with the first document's title; the answer segment starts with "So"."""
    done = completion(prompt)
    if "<|begin_of_documents|>" not in done:
        return " I should search. <|begin_of_query|> capital France<|end_of_query|> never seen"
    return "So the answer is T0.</think>\n\n<answer> T0 </answer> never seen"


def run(policy, cfg: SearchRolloutConfig, questions=(QUESTION,), tokenizer=None, k: int | None = None, **kw):
    backend = Recording(ScriptedBackend(policy, tokenizer=tokenizer))
    retriever = CountingRetriever()
    engine = Engine(backend, tools={"retrieve": retrieval_tool(retriever, k or cfg.top_k)})
    groups = engine.run([search_rollout(q, backend, cfg, index=i, **kw) for i, q in enumerate(questions)])
    return groups, retriever, backend, engine


def test_a_wave_of_queries_goes_to_the_retriever_in_one_call() -> None:
    cfg = SearchRolloutConfig(num_generations=3, top_k=2)
    groups, retriever, backend, engine = run(r1_policy, cfg, questions=[QUESTION, "Where is Lyon?"])
    assert [len(c) for c in retriever.calls] == [6]  # 2 prompts x 3 samples, one call
    assert engine.stats.tool_calls == 1 and engine.stats.backend_calls == 2
    for g in groups:
        assert isinstance(g, SearchGroup) and len(g.rollouts) == 3
        for r in g.rollouts:
            assert (r.answer, r.finish_reason, r.retrievals, r.queries) == (
                "T0",
                "answer",
                1,
                ["capital France"],
            )
            assert r.text.endswith("</answer>") and "never seen" not in r.text
            assert r.passage_ids == [["capital France-0", "capital France-1"]]


def test_the_tree_holds_the_group_with_environment_nodes_between_model_nodes() -> None:
    (group,), *_ = run(r1_policy, SearchRolloutConfig(num_generations=2))
    tree = group.tree
    assert len(tree.root.children) == 2
    for r in group.rollouts:
        assert [n.origin for n in tree.path(r.node)] == ["prompt", "rollout", "environment", "rollout"]
        env = tree.path(r.node)[2]
        assert env.text == R1_SEARCHER.format_documents(
            [Passage(f"capital France-{i}", f"T{i}", f"capital France #{i}") for i in range(3)]
        )
        assert env.meta == {"tool": "retrieve", "query": "capital France"}


def _exact_ids_hold(group: SearchGroup, backend: Recording, tok) -> None:
    prompt_ids = tok.encode(group.prompt, add_special_tokens=False).ids
    for r in group.rollouts:
        assert r.prompt_ids == prompt_ids
        path = group.tree.path(r.node)[1:]
        # Every span's own ids, concatenated: documents tokenized on their own, sampled ids as sampled.
        assert r.completion_ids == [i for n in path for i in n.token_ids]
        for n in path:
            if n.origin == "environment":
                assert n.token_ids == tok.encode(n.text, add_special_tokens=False).ids
        # The joined text re-tokenized differs: a tokenizer that merges across span boundaries would break it.
        assert r.completion_ids != tok.encode(r.text, add_special_tokens=False).ids
        # env_mask is 0 on exactly the environment ids.
        assert len(r.env_mask) == len(r.completion_ids) == len(r.logprobs)
        zeros = [i for n in path for i in ([0] if n.origin == "environment" else [1]) * len(n.token_ids)]
        assert r.env_mask == zeros and 0 in zeros
        env_ids = [t for t, m in zip(r.completion_ids, r.env_mask) if m == 0]
        assert tok.decode(env_ids, skip_special_tokens=False) == "".join(
            n.text for n in path if n.origin == "environment"
        )
        assert all(lp == 0.0 for lp, m in zip(r.logprobs, r.env_mask) if m == 0)
        assert all(lp == -0.1 for lp, m in zip(r.logprobs, r.env_mask) if m == 1)
    # What the model was sent is exactly the tree's ids: the prompt, then every span of the path so far.
    later = [q for q in backend.requests if q.prompt_ids != tuple(prompt_ids)]
    assert later
    for req in later:
        assert list(req.prompt_ids[: len(prompt_ids)]) == prompt_ids


def test_exact_ids_with_a_merging_tokenizer_search_r1_retry() -> None:
    """Search-R1's note after a malformed query ends with a newline; the model's next segment starts with one:
    the toy BPE merges "\\n" + "\\n" when they are tokenized together."""
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer.from_file(str(TOY_TOKENIZER))

    def policy(prompt: str, ctx) -> str:
        done = prompt.split("Question: ")[-1]
        if "invalid" not in done:
            return "<think>hmm</think> oops </search>"
        if "<information>" not in done:
            return "\n<search> capital France </search>"
        return "<think>T0</think><answer> T0 </answer>"

    cfg = SearchRolloutConfig(protocol="search-r1", num_generations=2, top_k=1)
    (group,), retriever, backend, _ = run(policy, cfg, tokenizer=tok)
    for r in group.rollouts:
        assert (r.invalid_queries, r.retrievals, r.answer, r.finish_reason) == (1, 1, "T0", "answer")
        assert SEARCH_R1.invalid_query_message in r.text
    _exact_ids_hold(group, backend, tok)


def test_exact_ids_with_smollm2_tokenizer_r1_searcher(smollm2_dir) -> None:
    """SmolLM2's BPE tokenizes R1-Searcher's documents block's "\\n\\n" differently when text follows it."""
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer.from_file(str(smollm2_dir / "tokenizer.json"))
    (group,), _, backend, _ = run(r1_policy, SearchRolloutConfig(num_generations=2), tokenizer=tok)
    _exact_ids_hold(group, backend, tok)


def test_max_retrievals_then_r1_searcher_gives_up() -> None:
    def greedy_searcher(prompt: str, ctx) -> str:
        n = completion(prompt).count("<|end_of_documents|>")
        return f"more <|begin_of_query|> q{n}<|end_of_query|>"

    (group,), retriever, *_ = run(greedy_searcher, SearchRolloutConfig(max_retrievals=2))
    (r,) = group.rollouts
    assert (r.retrievals, r.queries, r.finish_reason, r.answer) == (
        2,
        ["q0", "q1"],
        "max_retrievals",
        "I don't know.",
    )
    assert len(retriever.calls) == 2 and r.text.endswith("q2<|end_of_query|>")


def test_max_retrievals_then_r1_searcher_plus_answers_from_memory() -> None:
    def policy(prompt: str, ctx) -> str:
        done = completion(prompt)
        if "No more searches" in done:
            return "I recall <internal>Paris</internal></think><answer> Paris </answer>"
        return f"<external> q{done.count('</document>')} </external>"

    (group,), retriever, backend, _ = run(
        policy, SearchRolloutConfig(protocol="r1-searcher++", max_retrievals=1)
    )
    (r,) = group.rollouts
    assert (r.retrievals, r.finish_reason, r.answer) == (1, "answer", "Paris")
    assert r.text.count("<document>") == 2  # the documents, then the note
    assert "</external>" not in backend.requests[-1].stop  # no more searching once told


def test_an_empty_query_ends_an_r1_searcher_rollout() -> None:
    (group,), retriever, *_ = run(
        lambda p, c: "<|begin_of_query|> '' <|end_of_query|>", SearchRolloutConfig()
    )
    (r,) = group.rollouts
    assert (r.finish_reason, r.answer, r.invalid_queries, r.retrievals) == (
        "invalid_query",
        "I don't know.",
        1,
        0,
    )
    assert retriever.calls == []


def test_a_token_cap_is_truncation() -> None:
    def talker(prompt: str, ctx) -> str:
        return " word" * 50

    (group,), *_ = run(talker, SearchRolloutConfig(max_tokens_per_turn=8))
    assert group.rollouts[0].finish_reason == "length" and group.rollouts[0].truncated
    (group,), *_ = run(r1_policy, SearchRolloutConfig(max_completion_length=30, top_k=3))
    (r,) = group.rollouts
    assert r.truncated and r.retrievals == 1 and len(r.completion_ids) >= 30


def test_closed_book_and_naive_rag_baselines() -> None:
    def answerer(prompt: str, ctx) -> str:
        return "hmm</think><answer> Paris </answer>"

    cfg = SearchRolloutConfig(top_k=2)
    (group,), retriever, backend, _ = run(answerer, cfg, mode="closed_book")
    assert retriever.calls == [] and "<|begin_of_query|>" not in group.prompt
    assert backend.requests[0].stop == ("</answer>",)
    (group,), retriever, backend, _ = run(answerer, cfg, mode="naive_rag")
    assert retriever.calls == [[QUESTION]]
    assert f"(2)Title: T1 Text: {QUESTION} #1" in group.prompt and group.prompt.endswith("Assistant: <think>")
    assert group.rollouts[0].answer == "Paris" and group.rollouts[0].retrievals == 0


def test_seeded_sampling_repeats_and_samples_differ() -> None:
    def sampler(prompt: str, ctx) -> list[str]:
        return [f"</think><answer> {w} </answer>" for w in ("a", "b", "c", "d", "e", "f")]

    cfg = SearchRolloutConfig(num_generations=4, seed=3)
    first = [r.answer for r in run(sampler, cfg)[0][0].rollouts]
    again = [r.answer for r in run(sampler, cfg)[0][0].rollouts]
    assert first == again and len(set(first)) > 1


def test_a_backend_error_and_a_failing_retriever() -> None:
    class Failing(ScriptedBackend):
        def _sample(self, req, j):
            from retrosearch.types import Completion

            return Completion("", [], finish_reason="error", error="server down")

    backend = Failing(r1_policy)
    (group,) = Engine(backend, tools={"retrieve": lambda qs: 1 / 0}).run(
        [search_rollout(QUESTION, backend, SearchRolloutConfig())]
    )
    assert (group.rollouts[0].finish_reason, group.rollouts[0].error) == ("error", "server down")
    backend = ScriptedBackend(r1_policy)
    (failed,) = Engine(backend, tools={"retrieve": lambda qs: 1 / 0}).run(
        [search_rollout(QUESTION, backend, SearchRolloutConfig())]
    )
    assert isinstance(failed, ProgramError) and "ZeroDivisionError" in str(failed)


def test_rollout_fields_are_what_trl_reads() -> None:
    (group,), *_ = run(r1_policy, SearchRolloutConfig(num_generations=2))
    fields = rollout_fields(group.rollouts)
    assert set(fields) >= {
        "prompt_ids",
        "completion_ids",
        "logprobs",
        "env_mask",
        "retrievals",
        "final_answer",
    }
    assert fields["retrievals"] == [1, 1] and fields["final_answer"] == ["T0", "T0"]
    assert [len(m) for m in fields["env_mask"]] == [len(c) for c in fields["completion_ids"]]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"protocol": "r2"}, "protocol must be one of"),
        ({"num_generations": 0}, "num_generations must be >= 1"),
        ({"top_p": 0.0}, "top_p must be in"),
        ({"max_retrievals": -1}, "max_retrievals must be >= 0"),
        ({"logprobs_mode": "soft"}, "logprobs_mode must be one of"),
    ],
)
def test_config_is_validated_up_front(kw, message) -> None:
    with pytest.raises(ValueError, match=message):
        SearchRolloutConfig(**kw)
