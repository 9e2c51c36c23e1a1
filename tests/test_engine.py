"""The engine: programs yield requests, one backend call per wave, every span recorded in the tree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import retrosearch
from retrosearch.backends import GenerationRequest, ScriptedBackend
from retrosearch.engine import Engine, Generate, ProgramError
from retrosearch.tree import SearchTree

TOY_TOKENIZER = Path(retrosearch.__file__).parent / "assets" / "toy" / "toy-base" / "tokenizer.json"


def toy_tokenizer():
    """The shipped toy model's byte-level BPE: it merges `"\n" + "\n"` into one token."""
    tokenizers = pytest.importorskip("tokenizers")
    return tokenizers.Tokenizer.from_file(str(TOY_TOKENIZER))


class Recording:
    """Wraps a backend and keeps every request it was sent."""

    def __init__(self, backend):
        self.backend, self.name, self.requests = backend, backend.name, []

    def generate(self, requests):
        self.requests.extend(requests)
        return self.backend.generate(requests)

    def tokenize(self, text):
        return self.backend.tokenize(text)


def calculator_model(prompt: str, ctx) -> str:
    """A fake model that asks a calculator, reads its result, then answers."""
    q = re.search(r"Q: (\d+) \* (\d+)\?", prompt)
    assert q is not None
    if "<result>" not in prompt:
        return f"I will compute it. <calc>{q.group(1)}*{q.group(2)}</calc>"
    result = re.findall(r"<result>(\d+)</result>", prompt)[-1]
    return f" So the answer is {result}."


def calculator(expression: str) -> str:
    a, b = expression.split("*")
    return str(int(a) * int(b))


def tool_program(tree: SearchTree):
    """Generate until a tool call, run the tool, append its output as an environment span, continue."""
    node = tree.root
    for _ in range(4):
        (node,) = yield Generate(node, stop=("</calc>",), max_tokens=64, logprobs=True)
        call = re.search(r"<calc>(.*?)</calc>$", node.text)
        if call is None:
            return node
        node = tree.add(node, f"\n<result>{calculator(call.group(1))}</result>", "environment")
    return node


def test_calculator_tool_program_records_environment_spans_and_masks():
    backend = ScriptedBackend(calculator_model)
    trees = [SearchTree(f"Q: {a} * {b}? ", tokenizer=backend) for a, b in [(12, 7), (3, 5), (9, 9)]]
    engine = Engine(backend)
    leaves = engine.run([tool_program(t) for t in trees])

    for tree, leaf, want in zip(trees, leaves, ["84", "15", "81"]):
        assert tree.text(leaf).endswith(f"So the answer is {want}.")
        origins = [n.origin for n in tree.path(leaf)]
        assert origins == ["prompt", "rollout", "environment", "rollout"]
        ids, mask, lps = tree.token_ids(leaf), tree.env_mask(leaf), tree.logprobs(leaf)
        assert len(ids) == len(mask) == len(lps)
        env = tree.path(leaf)[2]
        start = sum(n.token_count for n in tree.path(leaf)[:2])
        # Exactly the tool's tokens are masked out, and they carry no sampling log-prob.
        assert mask[start : start + env.token_count] == [0] * env.token_count
        assert sum(mask) == len(mask) - env.token_count
        assert all(lp == 0.0 for lp in lps[start : start + env.token_count])
        assert backend.decode(ids) == tree.text(leaf)
    # Three programs, two generation rounds each: two waves, two backend calls, six requests.
    assert (engine.stats.waves, engine.stats.backend_calls, engine.stats.requests) == (2, 2, 6)


def test_backend_calls_grow_with_depth_not_with_the_number_of_programs():
    backend = ScriptedBackend(lambda p, c: "x")

    def deep(tree: SearchTree, depth: int):
        node = tree.root
        for _ in range(depth):
            (node,) = yield Generate(node, max_tokens=4)
        return depth

    for n in (1, 10, 100):
        engine = Engine(backend)
        assert engine.run([deep(SearchTree("p"), 3) for _ in range(n)]) == [3] * n
        assert engine.stats.backend_calls == 3
        assert engine.stats.requests == 3 * n


def test_results_come_back_in_input_order_even_when_programs_finish_out_of_order():
    backend = ScriptedBackend(lambda p, c: "y")

    def prog(tree: SearchTree, k: int):
        node = tree.root
        for _ in range(k):
            (node,) = yield Generate(node)
        return k

    engine = Engine(backend, max_active=2)
    assert engine.run([prog(SearchTree("p"), k) for k in (3, 0, 2, 1)]) == [3, 0, 2, 1]
    finished = [i for i, _ in Engine(backend).run_iter([prog(SearchTree("p"), k) for k in (3, 0, 2, 1)])]
    assert finished == [1, 3, 2, 0]


def test_a_failing_program_does_not_stop_the_batch():
    backend = ScriptedBackend(lambda p, c: "z")

    def ok(tree):
        (node,) = yield Generate(tree.root)
        return node.text

    def bad(tree):
        yield Generate(tree.root)
        raise RuntimeError("boom")

    def wrong_yield(tree):
        yield "not a request"

    out = Engine(backend).run([ok(SearchTree("a")), bad(SearchTree("b")), wrong_yield(SearchTree("c"))])
    assert out[0] == "z"
    assert isinstance(out[1], ProgramError) and "boom" in str(out[1])
    assert isinstance(out[2], ProgramError) and "Generate" in str(out[2])
    with pytest.raises(RuntimeError, match="boom"):
        Engine(backend).run([bad(SearchTree("b"))], return_exceptions=False)


def test_a_list_request_is_answered_with_a_list_and_samples_are_children():
    backend = ScriptedBackend(lambda p, c: ["a", "b", "c"])

    def prog(tree):
        firsts = yield Generate(tree.root, n=3, temperature=1.0, seed=1)
        pairs = yield [Generate(f, n=2, seed=2) for f in firsts]
        empty = yield []
        return firsts, pairs, empty

    tree = SearchTree("p")
    (res,) = Engine(backend).run([prog(tree)])
    firsts, pairs, empty = res
    assert len(firsts) == 3 and [len(p) for p in pairs] == [2, 2, 2] and empty == []
    assert tree.root.children == [f.id for f in firsts]
    assert all(n.origin == "rollout" and n.meta["sample"] in (0, 1, 2) for n in tree.nodes[1:])


def test_scripted_backend_applies_ban_stop_and_length_and_repeats_with_a_seed():
    backend = ScriptedBackend({"go": ["Wait, no.", "Sure.\n\nMore text here."]})
    [[c]] = backend.generate([GenerationRequest("go", banned_words=("Wait",), stop=("\n\n",), temperature=0)])
    assert (c.text, c.finish_reason, c.stop_reason) == ("Sure.\n\n", "stop", "\n\n")
    [[c]] = backend.generate([GenerationRequest("go", max_tokens=2, temperature=0)])
    assert (c.text, c.finish_reason) == ("Wait,", "length")
    many = backend.generate([GenerationRequest("go", n=8, seed=3)])[0]
    again = backend.generate([GenerationRequest("go", n=8, seed=3)])[0]
    assert [c.text for c in many] == [c.text for c in again]
    assert len({c.text for c in many}) == 2  # both candidates get drawn at temperature 1


# --------------------------------------------------------------------------- exact ids
def answer_after_tool(prompt: str, ctx) -> str:
    return " done." if prompt.endswith("B") else "A\n"


def test_requests_carry_the_trees_ids_not_the_joined_text_retokenized():
    tok = toy_tokenizer()
    backend = Recording(ScriptedBackend(answer_after_tool, tokenizer=tok))

    def prog(tree):
        (node,) = yield Generate(tree.root, stop=("\n",), temperature=0)
        env = tree.add_environment(node, "\nB")  # tokenized on its own
        (last,) = yield Generate(env, temperature=0)
        return env, last

    tree = SearchTree("Q: add\n", tokenizer=backend)
    ((env, last),) = Engine(backend).run([prog(tree)])
    joined = tree.text(env)
    assert joined == "Q: add\nA\n\nB"
    path_ids = tok.encode("Q: add\n").ids + tok.encode("A\n").ids + tok.encode("\nB").ids
    assert tree.token_ids(env) == path_ids
    # The tokenizer merges across the span boundary, so re-tokenizing the joined text is not what was written.
    assert tok.encode(joined).ids != path_ids
    first, second = backend.requests
    assert first.prompt_ids == tuple(tok.encode("Q: add\n").ids)
    assert second.prompt_ids == tuple(path_ids) and second.prompt == joined
    assert last.text == " done." and last.token_ids == tok.encode(" done.").ids
    assert tree.token_ids(last) == path_ids + last.token_ids


def test_a_path_through_counting_ids_goes_as_text():
    backend = Recording(ScriptedBackend(lambda p, c: "x"))

    def prog(node):
        yield Generate(node)

    tree = SearchTree("p ", tokenizer=backend)
    trace = tree.add(tree.root, "an input trace", "original")  # its ids are for counting only
    retok = tree.add(tree.root, "text only", "rollout", meta={"retokenized": True})
    Engine(backend).run([prog(tree.root), prog(trace), prog(retok)])
    exact, via_trace, via_retok = backend.requests
    assert exact.prompt_ids == tuple(tree.root.token_ids)
    assert via_trace.prompt_ids is None and via_trace.prompt == "p an input trace"
    assert via_retok.prompt_ids is None


def test_a_completion_without_ids_is_recorded_with_counting_ids():
    class TextOnly(ScriptedBackend):
        def generate(self, requests):
            out = super().generate(requests)
            for cs in out:
                for c in cs:
                    c.token_ids = []
            return out

    backend = Recording(TextOnly(lambda p, c: "some words"))

    def prog(tree):
        (node,) = yield Generate(tree.root)
        yield Generate(node)
        return node

    tree = SearchTree("p", tokenizer=backend)
    (node,) = Engine(backend).run([prog(tree)])
    assert node.token_count == 3 and node.meta["retokenized"] and not node.exact_ids
    assert backend.requests[-1].prompt_ids is None
