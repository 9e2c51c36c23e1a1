"""Tool calls: programs yield `Call(tool, args)`; the engine runs each tool once per wave on the batch."""

from __future__ import annotations

import pytest

from retrosearch.backends import ScriptedBackend
from retrosearch.engine import Engine, ProgramError, ToolError
from retrosearch.tree import SearchTree
from retrosearch.types import Call, Generate


class CountingRetriever:
    """A fake retriever whose right answer is known: `doc(q)`; it counts its calls and the queries they held."""

    def __init__(self):
        self.calls: list[list[str]] = []

    def __call__(self, queries: list[str]) -> list[str]:
        self.calls.append(list(queries))
        return [f"doc({q})" for q in queries]


def test_64_programs_times_3_retrievals_make_3_retriever_calls_not_192():
    retriever = CountingRetriever()

    def prog(k: int):
        found = []
        for hop in range(3):
            found.append((yield Call("retrieve", f"q{k}.{hop}")))
        return found

    engine = Engine(ScriptedBackend(lambda p, c: "x"), tools={"retrieve": retriever})
    out = engine.run([prog(k) for k in range(64)])
    assert out == [[f"doc(q{k}.{h})" for h in range(3)] for k in range(64)]
    assert [len(c) for c in retriever.calls] == [64, 64, 64]
    assert retriever.calls[1] == [f"q{k}.1" for k in range(64)]  # the wave's queries, in program order
    s = engine.stats
    assert (s.tool_calls, s.tool_requests, s.backend_calls, s.waves) == (3, 192, 0, 3)
    assert s.tool_seconds >= 0


def test_a_list_mixing_generate_and_call_is_answered_in_order_in_one_wave():
    retriever = CountingRetriever()

    def prog(tree: SearchTree, k: int):
        nodes, doc = yield [Generate(tree.root, max_tokens=4), Call("retrieve", f"q{k}")]
        both = yield [Call("retrieve", "a"), Call("count", nodes[0].text)]
        return nodes[0].text, doc, both

    engine = Engine(
        ScriptedBackend(lambda p, c: "hi"),
        tools={"retrieve": retriever, "count": lambda xs: [len(x) for x in xs]},
    )
    out = engine.run([prog(SearchTree("p"), k) for k in range(5)])
    assert out == [("hi", f"doc(q{k})", ["doc(a)", 2]) for k in range(5)]
    s = engine.stats
    # Wave 1: one backend call and one retriever call; wave 2: one call of each tool.
    assert (s.waves, s.backend_calls, s.tool_calls) == (2, 1, 3)
    assert [len(c) for c in retriever.calls] == [5, 5]


def flaky_retriever(queries: list[str]) -> list[str]:
    if any("boom" in q for q in queries):
        raise ConnectionError("index down")
    return [q.upper() for q in queries]


def test_a_failing_tool_fails_only_the_programs_that_asked_and_they_may_catch_it():
    def asks(q: str):
        return (yield Call("retrieve", q))

    def catches(q: str):
        try:
            return (yield Call("retrieve", q))
        except ToolError as e:
            return f"caught: {type(e.__cause__).__name__}"

    def other_tool():
        return (yield Call("calc", 2))

    engine = Engine(
        ScriptedBackend(lambda p, c: "x"),
        tools={"retrieve": flaky_retriever, "calc": lambda xs: [x * 10 for x in xs]},
    )
    out = engine.run([asks("boom"), catches("fine"), other_tool(), asks("ok")])
    assert isinstance(out[0], ProgramError) and "index down" in str(out[0]) and "retrieve" in str(out[0])
    assert out[1] == "caught: ConnectionError"
    assert out[2] == 20  # another tool of the same wave is unaffected
    assert isinstance(out[3], ProgramError)  # same batch as "boom": the retriever failed for all of it
    assert engine.stats.failed_programs == 2 and engine.stats.failed_requests == 3


@pytest.mark.parametrize(
    "tool, why",
    [
        (lambda xs: xs[:-1], "returned 1 results for 2 calls"),
        (lambda xs: "not a list", "returned a str"),
        (lambda xs: None, "returned a NoneType"),
    ],
)
def test_a_tool_answering_with_the_wrong_count_fails_its_callers_only(tool, why):
    def prog(q):
        return (yield Call("t", q))

    def generates(tree):
        (node,) = yield Generate(tree.root)
        return node.text

    engine = Engine(ScriptedBackend(lambda p, c: "fine"), tools={"t": tool})
    a, b, c = engine.run([prog(1), prog(2), generates(SearchTree("p"))])
    assert isinstance(a, ProgramError) and why in str(a) and isinstance(b, ProgramError)
    assert c == "fine"


def test_an_unknown_tool_or_a_bad_yield_fails_that_program():
    def prog(tool):
        return (yield Call(tool, 1))

    def bad():
        yield [Call("t", 1), "not a request"]

    out = Engine(ScriptedBackend(lambda p, c: ""), tools={"t": lambda xs: xs}).run(
        [prog("nope"), prog("t"), bad()]
    )
    assert isinstance(out[0], ProgramError) and "no tool 'nope'" in str(out[0]) and "['t']" in str(out[0])
    assert out[1] == 1
    assert isinstance(out[2], ProgramError) and "Generate, Call" in str(out[2])
    with pytest.raises(TypeError, match="callable"):
        Engine(ScriptedBackend(lambda p, c: ""), tools={"t": 3})
