"""Spec of `retrosearch.trace`: parsing, byte-exact rendering, thought/step segmentation, editing, errors."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrosearch.trace import DEFAULT_KEYWORDS, Step, Trace, TraceFormatError, opening_keyword

OT = (
    "<|begin_of_thought|>\n\nLet me compute 1+1.\n\nIt is 2.\n\nWait, check: 1+1 = 2.\n\nYes.\n\n"
    "<|end_of_thought|>\n\n<|begin_of_solution|>\n\nThe answer is \\boxed{2}.\n\n<|end_of_solution|>"
)
R1_BODY = "Okay, so 3*4.\n\nThat is 12.\n\nHmm, let me recheck.\n\n3*4 = 12.\n</think>\n\nSo the product is \\boxed{12}."
R1 = "<think>\n" + R1_BODY
CHAT = "<｜begin▁of▁sentence｜><｜User｜>What is 3*4?<｜Assistant｜><think>\n" + R1_BODY


# ---------------------------------------------------------------------------------------------- formats
def test_openthoughts_string_known_parts():
    t = Trace.parse(OT)
    assert t.format == "openthoughts" and t.complete
    assert t.thinking == "Let me compute 1+1.\n\nIt is 2.\n\nWait, check: 1+1 = 2.\n\nYes."
    assert t.solution == "The answer is \\boxed{2}."
    assert t.answer == "2"
    assert t.render() == OT
    assert [th.keyword for th in t.thoughts] == [None, "Wait"]
    assert [th.text for th in t.thoughts] == [
        "Let me compute 1+1.\n\nIt is 2.",
        "Wait, check: 1+1 = 2.\n\nYes.",
    ]
    assert (t.num_thoughts, t.num_steps) == (2, 4)
    assert t.steps[1] == Step("It is 2.", "\n\n")
    assert t.steps[-1] == Step("Yes.", "")


def test_openthoughts_row_round_trip_and_to_row():
    row = {
        "system": "Your role as an assistant ...",
        "conversations": [{"from": "user", "value": "What is 1+1?"}, {"from": "assistant", "value": OT}],
    }
    before = copy.deepcopy(row)
    t = Trace.parse(row)
    assert t.question == "What is 1+1?"
    assert t.metadata == {"system": "Your role as an assistant ..."}
    assert t.render() == OT
    assert t.to_row() == row
    assert row == before  # parsing does not touch the input

    new = t.replace_remainder(0, "\n\nSo 2.\n", "\\boxed{2}")
    out = new.to_row()
    assert list(out) == ["system", "conversations"]
    assert out["system"] == row["system"] and out["conversations"][0] == row["conversations"][0]
    assert out["conversations"][1] == {"from": "assistant", "value": new.render()}
    assert row == before


META = {
    "problem": "What is 3*4?",
    "deepseek_reasoning": "Okay, so 3*4.\n\nThat is 12.\n\nWait, recheck: 3*4 = 12.\n",
    "deepseek_solution": "The product is \\boxed{12}.",
    "ground_truth_solution": "Since 3*4 = 12, the answer is $\\boxed{12}$.",
    "domain": "math",
}


def test_openthoughts_metadata_row():
    t = Trace.parse(META)
    assert (t.question, t.gold, t.format, t.complete) == ("What is 3*4?", "12", "r1", True)
    assert t.thinking == "Okay, so 3*4.\n\nThat is 12.\n\nWait, recheck: 3*4 = 12."
    assert t.solution == "The product is \\boxed{12}." and t.answer == "12"
    assert [th.keyword for th in t.thoughts] == [None, "Wait"]
    assert t.render() == "<think>\n" + t.thinking + "\n</think>\n\n" + t.solution
    assert t.metadata == {"domain": "math"}
    assert t.to_row() == META  # unedited: the row as it came, byte for byte

    new = t.replace_remainder(0, "\n\nSo 12.", "\\boxed{12}")
    out = new.to_row()
    assert out == META | {
        "deepseek_reasoning": "Okay, so 3*4.\n\nThat is 12.\n\nSo 12.",
        "deepseek_solution": "\\boxed{12}",
    }
    assert Trace.parse(out).thinking == new.thinking


def test_openthoughts_metadata_row_variants():
    tagged = Trace.parse(META | {"deepseek_reasoning": "<think>\nA.\n\nHmm, B.\n</think>\n"})
    assert tagged.thinking == "A.\n\nHmm, B." and tagged.num_thoughts == 2
    code = Trace.parse(META | {"ground_truth_solution": None})  # e.g. code problems: no gold
    assert code.gold is None
    assert Trace.parse(META, gold="7").gold == "7"


@pytest.mark.parametrize(
    "change, match",
    [
        ({"deepseek_solution": None}, "'deepseek_solution': expected a string .*OpenThoughts metadata"),
        ({"problem": 3}, "'problem': expected a string .*got int"),
        ({"ground_truth_solution": 12}, "'ground_truth_solution': expected a string or null"),
    ],
)
def test_openthoughts_metadata_row_errors(change, match):
    with pytest.raises(TraceFormatError, match=match):
        Trace.parse(META | change)
    with pytest.raises(TraceFormatError, match="'deepseek_solution'.*missing"):
        Trace.parse({k: v for k, v in META.items() if k != "deepseek_solution"})


def test_role_content_messages():
    row = {"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": R1}], "id": 3}
    t = Trace.parse(row)
    assert (t.question, t.format, t.metadata) == ("Q?", "r1", {"id": 3})
    assert t.to_row() == row


def test_r1_with_and_without_opening_tag():
    a, b = Trace.parse(R1), Trace.parse(R1_BODY)
    for t, s in ((a, R1), (b, R1_BODY)):
        assert t.format == "r1" and t.complete
        assert t.thinking == "Okay, so 3*4.\n\nThat is 12.\n\nHmm, let me recheck.\n\n3*4 = 12."
        assert t.solution == "So the product is \\boxed{12}."
        assert t.answer == "12"
        assert [th.keyword for th in t.thoughts] == [None, "Hmm"]
        assert t.render() == s
    assert a.thoughts == b.thoughts


def test_chat_formatted_keeps_prompt_and_finds_question():
    t = Trace.parse(CHAT)
    assert t.render() == CHAT
    assert t.question == "What is 3*4?"
    assert t.thinking.startswith("Okay, so")
    assert t.thinking_before(0) == "Okay, so 3*4.\n\nThat is 12."
    assert Trace.parse(CHAT, question="given").question == "given"


def test_plain_text():
    s = "First, 2+2=4.\n\nSo the answer is \\boxed{4}.\n"
    t = Trace.parse(s)
    assert (t.format, t.complete, t.solution, t.answer) == ("plain", True, None, "4")
    assert t.thinking == s.strip() and t.render() == s


@pytest.mark.parametrize(
    "s, fmt, solution",
    [
        ("<think>\nOkay, so 3*4.\n\nThat is", "r1", None),
        (
            "Okay, so 3*4.\n\nThat is \\boxed{12} or not.\n\nThen",
            "plain",
            None,
        ),  # boxed, but not in the last step
        ("<|begin_of_thought|>\n\nStep one.\n\nWait, step", "openthoughts", None),
        (
            "<|begin_of_thought|>\n\nA.\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\nThe ans",
            "openthoughts",
            "The ans",
        ),
        ("", "plain", None),
    ],
)
def test_truncated_is_flagged_not_raised(s, fmt, solution):
    t = Trace.parse(s)
    assert (t.format, t.complete, t.solution) == (fmt, False, solution)
    assert t.render() == s


def test_nested_boxed_answer_and_fallback_to_thinking():
    t = Trace.parse("<think>\nx = 1/2, so \\boxed{0}.\n</think>\n\nThus $x = \\boxed{\\frac{1}{2}}$.")
    assert t.answer == "\\frac{1}{2}"
    assert Trace.parse("<think>\nIt is \\boxed{\\frac{1}{2}}.\n</think>\n\nDone.").answer == "\\frac{1}{2}"
    assert Trace.parse("<think>\nno answer\n</think>\n\nnone").answer is None


def test_gold_and_flat_rows():
    row = {"id": 7, "problem": "Q", "completion": R1, "answer": 12}
    t = Trace.parse(row)
    assert (t.question, t.gold, t.metadata) == ("Q", "12", {"id": 7})
    assert t.to_row() == row  # the numeric gold is written back as it was
    assert Trace.parse(row, gold="13").to_row()["answer"] == "13"
    assert Trace.parse(R1, gold="12").gold == "12"
    plain = Trace.parse(R1, question="Q", gold="12").to_row()
    assert plain == {"question": "Q", "response": R1, "gold": "12"}


# ----------------------------------------------------------------------------------------- segmentation
@pytest.mark.parametrize(
    "opener, is_switch",
    [
        ("Wait, no.", True),
        ("Wait.", True),
        ("Wait... no", True),
        ("Wait", True),
        ("Waiting for it", False),
        ("wait, lower case", False),
        ("Alternatively, maybe", True),
        ("Hmm, so", True),
        ("So, we go on", False),
        ("(Wait, in brackets)", False),
        ("**Wait**, in bold", False),
    ],
)
def test_keyword_only_at_step_start(opener, is_switch):
    t = Trace.parse(f"<think>\nFirst.\n\n{opener} more.\n</think>\n\nok")
    assert t.num_thoughts == (2 if is_switch else 1)


def test_opening_keyword_is_the_one_switch_rule():
    assert opening_keyword("But wait, no.") == "But wait"  # the longest keyword wins
    assert opening_keyword("Wait: 3.") == "Wait"
    assert opening_keyword("Waiting for it.") is None and opening_keyword("So, wait.") is None
    assert opening_keyword("Hmm.", ("Wait",)) is None and opening_keyword("Hmm.", ()) is None


def test_keyword_inside_a_step_does_not_switch():
    t = Trace.parse("First line.\nWait, a single newline is not a blank line.\n\nThen, Wait, mid-step.")
    assert (t.num_steps, t.num_thoughts) == (2, 1)


def test_longest_keyword_wins_and_keywords_are_a_setting():
    s = "A.\n\nBut wait, b.\n\nBut c."
    t = Trace.parse(s, keywords=("But", "But wait"))
    assert [th.keyword for th in t.thoughts] == [None, "But wait", "But"]
    assert Trace.parse(s, keywords=()).num_thoughts == 1
    assert Trace.parse(t, keywords=("Wait",)).num_thoughts == 1  # re-segment an existing trace
    assert Trace.parse(t, keywords=("But", "But wait")) is t
    assert "Wait" in DEFAULT_KEYWORDS and "So" not in DEFAULT_KEYWORDS


def test_separators_are_kept_verbatim():
    s = "a\n \n\tb\r\n\r\nc\n\n\n\nd"
    t = Trace.parse(s)
    assert [(x.text, x.sep) for x in t.steps] == [
        ("a", "\n \n\t"),
        ("b", "\r\n\r\n"),
        ("c", "\n\n\n\n"),
        ("d", ""),
    ]
    # Indentation after a blank line belongs to the separator, so an indented keyword still starts a step.
    t = Trace.parse("A.\n\n   Wait, b.")
    assert t.steps[0].sep == "\n\n   " and t.thoughts[1].keyword == "Wait"


# --------------------------------------------------------------------------------------------- editing
def test_cut_is_before_the_separator():
    t = Trace.parse(OT)
    assert t.thinking_before(0) == "Let me compute 1+1.\n\nIt is 2."
    assert t.thinking_after(0) == "\n\nWait, check: 1+1 = 2.\n\nYes."
    last = t.num_thoughts - 1
    assert t.thinking_before(last) == t.thinking and t.thinking_after(last) == ""
    for bad in (-1, t.num_thoughts, True):
        with pytest.raises(IndexError):
            t.thinking_before(bad)


def test_replace_remainder_keeps_openthoughts_format():
    t = Trace.parse(OT)
    new = t.replace_remainder(0, "\n\nThus 2.\n", "\\boxed{2}")
    assert new.render() == (
        "<|begin_of_thought|>\n\nLet me compute 1+1.\n\nIt is 2.\n\nThus 2.\n\n<|end_of_thought|>\n\n"
        "<|begin_of_solution|>\n\n\\boxed{2}\n\n<|end_of_solution|>"
    )
    assert (new.format, new.complete, new.num_thoughts, new.num_steps, new.answer) == (
        "openthoughts",
        True,
        1,
        3,
        "2",
    )
    assert t.render() == OT  # the original is unchanged
    assert Trace.parse(new.render()) == new


def test_replace_remainder_r1_and_truncated_get_default_wrappers():
    t = Trace.parse(R1)
    new = t.replace_remainder(0, "\n\nSo 12.\n", "Final: \\boxed{12}.")
    assert new.render() == "<think>\nOkay, so 3*4.\n\nThat is 12.\n\nSo 12.\n</think>\n\nFinal: \\boxed{12}."
    cut = Trace.parse("<think>\nA.\n\nWait, B")
    done = cut.replace_remainder(0, "\n\nC.", "\\boxed{1}")
    assert done.render() == "<think>\nA.\n\nC.\n</think>\n\n\\boxed{1}" and done.complete
    unfinished = t.replace_remainder(0, "\n\nStill going", None, complete=False)
    assert unfinished.render() == "<think>\nOkay, so 3*4.\n\nThat is 12.\n\nStill going"
    assert not unfinished.complete and unfinished.solution is None
    chat = Trace.parse(CHAT).replace_remainder(1, "", "ok")
    assert chat.render().startswith("<｜begin▁of▁sentence｜><｜User｜>What is 3*4?<｜Assistant｜><think>\n")
    with pytest.raises(TraceFormatError, match="thinking_continuation"):
        t.replace_remainder(0, None, "x")  # type: ignore[arg-type]


def test_hand_built_trace_gets_format_wrappers():
    t = Trace(question="Q", thinking="A.\n\nWait, B.", solution="\\boxed{1}", format="openthoughts")
    assert t.render() == (
        "<|begin_of_thought|>\n\nA.\n\nWait, B.\n\n<|end_of_thought|>\n\n<|begin_of_solution|>\n\n"
        "\\boxed{1}\n\n<|end_of_solution|>"
    )
    assert Trace.parse(t.render(), question="Q") == t
    assert Trace(thinking="A.", solution="B", format="r1").render() == "<think>\nA.\n</think>\n\nB"
    assert Trace(thinking="A.", format="r1", complete=False).render() == "<think>\nA."
    with pytest.raises(TraceFormatError, match="format"):
        Trace(thinking="A.", format="xml")  # type: ignore[arg-type]


def test_trace_is_immutable():
    t = Trace.parse(OT)
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.thinking = "x"  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "obj, match",
    [
        (42, "expected a str, a dict row or a Trace"),
        (["a"], "expected a str, a dict row or a Trace"),
        ({"question": "q"}, "response field"),
        ({"response": 5}, "'response'.*string"),
        ({"question": 1, "response": "x"}, "'question'"),
        ({"conversations": "x"}, "'conversations'.*list"),
        ({"conversations": [{"from": "user", "value": "q"}]}, "assistant turn"),
        ({"conversations": ["hi"]}, r"conversations\[0\]"),
        ({"conversations": [{"from": "assistant", "value": None}]}, r"conversations\[0\]\.value"),
        ({"messages": [{"speaker": "assistant"}]}, r"messages\[0\].*'role'/'content'"),
    ],
)
def test_bad_input_names_the_field(obj, match):
    with pytest.raises(TraceFormatError, match=match):
        Trace.parse(obj)


def test_bad_keywords():
    with pytest.raises(TraceFormatError, match="keywords"):
        Trace.parse("x", keywords="Wait")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- property tests
_WORD = st.text(alphabet="abcxyz0123456789+=$\\{}().,", min_size=1, max_size=6)
_SEP = st.sampled_from(["\n\n", "\n\n\n", " \n\n", "\n \n", "\n\n  ", "\r\n\r\n", "\n\t\n"])
_KW = st.sampled_from([None, None, "Wait", "But wait", "Alternatively", "Hmm", "Waiting", "But"])
_PUNCT = st.sampled_from([", ", ". ", "... ", " "])


@st.composite
def _step(draw):
    kw = draw(_KW)
    words = draw(st.lists(_WORD, min_size=1, max_size=5))
    glue = draw(st.sampled_from([" ", "\n"]))  # a single newline does not end a step
    text = glue.join(words)
    if kw is not None:
        text = kw + draw(_PUNCT) + text
    return kw, text


@st.composite
def _trace_string(draw):
    steps = draw(st.lists(_step(), min_size=1, max_size=8))
    seps = [draw(_SEP) for _ in steps[1:]] + [""]
    thinking = "".join(text + sep for (_, text), sep in zip(steps, seps))
    fmt = draw(st.sampled_from(["openthoughts", "r1", "r1-noopen", "chat", "plain"]))
    truncated = draw(st.booleans())
    lead, trail = draw(st.sampled_from(["", "\n", "\n\n", " "])), draw(st.sampled_from(["", "\n", "\n\n "]))
    solution = draw(st.sampled_from(["The answer is \\boxed{\\frac{1}{2}}.", "Done", ""]))
    if fmt == "openthoughts":
        s = "<|begin_of_thought|>" + lead + thinking
        if not truncated:
            s += (
                trail
                + "<|end_of_thought|>\n\n<|begin_of_solution|>\n\n"
                + solution
                + "\n\n<|end_of_solution|>"
            )
    elif fmt in ("r1", "r1-noopen", "chat"):
        opener = {"r1": "<think>", "r1-noopen": "", "chat": "<｜User｜>Q?<｜Assistant｜><think>"}[fmt]
        s = opener + lead + thinking
        if not truncated:
            s += trail + "</think>\n\n" + solution
        elif fmt == "r1-noopen":
            fmt = "plain"  # nothing marks it as R1 any more
    else:
        s = lead + thinking + trail
    if fmt in ("r1-noopen", "chat"):
        fmt = "r1"
    return s, fmt, truncated, steps, seps


def _check_invariants(t: Trace, s: str) -> None:
    assert t.render() == s
    assert "".join(x.text + x.sep for x in t.steps) == t.thinking
    joined = "".join(th.text + th.steps[-1].sep for th in t.thoughts)
    assert joined == t.thinking
    assert t.thinking in s
    for i in range(t.num_thoughts):
        assert t.thinking_before(i) + t.thinking_after(i) == t.thinking
        assert t.thinking_before(i).endswith(t.thoughts[i].text)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_trace_string())
def test_generated_traces_round_trip_and_segment(case):
    s, fmt, truncated, steps, seps = case
    t = Trace.parse(s)
    _check_invariants(t, s)
    assert t.format == fmt
    if fmt != "plain":
        assert t.complete is not truncated
    assert [x.text for x in t.steps] == [text for _, text in steps]
    assert [x.sep for x in t.steps] == seps
    expected_kw = [None] + [kw for kw, _ in steps[1:] if kw in DEFAULT_KEYWORDS]
    assert [th.keyword for th in t.thoughts] == expected_kw
    if not truncated and fmt != "plain":
        new = t.replace_remainder(0, "\n\nSo it is \\boxed{3}.", "Final: \\boxed{3}")
        assert new.format == t.format and new.answer == "3"
        assert Trace.parse(new.render()).render() == new.render()
        assert new.thinking.startswith(t.thinking_before(0))


_PIECES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "<think>",
            "</think>",
            "<|begin_of_thought|>",
            "<|end_of_thought|>",
            "<|begin_of_solution|>",
            "<|end_of_solution|>",
            "<｜Assistant｜>",
            "<｜User｜>",
            "\n\n",
            " \n \n ",
            "Wait, ",
            "\\boxed{",
            "}",
        ]
    ),
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_any_string_round_trips(s):
    _check_invariants(Trace.parse(s), s)


# -------------------------------------------------------------------------------------------- real data
_REAL = (
    ("thought_anchors.jsonl", "response"),
    ("thinking_llms_interp.jsonl", "response"),
    ("r1_llama8b_open_prompts.jsonl", "full_response"),
)


def test_every_real_trace_round_trips(shared_data):
    n = 0
    for name, key in _REAL:
        with (shared_data / "traces" / name).open() as fh:
            for line_no, line in enumerate(fh, 1):
                row = json.loads(line)
                where = f"{name}:{line_no}"
                s = row[key]
                t = Trace.parse(s)
                assert t.render() == s, where
                assert t.thinking == row["thinking"].strip(), where
                assert t.complete == row["complete"], where
                assert "".join(x.text + x.sep for x in t.steps) == t.thinking, where
                from_row = Trace.parse(row)
                assert from_row.render() == s and from_row.to_row() == row, where
                assert from_row.question == row["question"], where
                n += 1
    assert n == 2698


def test_real_answers_match_the_recorded_boxed_prediction(shared_data):
    with (shared_data / "traces" / "thought_anchors.jsonl").open() as fh:
        rows = [json.loads(line) for line in fh]
    traces = [Trace.parse(r) for r in rows]
    assert all(t.gold == r["gold"] for t, r in zip(traces, rows))
    assert [t.answer for t in traces] == [r["boxed_pred"] for r in rows]
    # The thought-anchors traces are long: each has several switches with the default keywords.
    assert sum(t.num_thoughts - 1 for t in traces) / len(traces) > 5
