"""Isolation: whatever goes wrong with one program's request fails that program alone, with the cause."""

from __future__ import annotations

import pytest

from retrosearch.backends import ScriptedBackend
from retrosearch.engine import BackendError, Engine, ProgramError
from retrosearch.tree import SearchTree
from retrosearch.types import Completion, Generate


class Tampered(ScriptedBackend):
    """A scripted model whose answer to prompts containing `bad` is spoiled by `spoil(completions)`."""

    def __init__(self, spoil, **kw):
        super().__init__(lambda p, c: "two words", **kw)
        self.spoil = spoil

    def generate(self, requests):
        out = super().generate(requests)
        return [self.spoil(cs) if "bad" in r.prompt else cs for r, cs in zip(requests, out)]


def one_step(tree: SearchTree, **kw):
    (node,) = yield Generate(tree.root, logprobs=True, **kw)
    return node.text


def run(backend, prompts, **engine_kw):
    trees = [SearchTree(p, tokenizer=backend) for p in prompts]
    engine = Engine(backend, **engine_kw)
    return engine.run([one_step(t) for t in trees]), trees, engine


def short_logprobs(cs):
    cs[0].logprobs = [-1.0]  # 1 log-prob for 3 token ids
    return cs


@pytest.mark.parametrize(
    "spoil, why",
    [
        (short_logprobs, "logprobs (1) and token_ids (3) differ in length"),
        (lambda cs: cs + cs, "2 completions for a request of n=1"),
        (lambda cs: ["text"], "sample 0 is a str, not a Completion"),
    ],
)
def test_a_completion_that_cannot_be_recorded_fails_its_own_program_only(spoil, why):
    out, trees, engine = run(Tampered(spoil), ["ok 1", "bad", "ok 2"])
    assert out[0] == out[2] == "two words"
    assert isinstance(out[1], ProgramError) and isinstance(out[1].error, BackendError) and why in str(out[1])
    assert len(trees[1]) == 1  # nothing half-recorded in the failed program's tree
    assert engine.stats.failed_programs == 1


def test_a_per_request_error_is_recorded_for_the_program_to_read():
    def error(cs):
        return [Completion(text="", finish_reason="error", error="prompt too long")]

    out, trees, _ = run(Tampered(error), ["ok", "bad"])
    assert out == ["two words", ""]
    node = trees[1].nodes[1]
    assert node.finish_reason == "error" and node.meta["error"] == "prompt too long"


class Breaks:
    """A backend whose `generate` raises (or answers with too few results) when a prompt contains `bad`."""

    name = "breaks"

    def __init__(self, short: bool = False):
        self.inner, self.short = ScriptedBackend(lambda p, c: "fine"), short

    def generate(self, requests):
        if any("bad" in r.prompt for r in requests):
            if self.short:
                return self.inner.generate(requests)[:-1]
            raise RuntimeError("CUDA out of memory")
        return self.inner.generate(requests)

    def tokenize(self, text):
        return self.inner.tokenize(text)


@pytest.mark.parametrize(
    "short, why", [(False, "CUDA out of memory"), (True, "returned 1 results for 2 requests")]
)
def test_a_backend_call_that_fails_fails_only_the_programs_of_that_call(short, why):
    # Calls of two requests: the call holding "bad" fails, the other call's programs go on.
    out, _, engine = run(Breaks(short), ["bad", "ok 1", "ok 2", "ok 3"], max_requests_per_call=2)
    assert isinstance(out[0], ProgramError) and isinstance(out[1], ProgramError)
    assert why in str(out[0]) and "breaks" in str(out[0])
    assert out[2:] == ["fine", "fine"]
    assert engine.stats.backend_calls == 2 and engine.stats.failed_programs == 2


def test_a_program_may_catch_a_backend_error_and_go_on():
    def retry(tree):
        try:
            yield Generate(tree.root)
        except BackendError as e:
            (node,) = yield Generate(SearchTree("fallback").root)
            return f"retried after {type(e.__cause__).__name__}: {node.text}"
        return "first try"

    out = Engine(Breaks()).run([retry(SearchTree("bad")), retry(SearchTree("good"))])
    assert out == ["retried after RuntimeError: fine", "retried after RuntimeError: fine"]


def test_return_exceptions_false_re_raises_the_cause():
    backend = Tampered(short_logprobs)
    with pytest.raises(BackendError, match="differ in length"):
        Engine(backend).run([one_step(SearchTree("bad", tokenizer=backend))], return_exceptions=False)
